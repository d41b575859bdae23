"""`destination/<name>`: a Destination's readiness, canary files, drift repair, and the rescheduling its changes cause.

Kratix re-queues every Work on any Destination event. Here a change reaches only the objects it affects: those with
output on this Destination, those with groups waiting for one, and Promises (whose dependencies spread).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.platform.redelivery import RedeliverOwnersInput, RedeliverRequest, RedeliveryActivities
    from activities.stores.state_stores import CheckStateStoreInput, StateStoreActivities, WriteStateStoreInput
    from domain import status as st
    from domain.config import PlatformConfig
    from domain.documents import Destination
    from domain.events import Event, record_event
    from domain.layout import canary_files
    from workflows import carried_memo, idle_continue_as_new, options
    from workflows.delivery import iso, now_iso, read_catalog, read_platform_config, store_target
    from workflows.publishing import Publisher

READY = "Ready"


class DestinationState(BaseModel):
    destination: Destination
    status: dict[str, Any] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    # What last reached the owners: a change of labels, strictness or path reschedules.
    scheduled_as: str = ""
    check_due: bool = True
    resync_due: bool = False
    failures: int = 0
    deleted: bool = False
    # Errors owners reported writing to this Destination, by owner workflow id.
    write_errors: dict[str, str] = Field(default_factory=dict)
    # The last resourceVersion published (workflows/publishing.py), so a new run goes on from it.
    resource_version: int = 0


class DestinationWorkflowInput(BaseModel):
    state: DestinationState


class ApplyDestinationDocument(BaseModel):
    destination: Destination


class DestinationApplied(BaseModel):
    generation_changed: bool


class ResyncRequest(BaseModel):
    reason: str = "manual re-sync"


class RemoveDestination(BaseModel):
    pass


class WriteReport(BaseModel):
    owner: str
    error: str | None = None


def _scheduling_key(dest: Destination) -> str:
    return repr(
        (
            sorted(dest.metadata.labels.items()),
            dest.spec.strict_match_labels,
            dest.spec.path,
            dest.spec.state_store_ref.kind,
            dest.spec.state_store_ref.name,
        )
    )


@workflow.defn
class DestinationWorkflow:
    @workflow.init
    def __init__(self, input: DestinationWorkflowInput) -> None:
        self.state = input.state
        self.publisher = Publisher(input.state.resource_version)
        self.config = PlatformConfig()
        self.continue_when_idle = False

    @property
    def name(self) -> str:
        return self.state.destination.metadata.name

    @workflow.run
    async def run(self, input: DestinationWorkflowInput) -> None:
        self.continue_when_idle = idle_continue_as_new.allowed_this_run()
        self.config = await read_platform_config()
        if not self.state.status:
            st.set_condition(
                self.state.status, READY, "False", "DestinationNotReady", "Destination is not ready", now_iso()
            )
        self._publish()
        while not self.state.deleted:
            if self.state.check_due:
                self.state.check_due = False
                await self._check()
            if _scheduling_key(self.state.destination) != self.state.scheduled_as:
                await self._reschedule()
            if self.state.resync_due:
                self.state.resync_due = False
                await self._resync()
            await self._wait()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self.state.resource_version = self.publisher.resource_version
                carried_memo.continue_as_new(DestinationWorkflowInput(state=self.state))
        await self._remove()
        self.publisher.publish_final()

    async def _wait(self) -> None:
        ready = (st.get_condition(self.state.status, READY) or {}).get("status") == "True"
        if ready:
            delay = self.config.state_store_reconciliation_interval_s
        else:
            delay = self.config.backoff(
                max(self.state.failures, 1), self.config.write_retry_base_s, self.config.write_retry_cap_s
            )
        self.state.status["nextCheckAt"] = iso(workflow.now() + timedelta(seconds=delay))
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: (
                    self.state.deleted
                    or self.state.check_due
                    or self.state.resync_due
                    or _scheduling_key(self.state.destination) != self.state.scheduled_as
                    # Write reports wake nothing: without this a busy Destination's history grows until terminated.
                    or idle_continue_as_new.suggested(self.continue_when_idle)
                ),
                timeout=timedelta(seconds=delay),
            )
        except asyncio.TimeoutError:
            # Not ready: look again. Ready: Kratix's stateStoreReconciliationInterval, rewrite everything to undo drift.
            self.state.check_due = True
            self.state.resync_due = ready

    # --- messages ---

    @workflow.update
    def apply(self, input: ApplyDestinationDocument) -> DestinationApplied:
        changed = input.destination.spec != self.state.destination.spec
        self.state.destination = input.destination
        self.state.check_due = True
        return DestinationApplied(generation_changed=changed)

    @workflow.signal
    def store_changed(self, input: ResyncRequest) -> None:
        self.state.check_due = True

    @workflow.update
    def resync(self, input: ResyncRequest) -> ResyncRequest:
        self._event("Normal", "Resync", f"re-sync requested: {input.reason}")
        self.state.check_due = True
        self.state.resync_due = True
        return input

    @workflow.update
    def remove(self, input: RemoveDestination) -> RemoveDestination:
        self.state.deleted = True
        return input

    @workflow.signal
    def report_write(self, input: WriteReport) -> None:
        if input.error:
            self.state.write_errors[input.owner] = input.error
        else:
            self.state.write_errors.pop(input.owner, None)
        self._mark_writes()
        self._publish()

    # --- steps ---

    async def _reschedule(self) -> None:
        self.state.scheduled_as = _scheduling_key(self.state.destination)
        count = await self._tell_owners(
            RedeliverRequest(reason=f"Destination {self.name} changed"), include_unplaced=True
        )
        self._event("Normal", "Rescheduled", f"asked {count} objects to place their outputs again")

    async def _resync(self) -> None:
        count = await self._tell_owners(
            RedeliverRequest(reason=f"re-sync of Destination {self.name}", rewrite=[self.name]), include_unplaced=False
        )
        self.state.status["lastResyncTime"] = now_iso()
        self._event(
            "Normal", "Resynced", f"rewrote the canary files and asked {count} objects to rewrite their outputs"
        )

    async def _tell_owners(self, request: RedeliverRequest, include_unplaced: bool) -> int:
        """Owners are found through visibility, which lags a workflow's own state by a moment: an object that placed
        output here (or found nothing to place) just before this change may not be listed yet. A second pass after
        the lag catches it; the objects already told find nothing left to do."""
        signalled = 0
        for attempt in range(2):
            if attempt:
                await workflow.sleep(options.VISIBILITY_SETTLE)
            result = await workflow.execute_activity_method(
                RedeliveryActivities.redeliver_to_owners,
                RedeliverOwnersInput(destination=self.name, request=request, include_unplaced=include_unplaced),
                start_to_close_timeout=options.FANOUT_TIMEOUT,
                heartbeat_timeout=options.FANOUT_HEARTBEAT,
                retry_policy=options.READ_RETRY,
            )
            signalled = max(signalled, result.signalled)
        return signalled

    async def _check(self) -> None:
        """Kratix's Destination readiness: its store is ready, and the canary files were written (or are disabled)."""
        status, spec = self.state.status, self.state.destination.spec
        ref = spec.state_store_ref
        catalog = await read_catalog()
        target = store_target(catalog, ref.kind, ref.name)
        if target is None:
            return self._not_ready("StateStoreNotFound", f"{ref.kind}/{ref.name}: not found")
        readiness = await workflow.execute_activity_method(
            StateStoreActivities.check_state_store,
            CheckStateStoreInput(store=target),
            start_to_close_timeout=options.STATE_STORE_TIMEOUT,
            retry_policy=options.READ_RETRY,
        )
        if not readiness.ready:
            return self._not_ready("StateStoreNotReady", f"{ref.kind}/{ref.name}: {readiness.message}")
        canaries = canary_files(spec.path, spec.filepath.mode)
        enabled = spec.init_workloads.enabled
        write = WriteStateStoreInput(
            store=target,
            message="Update from: kratix-canary" if enabled else "Delete from: kratix-canary",
            files=canaries if enabled else {},
            delete_files=[] if enabled else list(canaries),
        )
        result = await workflow.execute_activity_method(
            StateStoreActivities.write_state_store,
            write,
            start_to_close_timeout=options.STATE_STORE_TIMEOUT,
            retry_policy=options.STATE_STORE_RETRY,
        )
        if result.error:
            return self._not_ready(
                "StateStoreWriteFailed", f"Failed to write test documents to State Store: {result.error}"
            )
        was_ready = (st.get_condition(status, READY) or {}).get("status") == "True"
        self.state.failures = 0
        if enabled:
            st.set_condition(
                status, READY, "True", "TestDocumentsWritten", "Test documents written to State Store", now_iso()
            )
        else:
            st.set_condition(status, READY, "True", "DestinationReady", "Destination is ready", now_iso())
        status["canaryVersion"] = result.version_id
        if not was_ready:
            self._event("Normal", "DestinationReady", "Destination is Ready")

    def _not_ready(self, reason: str, message: str) -> None:
        self.state.failures += 1
        previous = st.get_condition(self.state.status, READY) or {}
        st.set_condition(self.state.status, READY, "False", reason, message, now_iso())
        if (previous.get("reason"), previous.get("message")) != (reason, message):
            self._event("Warning", "DestinationNotReady", message)

    async def _remove(self) -> None:
        """`cleanup: all` removes every file placed here and the canaries; `none` leaves them (Kratix's default).

        Either way, resources placed here are placed again on another matching Destination.
        """
        spec = self.state.destination.spec
        await self._tell_owners(RedeliverRequest(reason=f"Destination {self.name} was deleted"), include_unplaced=False)
        if spec.cleanup == "all":
            target = store_target(await read_catalog(), spec.state_store_ref.kind, spec.state_store_ref.name)
            if target is not None:
                await workflow.execute_activity_method(
                    StateStoreActivities.write_state_store,
                    WriteStateStoreInput(
                        store=target,
                        message="Delete from: kratix-canary",
                        delete_files=list(canary_files(spec.path, spec.filepath.mode)),
                    ),
                    start_to_close_timeout=options.STATE_STORE_TIMEOUT,
                    retry_policy=options.STATE_STORE_RETRY,
                )

    # --- status ---

    def _mark_writes(self) -> None:
        errors = self.state.write_errors
        if errors:
            owner, error = sorted(errors.items())[0]
            more = f" (and {len(errors) - 1} more objects)" if len(errors) > 1 else ""
            st.set_condition(
                self.state.status,
                "WritesSucceeded",
                "False",
                "WorkloadsFailedWrite",
                f"{owner}: {error}{more}",
                now_iso(),
            )
        elif st.get_condition(self.state.status, "WritesSucceeded") is not None:
            st.set_condition(
                self.state.status,
                "WritesSucceeded",
                "True",
                "WorkloadsWrittenToStateStore",
                "Workloads written to State Store",
                now_iso(),
            )

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.state.events = record_event(self.state.events, type_, reason, message, now_iso())  # type: ignore[arg-type]

    def _publish(self) -> None:
        ready = st.get_condition(self.state.status, READY) or {}
        memo = {
            "object": self.state.destination.model_dump(mode="json", by_alias=True, exclude_none=True),
            "status": self.state.status,
            "events": [e.model_dump(mode="json") for e in self.state.events],
        }
        self.publisher.publish(memo, "Ready" if ready.get("status") == "True" else "NotReady")
