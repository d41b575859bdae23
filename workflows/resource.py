"""The lifecycle of one resource request: `resource/<promise>/<namespace>/<name>`, alive until the resource is deleted."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.catalog import CatalogActivities, ReadPromiseInput
    from activities.pipelines import PipelineContext, PipelineRunResult
    from domain import status as st
    from domain.errors import InvalidDocument
    from domain.layout import resource_dir
    from domain.promise_api import PromiseSnapshot
    from workflows import options
    from workflows.delivery import (
        PendingGroup,
        Placement,
        PlannedWrite,
        now_iso,
        plan_resource_groups,
        read_catalog,
        replace_placements,
        run_pipeline,
        write_placements,
    )
    from workflows.publishing import Publisher
    from workflows.records import (
        ApplyInput,
        ApplyResult,
        DeleteAccepted,
        DeleteRequest,
        PipelineRunRecord,
        ReconcileRequest,
        failure_message,
        record_run,
    )


class ResourceState(BaseModel):
    """Everything the workflow knows, handed whole to the next run on continue-as-new."""

    promise: str
    namespace: str
    name: str
    document: dict[str, Any] = Field(default_factory=dict)
    generation: int = 0
    observed_generation: int = 0
    reconcile_requested: bool = False
    status: dict[str, Any] = Field(default_factory=dict)
    placements: list[Placement] = Field(default_factory=list)
    pending_groups: list[PendingGroup] = Field(default_factory=list)
    runs: list[PipelineRunRecord] = Field(default_factory=list)
    delete_requested: bool = False
    force_delete: bool = False


class ResourceWorkflowInput(BaseModel):
    state: ResourceState


class ResourceWorkflowResult(BaseModel):
    deleted: bool


@workflow.defn
class ResourceWorkflow:
    @workflow.init
    def __init__(self, input: ResourceWorkflowInput) -> None:
        self.state = input.state
        self.publisher = Publisher()
        self.promise_changed = False

    @workflow.run
    async def run(self, input: ResourceWorkflowInput) -> ResourceWorkflowResult:
        self._publish()
        while True:
            await workflow.wait_condition(lambda: self.state.delete_requested or self._configure_due())
            if self.state.delete_requested:
                await self._delete()
                return ResourceWorkflowResult(deleted=True)
            await self._configure()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(ResourceWorkflowInput(state=self.state))

    # --- messages ---

    @workflow.update
    async def apply(self, input: ApplyInput) -> ApplyResult:
        document = copy.deepcopy(input.document)
        document.pop("status", None)
        created = not self.state.document
        previous_spec = {k: v for k, v in self.state.document.items() if k not in ("metadata",)}
        new_spec = {k: v for k, v in document.items() if k not in ("metadata",)}
        metadata = document.setdefault("metadata", {})
        # Only a spec change bumps the generation (Kubernetes semantics); labels and annotations do not.
        if created or previous_spec != new_spec:
            self.state.generation += 1
        metadata["generation"] = self.state.generation
        metadata["creationTimestamp"] = self.state.document.get("metadata", {}).get("creationTimestamp") or now_iso()
        unchanged = not created and self.state.document == document
        self.state.document = document
        self._publish()
        action = "created" if created else ("unchanged" if unchanged else "configured")
        return ApplyResult(action=action, generation=self.state.generation)

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        if self.state.delete_requested:
            raise ApplicationError("the resource is being deleted", type="Conflict", non_retryable=True)

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
        self.state.reconcile_requested = True
        self.promise_changed = True

    def _request_delete(self, input: DeleteRequest) -> None:
        self.state.delete_requested = True
        self.state.force_delete = self.state.force_delete or input.force
        self._publish()

    # --- configure ---

    def _configure_due(self) -> bool:
        return self.state.generation != self.state.observed_generation or self.state.reconcile_requested

    def _context(self, snapshot: PromiseSnapshot, action: str) -> PipelineContext:
        api = snapshot.api
        assert api is not None
        return PipelineContext(
            workflow_type="resource",
            action=action,  # type: ignore[arg-type]
            promise_name=self.state.promise,
            object_kind=api.kind,
            object_group=api.group,
            object_version=api.version,
            object_name=self.state.name,
            object_namespace=self.state.namespace,
            crd_plural=api.plural,
            cluster_scoped=False,
        )

    def _live_object(self) -> dict[str, Any]:
        return {**copy.deepcopy(self.state.document), "status": copy.deepcopy(self.state.status)}

    async def _read_promise(self) -> PromiseSnapshot | None:
        result = await workflow.execute_activity_method(
            CatalogActivities.read_promise,
            ReadPromiseInput(name=self.state.promise),
            start_to_close_timeout=options.READ_TIMEOUT,
            retry_policy=options.READ_RETRY,
        )
        return result.snapshot

    async def _configure(self) -> None:
        generation = self.state.generation
        self.state.reconcile_requested = False
        self.promise_changed = False
        status = self.state.status
        snapshot = await self._read_promise()
        if snapshot is None or not snapshot.available or snapshot.api is None:
            status["message"] = st.PENDING_MESSAGE
            st.set_condition(status, "PromiseAvailable", "False", "PromiseNotAvailable", "Promise is not available", now_iso())
            self._publish()
            # Wake on the Promise's signal, or re-check on Kratix's 60 s schedule.
            await workflow.wait_condition(
                lambda: self.promise_changed or self.state.delete_requested, timeout=options.PROMISE_RECHECK
            )
            self.state.reconcile_requested = True
            return
        st.set_condition(status, "PromiseAvailable", "True", "PromiseAvailable", "Promise Requirements are met", now_iso())
        pipelines = snapshot.resource_configure
        names = [p.metadata.name for p in pipelines]
        st.mark_configure_started(status, names, now_iso())
        self._publish()
        catalog = await read_catalog()
        rng = workflow.random()
        pending: list[PendingGroup] = []
        for index, pipeline in enumerate(pipelines):
            name = pipeline.metadata.name
            st.set_pipeline_phase(status, name, "Running", now_iso())
            self._publish()
            run_id = f"{self.state.namespace}-{self.state.name}-{name}-{workflow.uuid4().hex[:8]}"
            result = await run_pipeline(run_id, pipeline, self._live_object(), self._context(snapshot, "configure"),
                                        snapshot.destination_selectors)
            self._record_run(PipelineRunRecord.of(name, "configure", generation, result))
            error = self._merge_status(result)
            if error:
                st.mark_configure_failed(status, name, now_iso(), error)
                self._finish_run(generation)
                return
            if result.workflow_control and (result.workflow_control.get("suspend") or result.workflow_control.get("retryAfter")):
                message = str(result.workflow_control.get("message") or "")
                st.set_pipeline_phase(status, name, "Suspended", now_iso(), message)
                st.set_condition(status, st.RECONCILED, "Unknown", "WorkflowSuspended", "Suspended", now_iso())
                self._finish_run(generation)
                return
            previous = [p for p in self.state.placements if p.pipeline == name]
            planned, waiting = plan_resource_groups(
                catalog, name, result.groups, result.artifact, previous, self._path_for(name), rng
            )
            pending += waiting
            await self._write(catalog, planned, previous, f"Update from: {self._label()}/{name}")
            st.set_pipeline_phase(status, name, "Succeeded", now_iso())
            status["workflowsSucceeded"] = index + 1
        # Outputs of pipelines that were removed from the Promise go, as Kratix deletes their Works.
        stale = [p for p in self.state.placements if p.pipeline not in names]
        if stale:
            await self._write(catalog, [], stale, f"Delete from: {self._label()}")
        self.state.pending_groups = pending
        st.mark_configure_succeeded(status, now_iso(), promise_workflow=False)
        st.mark_works(status, now_iso(), [f"{g.pipeline}/{g.directory}" for g in pending])
        self._finish_run(generation)

    def _merge_status(self, result: PipelineRunResult) -> str | None:
        if not result.succeeded:
            return failure_message(result)
        try:
            merged = st.merge_status_file(self.state.status, result.status, promise_workflow=False)
        except InvalidDocument as exc:
            return str(exc)
        # In place: callers hold a reference to the status they are building.
        self.state.status.clear()
        self.state.status.update(merged)
        return None

    def _path_for(self, pipeline: str):  # type: ignore[no-untyped-def]
        def path(dest_path: str, directory: str) -> str:
            return resource_dir(dest_path, self.state.namespace, self.state.promise, self.state.name, pipeline, directory)

        return path

    async def _write(self, catalog, planned: list[PlannedWrite], previous: list[Placement], message: str) -> None:  # type: ignore[no-untyped-def]
        written = await write_placements(catalog, planned, previous, message)
        self.state.placements = replace_placements(self.state.placements, previous, written)

    def _finish_run(self, generation: int) -> None:
        self.state.observed_generation = generation
        self.state.status["observedGeneration"] = generation
        self._publish()

    def _record_run(self, record: PipelineRunRecord) -> None:
        self.state.runs = record_run(self.state.runs, record)

    def _label(self) -> str:
        return f"{self.state.promise}/{self.state.namespace}/{self.state.name}"

    # --- delete ---

    async def _delete(self) -> None:
        status = self.state.status
        snapshot = await self._read_promise()
        delete_pipelines = snapshot.resource_delete if snapshot and snapshot.api else []
        if delete_pipelines and not self.state.force_delete:
            pipeline = delete_pipelines[0]
            name = pipeline.metadata.name
            status.setdefault("kratix", {}).setdefault("workflows", {})["pipelines"] = [{"name": name, "phase": "Running"}]
            while not self.state.force_delete:
                st.set_pipeline_phase(status, name, "Running", now_iso())
                self._publish()
                run_id = f"{self.state.namespace}-{self.state.name}-{name}-{workflow.uuid4().hex[:8]}"
                task = asyncio.ensure_future(run_pipeline(
                    run_id, pipeline, self._live_object(), self._context(snapshot, "delete"), {}  # type: ignore[arg-type]
                ))
                # `ktx delete --force` must not wait behind a hung delete pipeline.
                await workflow.wait_condition(lambda: task.done() or self.state.force_delete)
                if not task.done():
                    task.cancel()
                    break
                result = task.result()
                self._record_run(PipelineRunRecord.of(name, "delete", self.state.generation, result))
                error = self._merge_status(result)
                if error is None:
                    st.set_pipeline_phase(status, name, "Succeeded", now_iso())
                    break
                st.set_pipeline_phase(status, name, "Failed", now_iso(), error)
                st.set_condition(status, st.DELETE_COMPLETED, "False", "DeleteWorkflowFailed",
                                 f"The Delete Pipeline has failed: {error}", now_iso())
                self._publish()
                await workflow.wait_condition(lambda: self.state.force_delete, timeout=options.DELETE_RETRY_AFTER)
        catalog = await read_catalog()
        await self._write(catalog, [], list(self.state.placements), f"Delete from: {self._label()}")
        st.set_condition(status, st.DELETE_COMPLETED, "True", "DeleteWorkflowCompleted", "Deleted", now_iso())
        self._publish()

    # --- publishing ---

    def _publish(self) -> None:
        self.publisher.publish(
            {
                "object": self.state.document,
                "status": self.state.status,
                "placements": [p.model_dump(mode="json") for p in self.state.placements],
                "pending": [g.model_dump(mode="json") for g in self.state.pending_groups],
                "runs": [r.model_dump(mode="json") for r in self.state.runs],
            },
            st.summary_phase(self.state.status, deleting=self.state.delete_requested),
        )
