"""The lifecycle of one resource request: `resource/<promise>/<namespace>/<name>`, alive until the resource is
deleted."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.platform.catalog import CatalogActivities, ReadPromiseInput
    from activities.pipelines.models import PipelineContext
    from activities.platform.redelivery import REDELIVER_SIGNAL, RedeliverRequest
    from domain import labels as lb
    from domain import status as st
    from domain.documents import Pipeline
    from domain.health import health_status
    from domain.scheduling import WorkloadGroup
    from domain.promise_api import UNVERSIONED, PromiseSnapshot
    from workflows import options
    from workflows.delivery import PipelineOutput, now_iso, read
    from workflows.lifecycle import Action, ObjectLifecycle
    from workflows.publishing import Publisher
    from workflows.records import (
        ApplyInput,
        ApplyResult,
        DeleteAccepted,
        DeleteRequest,
        LabelRequest,
        LabelResult,
        ReconcileRequest,
        StatusPatch,
        StatusPatched,
    )

    # Passed through, not defined here: the sandbox runs this module afresh for every workflow it loads, and building
    # these pydantic classes was most of that (~10 ms each time, the worker's main cost when many resources start).
    from workflows.resource_records import (
        HealthRecordInput,
        HealthRecordResult,
        RemoveHealthRecordInput,
        ResourceState,
        ResourceWorkflowInput,
        ResourceWorkflowResult,
    )


def _spec_of(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "metadata"}


@workflow.defn
class ResourceWorkflow(ObjectLifecycle):
    workflow_type = "resource"

    @workflow.init
    def __init__(self, input: ResourceWorkflowInput) -> None:
        self.state: ResourceState = input.state
        self.publisher = Publisher(input.state.resource_version, coalesce=True)
        self.snapshot: PromiseSnapshot | None = None
        self.promise_changed = False
        if input.initial is not None:
            # In init, so an update arriving in the same first task applies after it, in the order they were sent.
            self._apply_document(input.initial, _spec_of)

    @workflow.run
    async def run(self, input: ResourceWorkflowInput) -> ResourceWorkflowResult:
        await self.lifecycle()
        return ResourceWorkflowResult(deleted=True)

    # --- messages ---

    @workflow.update
    async def apply(self, input: ApplyInput) -> ApplyResult:
        return self._apply_document(input, _spec_of)

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        self._refuse_if_deleting()
        self._refuse_stale(input)

    @workflow.update
    async def label(self, input: LabelRequest) -> LabelResult:
        return self._apply_labels(input)

    @workflow.update
    async def patch_status(self, input: StatusPatch) -> StatusPatched:
        return self._patch_status(input)

    @patch_status.validator
    def _validate_patch_status(self, input: StatusPatch) -> None:
        self._refuse_bad_status(input)

    @label.validator
    def _validate_label(self, input: LabelRequest) -> None:
        self._refuse_if_deleting(allow_controls=True)
        self._refuse_bad_labels(input)

    @workflow.update
    async def delete(self, input: DeleteRequest) -> DeleteAccepted:
        self._request_delete(input)
        return DeleteAccepted()

    @workflow.signal
    def delete_signal(self, input: DeleteRequest) -> None:
        """The Promise's workflow deletes its resources with this (workflows can only signal each other)."""
        self._request_delete(input)

    @workflow.signal
    def reconcile(self, input: ReconcileRequest) -> None:
        """The Promise changed (spec, availability, `kratix.io/reconcile-resources`): run from the first pipeline."""
        self.promise_changed = True
        self._restart("PromiseChanged", input.reason)

    @workflow.signal(name=REDELIVER_SIGNAL)
    def redeliver(self, input: RedeliverRequest) -> None:
        """A Destination changed: place unplaced groups, flag misplaced ones, rewrite or clean up as asked."""
        self._request_redelivery(input)

    @workflow.update
    async def record_health(self, input: HealthRecordInput) -> HealthRecordResult:
        self.state.health = [
            r for r in self.state.health if (r.namespace, r.name) != (input.record.namespace, input.record.name)
        ]
        self.state.health.append(input.record)
        return self._update_health()

    @workflow.update
    async def remove_health(self, input: RemoveHealthRecordInput) -> HealthRecordResult:
        self.state.health = [r for r in self.state.health if (r.namespace, r.name) != (input.namespace, input.name)]
        return self._update_health()

    def _refuse_if_deleting(self, allow_controls: bool = False) -> None:
        # Labels still work while deleting: removing `kratix.io/workflow-suspended` is how a gated delete resumes.
        if self.state.delete_requested and not allow_controls:
            raise ApplicationError("the resource is being deleted", type="Conflict", non_retryable=True)

    def _update_health(self) -> HealthRecordResult:
        previous = (self.state.status.get("healthStatus") or {}).get("state")
        self.state.status["healthStatus"] = health_status(self.state.health)
        state = self.state.status["healthStatus"]["state"]
        if state != previous:
            self._event(
                "Normal" if state in ("healthy", "ready") else "Warning", "HealthRecord", f"Health state is {state}"
            )
        self._publish()
        return HealthRecordResult(state=state)

    # --- hooks ---

    def _context(self, action: Action) -> PipelineContext:
        api = self.snapshot.api if self.snapshot else None
        assert api is not None
        return PipelineContext.of_resource(
            action,
            api,
            self.state.name,
            self.state.namespace,
            self.snapshot.pipeline_namespace if self.snapshot else "",
        )

    def _run_prefix(self) -> str:
        return f"{self.state.namespace}-{self.state.name}"

    def _promise_selectors(self) -> dict[str, str]:
        return self.snapshot.destination_selectors if self.snapshot else {}

    def _owner_labels(self) -> dict[str, str]:
        return {
            lb.COMPONENT_OF_PROMISE: self.state.promise,
            lb.COMPONENT_OF_RESOURCE: self.state.name,
            lb.COMPONENT_OF_NAMESPACE: self.state.namespace,
        }

    def _interval_override(self) -> float | None:
        return self.snapshot.reconciliation_interval_s if self.snapshot else None

    async def _read_promise(self) -> PromiseSnapshot | None:
        result = await read(CatalogActivities.read_promise, ReadPromiseInput(name=self.state.promise))
        return result.snapshot

    async def _prepare_configure(self, start: int) -> list[Pipeline] | None:
        self.promise_changed = False
        self.snapshot = snapshot = await self._read_promise()
        status = self.state.status
        if snapshot is None or not snapshot.available or snapshot.api is None:
            status["message"] = st.PENDING_MESSAGE
            if snapshot is not None and snapshot.paused:
                st.mark_paused(status, now_iso(), promise=False)
            st.set_condition(
                status,
                "PromiseAvailable",
                "False",
                "PromiseRequirementsNotInstalled",
                "Promise Requirements are not installed",
                now_iso(),
            )
            self._event("Normal", "PromiseUnavailable", f"waiting for Promise {self.state.promise} to be available")
            self._publish()
            # Wake on the Promise's signal, or re-check on Kratix's 60 s schedule.
            try:
                await workflow.wait_condition(
                    lambda: self.promise_changed or self.state.delete_requested or self.state.start_from is not None,
                    timeout=options.PROMISE_RECHECK,
                )
            except asyncio.TimeoutError:
                pass
            if self.state.start_from is None:
                self.state.start_from = start
            return None
        st.set_condition(
            status, "PromiseAvailable", "True", "PromiseAvailable", "Promise Requirements are met", now_iso()
        )
        return snapshot.resource_configure

    def _output_of(
        self, pipeline: str, groups: list[WorkloadGroup], artifact: str | None, inline: dict[str, str]
    ) -> PipelineOutput:
        st_ = self.state
        return PipelineOutput.of_resource(st_.promise, st_.namespace, st_.name, pipeline, groups, artifact, inline)

    async def _configure_succeeded(self, generation: int) -> None:
        version = self.snapshot.version if self.snapshot else UNVERSIONED
        changed = st.mark_versions(self.state.status, version)
        if "promiseVersion" in changed:
            self._event(
                "Normal",
                "ReconcileSucceeded",
                f"Resource request reconciled with promise {self.state.promise} version {version}",
            )
        if "resourceBindingVersion" in changed:
            self._event(
                "Normal",
                "ResourceBindingVersionUpdated",
                f"Resource binding version updated to {st.LATEST_BINDING_VERSION}",
            )
        self._mark_works()
        if any(p.error or p.apply_errors for p in self.state.placements):
            self._event("Warning", "WorksFailing", "some outputs could not be delivered; see conditions")
        elif not self.state.pending_groups:
            self._event("Normal", "ReconcileSucceeded", "Successfully reconciled")

    def _label(self) -> str:
        return f"{self.state.promise}/{self.state.namespace}/{self.state.name}"

    async def _delete_pipeline(self) -> Pipeline | None:
        self.snapshot = await self._read_promise()
        pipelines = self.snapshot.resource_delete if self.snapshot and self.snapshot.api else []
        return pipelines[0] if pipelines else None

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(ResourceWorkflowInput(state=self.state))

    def _publish(self) -> None:
        memo = self._memo()
        memo["health"] = [r.document for r in self.state.health]
        self.publisher.publish(memo, st.summary_phase(self.state.status, deleting=self.state.delete_requested))
