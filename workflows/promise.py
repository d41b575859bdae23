"""The lifecycle of one Promise: `promise/<name>`: dependencies, promise workflows, its resources' fate on delete."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

import yaml
from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.catalog import CatalogActivities, ListResourcesInput
    from activities.pipelines import PipelineContext
    from activities.state_stores import DirectoryWrite
    from domain import status as st
    from domain.catalog import Catalog
    from domain.documents import KRATIX_GROUP, Promise
    from domain.errors import InvalidDocument
    from domain.layout import ROOT_DIRECTORY, promise_dir, static_dependencies_dir, static_dependencies_file
    from domain.naming import CATALOG_WORKFLOW_ID
    from domain.promise_api import PromiseApi, check_promise, snapshot_of
    from domain.scheduling import DestinationSelector, SelectorSource, WorkloadGroup, squash
    from workflows import options
    from workflows.catalog import CatalogWorkflow, UnregisterApiInput
    from workflows.delivery import (
        PendingGroup,
        Placement,
        PlannedWrite,
        now_iso,
        plan_dependency_groups,
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
    from workflows.resource import ResourceWorkflow

STATIC_PIPELINE = ""  # static dependencies have no pipeline segment in their path
_RESOURCE_FANOUT = 50  # signals sent at once when every resource must re-run
_DELETE_POLL = timedelta(seconds=2)


class PromiseState(BaseModel):
    name: str
    document: dict[str, Any] = Field(default_factory=dict)
    generation: int = 0
    observed_generation: int = 0
    reconcile_requested: bool = False
    available: bool = False
    status: dict[str, Any] = Field(default_factory=dict)
    placements: list[Placement] = Field(default_factory=list)
    pending_groups: list[PendingGroup] = Field(default_factory=list)
    runs: list[PipelineRunRecord] = Field(default_factory=list)
    delete_requested: bool = False
    force_delete: bool = False


class PromiseWorkflowInput(BaseModel):
    state: PromiseState


class PromiseWorkflowResult(BaseModel):
    deleted: bool


@workflow.defn
class PromiseWorkflow:
    @workflow.init
    def __init__(self, input: PromiseWorkflowInput) -> None:
        self.state = input.state
        self.publisher = Publisher()

    @workflow.run
    async def run(self, input: PromiseWorkflowInput) -> PromiseWorkflowResult:
        self._publish()
        while True:
            await workflow.wait_condition(
                lambda: self.state.delete_requested
                or self.state.generation != self.state.observed_generation
                or self.state.reconcile_requested
            )
            if self.state.delete_requested:
                await self._delete()
                return PromiseWorkflowResult(deleted=True)
            await self._configure()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(PromiseWorkflowInput(state=self.state))

    @property
    def promise(self) -> Promise:
        return Promise.model_validate(self.state.document)

    @property
    def api(self) -> PromiseApi | None:
        return check_promise(self.promise)

    # --- messages ---

    @workflow.update
    async def apply(self, input: ApplyInput) -> ApplyResult:
        document = copy.deepcopy(input.document)
        document.pop("status", None)
        created = not self.state.document
        if created or document.get("spec") != self.state.document.get("spec"):
            self.state.generation += 1
        metadata = document.setdefault("metadata", {})
        metadata["generation"] = self.state.generation
        metadata["creationTimestamp"] = self.state.document.get("metadata", {}).get("creationTimestamp") or now_iso()
        unchanged = not created and document == self.state.document
        self.state.document = document
        self._publish()
        return ApplyResult(action="created" if created else "unchanged" if unchanged else "configured", generation=self.state.generation)

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        if self.state.delete_requested:
            raise ApplicationError("the Promise is being deleted", type="Conflict", non_retryable=True)
        try:
            check_promise(Promise.model_validate(input.document))
        except (InvalidDocument, ValueError) as exc:
            raise ApplicationError(str(exc), type="InvalidDocument", non_retryable=True) from exc

    @workflow.update
    async def delete(self, input: DeleteRequest) -> DeleteAccepted:
        self.state.delete_requested = True
        self.state.force_delete = self.state.force_delete or input.force
        self._publish()
        return DeleteAccepted()

    @workflow.signal
    def reconcile(self, input: ReconcileRequest) -> None:
        self.state.reconcile_requested = True

    # --- configure ---

    def _context(self, action: str) -> PipelineContext:
        return PipelineContext(
            workflow_type="promise",
            action=action,  # type: ignore[arg-type]
            promise_name=self.state.name,
            object_kind="Promise",
            object_group=KRATIX_GROUP,
            object_version="v1alpha1",
            object_name=self.state.name,
            crd_plural="promises",
            cluster_scoped=True,
        )

    def _live_object(self) -> dict[str, Any]:
        return {**copy.deepcopy(self.state.document), "status": copy.deepcopy(self.state.status)}

    async def _configure(self) -> None:
        generation = self.state.generation
        spec_changed = generation != self.state.observed_generation
        self.state.reconcile_requested = False
        promise = self.promise
        api = self.api
        status = self.state.status
        if api is not None:
            status["kind"], status["apiVersion"] = api.kind, api.api_version.lower()
        status["version"] = promise.metadata.labels.get("kratix.io/promise-version", "not-set")
        pipelines = promise.spec.workflows.promise.configure
        names = [p.metadata.name for p in pipelines]
        st.mark_configure_started(status, names, now_iso())
        if not self.state.available:
            status["status"] = "Unavailable"
            st.set_condition(status, st.AVAILABLE, "False", "PromiseUnavailable", "Cannot fulfil resource requests", now_iso())
        self._publish()
        catalog = await read_catalog()
        selectors = squash([s.match_labels for s in promise.spec.destination_selectors])
        pending: list[PendingGroup] = []
        pending += await self._write_static_dependencies(catalog, promise, selectors)
        for index, pipeline in enumerate(pipelines):
            name = pipeline.metadata.name
            st.set_pipeline_phase(status, name, "Running", now_iso())
            self._publish()
            run_id = f"promise-{self.state.name}-{name}-{workflow.uuid4().hex[:8]}"
            result = await run_pipeline(run_id, pipeline, self._live_object(), self._context("configure"), selectors)
            self._record_run(PipelineRunRecord.of(name, "configure", generation, result))
            error = failure_message(result) if not result.succeeded else None
            if error is None:
                try:
                    self.state.status = status = st.merge_status_file(status, result.status, promise_workflow=True)
                except InvalidDocument as exc:
                    error = str(exc)
            if error is not None:
                st.mark_configure_failed(status, name, now_iso(), error)
                self._finish_run(generation)
                return
            previous = [p for p in self.state.placements if p.pipeline == name]
            planned, waiting = plan_dependency_groups(catalog, name, result.groups, result.artifact, self._path_for(name))
            pending += waiting
            await self._write(catalog, planned, previous, f"Update from: promise/{self.state.name}/{name}")
            st.set_pipeline_phase(status, name, "Succeeded", now_iso())
            status["workflowsSucceeded"] = index + 1
        stale = [p for p in self.state.placements if p.pipeline not in names and p.pipeline != STATIC_PIPELINE]
        if stale:
            await self._write(catalog, [], stale, f"Delete from: promise/{self.state.name}")
        self.state.pending_groups = pending
        st.mark_configure_succeeded(status, now_iso(), promise_workflow=True)
        st.mark_works(status, now_iso(), [f"{g.pipeline or 'static'}/{g.directory}" for g in pending])
        became_available = not self.state.available
        self.state.available = True
        status["status"] = "Available"
        st.set_condition(status, st.AVAILABLE, "True", "PromiseAvailable", "Ready to fulfil resource requests", now_iso())
        if became_available:
            status["lastAvailableTime"] = now_iso()
        self._finish_run(generation)
        if became_available or spec_changed:
            # Resources waiting for this Promise, or built from its previous spec, re-run now.
            await self._signal_resources(lambda handle: handle.signal(ResourceWorkflow.reconcile, ReconcileRequest(reason="promise changed")))

    async def _write_static_dependencies(self, catalog: Catalog, promise: Promise, selectors: dict[str, str]) -> list[PendingGroup]:
        previous = [p for p in self.state.placements if p.pipeline == STATIC_PIPELINE]
        if not promise.spec.dependencies:
            if previous:
                await self._write(catalog, [], previous, f"Delete from: promise/{self.state.name}/static")
            return []
        content = yaml.safe_dump_all(promise.spec.dependencies, sort_keys=False)
        group = WorkloadGroup(
            directory=ROOT_DIRECTORY,
            selectors=[DestinationSelector(match_labels=selectors, source=SelectorSource.PROMISE)] if selectors else [],
        )
        planned, pending = plan_dependency_groups(
            catalog, STATIC_PIPELINE, [group], None, lambda dest_path, _: static_dependencies_dir(dest_path, self.state.name)
        )
        filename = static_dependencies_file(self.state.name)
        planned = [PlannedWrite(placement=p.placement, write=DirectoryWrite(path=p.write.path, inline={filename: content})) for p in planned]
        await self._write(catalog, planned, previous, f"Update from: promise/{self.state.name}/static")
        return pending

    def _path_for(self, pipeline: str):  # type: ignore[no-untyped-def]
        return lambda dest_path, directory: promise_dir(dest_path, self.state.name, pipeline, directory)

    async def _write(self, catalog: Catalog, planned: list[PlannedWrite], previous: list[Placement], message: str) -> None:
        written = await write_placements(catalog, planned, previous, message)
        self.state.placements = replace_placements(self.state.placements, previous, written)

    def _finish_run(self, generation: int) -> None:
        self.state.observed_generation = generation
        self.state.status["observedGeneration"] = generation
        self._publish()

    def _record_run(self, record: PipelineRunRecord) -> None:
        self.state.runs = record_run(self.state.runs, record)

    async def _resource_ids(self) -> list[str]:
        result = await workflow.execute_activity_method(
            CatalogActivities.list_promise_resources,
            ListResourcesInput(promise=self.state.name),
            start_to_close_timeout=options.READ_TIMEOUT,
            retry_policy=options.READ_RETRY,
        )
        return result.workflow_ids

    async def _signal_resources(self, send) -> int:  # type: ignore[no-untyped-def]
        ids = await self._resource_ids()
        for start in range(0, len(ids), _RESOURCE_FANOUT):
            handles = [workflow.get_external_workflow_handle(i) for i in ids[start:start + _RESOURCE_FANOUT]]
            await asyncio.gather(*[send(h) for h in handles], return_exceptions=True)  # a resource may finish meanwhile
        return len(ids)

    # --- delete ---

    async def _delete(self) -> None:
        status = self.state.status
        self.state.available = False
        status["status"] = "Unavailable"
        st.set_condition(status, st.AVAILABLE, "False", "PromiseUnavailable", "Promise is being deleted", now_iso())
        self._publish()
        delete_pipelines = self.promise.spec.workflows.promise.delete[:1]
        if delete_pipelines and not self.state.force_delete:
            await self._run_delete_pipeline(delete_pipelines[0])
        request = DeleteRequest(force=self.state.force_delete)
        while await self._signal_resources(lambda handle: handle.signal(ResourceWorkflow.delete_signal, request)):
            await workflow.sleep(_DELETE_POLL)
        catalog = await read_catalog()
        await self._write(catalog, [], list(self.state.placements), f"Delete from: promise/{self.state.name}")
        await workflow.get_external_workflow_handle(CATALOG_WORKFLOW_ID).signal(
            CatalogWorkflow.unregister_api, UnregisterApiInput(promise=self.state.name)
        )
        st.set_condition(status, st.DELETE_COMPLETED, "True", "DeleteWorkflowCompleted", "Deleted", now_iso())
        self._publish()

    async def _run_delete_pipeline(self, pipeline) -> None:  # type: ignore[no-untyped-def]
        status = self.state.status
        name = pipeline.metadata.name
        status.setdefault("kratix", {}).setdefault("workflows", {})["pipelines"] = [{"name": name, "phase": "Running"}]
        while not self.state.force_delete:
            st.set_pipeline_phase(status, name, "Running", now_iso())
            self._publish()
            run_id = f"promise-{self.state.name}-{name}-{workflow.uuid4().hex[:8]}"
            task = asyncio.ensure_future(run_pipeline(run_id, pipeline, self._live_object(), self._context("delete"), {}))
            await workflow.wait_condition(lambda: task.done() or self.state.force_delete)
            if not task.done():
                task.cancel()
                return
            result = task.result()
            self._record_run(PipelineRunRecord.of(name, "delete", self.state.generation, result))
            if result.succeeded:
                st.set_pipeline_phase(status, name, "Succeeded", now_iso())
                return
            error = failure_message(result)
            st.set_pipeline_phase(status, name, "Failed", now_iso(), error)
            st.set_condition(status, st.DELETE_COMPLETED, "False", "DeleteWorkflowFailed", f"The Delete Pipeline has failed: {error}", now_iso())
            self._publish()
            await workflow.wait_condition(lambda: self.state.force_delete, timeout=options.DELETE_RETRY_AFTER)

    def _publish(self) -> None:
        api = self.api if self.state.document else None
        snapshot = snapshot_of(self.promise, api, self.state.generation, self.state.available) if self.state.document else None
        self.publisher.publish(
            {
                "object": self.state.document,
                "status": self.state.status,
                "snapshot": snapshot.model_dump(mode="json", by_alias=True) if snapshot else None,
                "placements": [p.model_dump(mode="json") for p in self.state.placements],
                "pending": [g.model_dump(mode="json") for g in self.state.pending_groups],
                "runs": [r.model_dump(mode="json") for r in self.state.runs],
            },
            "Deleting" if self.state.delete_requested else ("Available" if self.state.available else "Pending"),
        )
