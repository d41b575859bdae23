"""`gitstatestore/<name>`, `bucketstatestore/<name>`: a state store's readiness, as Kratix reports it.

Ready means the Secret was found, the writer initialised and a write-permission probe passed. A store that is not
ready is checked again on a doubling schedule; when its readiness changes, its Destinations check themselves again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.stores.state_stores import CheckStateStoreInput, StateStoreActivities, StoreTarget
    from domain import status as st
    from domain.config import PlatformConfig
    from domain.events import Event, record_event
    from domain.naming import destination_workflow_id
    from workflows import options
    from workflows.delivery import iso, now_iso, read_catalog, read_platform_config
    from workflows.destination import DestinationWorkflow, ResyncRequest
    from workflows.publishing import Publisher


class StateStoreState(BaseModel):
    target: StoreTarget
    status: dict[str, Any] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    check_due: bool = True
    failures: int = 0
    deleted: bool = False
    # The last resourceVersion published (workflows/publishing.py), so a new run goes on from it.
    resource_version: int = 0


class StateStoreWorkflowInput(BaseModel):
    state: StateStoreState


class ApplyStoreTarget(BaseModel):
    target: StoreTarget


class StoreCheckRequest(BaseModel):
    reason: str


@workflow.defn
class StateStoreWorkflow:
    @workflow.init
    def __init__(self, input: StateStoreWorkflowInput) -> None:
        self.state = input.state
        self.publisher = Publisher(input.state.resource_version)
        self.config = PlatformConfig()

    @workflow.run
    async def run(self, input: StateStoreWorkflowInput) -> None:
        self.config = await read_platform_config()
        while not self.state.deleted:
            if self.state.check_due:
                self.state.check_due = False
                await self._check()
            ready = self.state.status.get("status") == "Ready"
            delay = (
                None
                if ready
                else self.config.backoff(
                    self.state.failures, self.config.write_retry_base_s, self.config.write_retry_cap_s
                )
            )
            self.state.status["nextCheckAt"] = iso(workflow.now() + timedelta(seconds=delay)) if delay else None
            self._publish()
            try:
                # Kratix does not re-validate a ready store on a timer; a change of it or of its Secret does.
                await workflow.wait_condition(
                    lambda: self.state.deleted or self.state.check_due,
                    timeout=timedelta(seconds=delay) if delay else None,
                )
            except asyncio.TimeoutError:
                self.state.check_due = True
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self.state.resource_version = self.publisher.resource_version
                workflow.continue_as_new(StateStoreWorkflowInput(state=self.state))
        self.publisher.publish_final()

    @workflow.update
    def apply(self, input: ApplyStoreTarget) -> StoreCheckRequest:
        self.state.target = input.target
        self.state.check_due = True
        return StoreCheckRequest(reason="applied")

    @workflow.signal
    def recheck(self, input: StoreCheckRequest) -> None:
        self.state.check_due = True

    @workflow.update
    def remove(self, input: StoreCheckRequest) -> StoreCheckRequest:
        self.state.deleted = True
        return input

    async def _check(self) -> None:
        readiness = await workflow.execute_activity_method(
            StateStoreActivities.check_state_store,
            CheckStateStoreInput(store=self.state.target),
            start_to_close_timeout=options.STATE_STORE_TIMEOUT,
            retry_policy=options.READ_RETRY,
        )
        status = self.state.status
        before = (status.get("status"), (st.get_condition(status, "Ready") or {}).get("message"))
        status["status"] = "Ready" if readiness.ready else "NotReady"
        st.set_condition(
            status, "Ready", "True" if readiness.ready else "False", readiness.reason, readiness.message, now_iso()
        )
        self.state.failures = 0 if readiness.ready else self.state.failures + 1
        if before == (status["status"], readiness.message):
            return
        kind, name = self.state.target.kind, self.state.target.name
        if readiness.ready:
            self._event("Normal", "Ready", f'{kind} "{name}" is ready')
        else:
            self._event("Warning", "NotReady", readiness.message)
        await self._notify_destinations()

    async def _notify_destinations(self) -> None:
        catalog = await read_catalog()
        ref = (self.state.target.kind, self.state.target.name)
        names = [
            n
            for n, d in catalog.destinations.items()
            if (d.spec.state_store_ref.kind, d.spec.state_store_ref.name) == ref
        ]
        request = ResyncRequest(reason=f"{ref[0]} {ref[1]} readiness changed")
        await asyncio.gather(
            *[
                workflow.get_external_workflow_handle(destination_workflow_id(n)).signal(
                    DestinationWorkflow.store_changed, request
                )
                for n in names
            ],
            return_exceptions=True,
        )

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.state.events = record_event(self.state.events, type_, reason, message, now_iso())  # type: ignore[arg-type]

    def _publish(self) -> None:
        self.publisher.publish(
            {"status": self.state.status, "events": [e.model_dump(mode="json") for e in self.state.events]},
            self.state.status.get("status", "NotReady"),
        )
