"""The lifecycle of one Promise: `promise/<name>`: requirements, dependencies, promise workflows, its resources'
fate."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Awaitable, Callable

import yaml
from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.platform.catalog import (
        CatalogActivities,
        ListDependentsInput,
        ListResourcesInput,
        ReadRequiredInput,
    )
    from activities.pipelines.activity import PipelineActivities
    from activities.pipelines.models import PipelineContext, PromiseRbacCleanup
    from activities.platform.redelivery import REDELIVER_SIGNAL, RedeliverRequest
    from domain import labels as lb
    from domain import status as st
    from domain.catalog import Catalog
    from domain.crd_validation import admit_promise
    from domain.documents import Pipeline, Promise
    from domain.errors import InvalidDocument
    from domain.layout import (
        PLATFORM_NAMESPACE,
        ROOT_DIRECTORY,
        promise_nested_root,
        static_dependencies_file,
        static_nested_root,
    )
    from domain.naming import CATALOG_WORKFLOW_ID, pipeline_task_queue
    from domain.promise_api import (
        PromiseApi,
        configured_pipeline_namespace,
        promise_version,
        read_promise_api,
        reconciliation_interval,
        snapshot_of,
    )
    from domain.requirements import evaluate_requirements
    from domain.scheduling import DestinationSelector, SelectorSource, WorkloadGroup, squash
    from workflows import options
    from workflows.catalog import CatalogWorkflow, UnregisterApiInput
    from workflows.delivery import PipelineOutput, now_iso, read, read_catalog
    from workflows.lifecycle import Action, LifecycleState, ObjectLifecycle
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
    from workflows.resource import ResourceWorkflow
    from activities.platform.search_attributes import REQUIRES

STATIC_PIPELINE = ""  # static dependencies have no pipeline segment in their path
# Signals sent at once when every resource must re-run; the pipelines they start queue on the pipeline task queue,
# whose worker slots bound how many run at a time.
_RESOURCE_FANOUT = 50
_DELETE_POLL = timedelta(seconds=2)
# A deleted Promise's pipeline ServiceAccounts and RBAC objects are deleted with it: histories from before did not.
PIPELINE_RBAC_CLEANUP_PATCH = "promise-pipeline-rbac-cleanup"


class PromiseState(LifecycleState):
    name: str
    available: bool = False
    versions: list[str] = Field(default_factory=list)
    # Resources must re-run once the current configure run succeeds (spec change, unpause, became available).
    roll_resources: bool = False


class PromiseWorkflowInput(BaseModel):
    state: PromiseState


class PromiseWorkflowResult(BaseModel):
    deleted: bool


class RequirementsChanged(BaseModel):
    promise: str


@workflow.defn
class PromiseWorkflow(ObjectLifecycle):
    workflow_type = "promise"

    @workflow.init
    def __init__(self, input: PromiseWorkflowInput) -> None:
        self.state: PromiseState = input.state
        self.publisher = Publisher(input.state.resource_version, coalesce=True)
        self.requirements_changed = False
        self.background: list[asyncio.Future[Any]] = []

    @workflow.run
    async def run(self, input: PromiseWorkflowInput) -> PromiseWorkflowResult:
        await self.lifecycle()
        return PromiseWorkflowResult(deleted=True)

    @property
    def promise(self) -> Promise:
        return Promise.model_validate(self.state.document)

    @property
    def api(self) -> PromiseApi | None:
        # Read, not admitted again: a Promise accepted before a rule was added must not fail its workflow now.
        api = self.promise.spec.api
        return read_promise_api(self.state.name, api) if api else None

    # --- messages ---

    @workflow.update
    async def apply(self, input: ApplyInput) -> ApplyResult:
        required_before = self._required_names()
        result = self._apply_document(input, lambda d: d.get("spec"))
        version = self._version()
        if version not in self.state.versions:
            self.state.versions.append(version)
            # Kratix records the version label in status at once (a new PromiseRevision), with no pipeline run.
            self.state.status["version"] = version
            if result.action != "created":
                self._event("Normal", "RevisionCreated", f"Revision for version {version} created")
                self._in_background(self._notify_dependents())
        else:
            self.state.status["version"] = version
        if self._required_names() != required_before or result.action == "created":
            workflow.upsert_search_attributes([REQUIRES.value_set(self._required_names())])
        self._publish()
        return result

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        if self.state.delete_requested:
            raise ApplicationError("the Promise is being deleted", type="Conflict", non_retryable=True)
        self._refuse_stale(input)
        try:
            # Admission as the API does it; the stored Promise is read (`api`) without it, so a rule added since a
            # Promise was accepted refuses its next change but never fails the workflow.
            admit_promise(Promise.model_validate(input.document))
        except (InvalidDocument, ValueError) as exc:
            raise ApplicationError(str(exc), type="InvalidDocument", non_retryable=True) from exc

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
        self._refuse_bad_labels(input)

    @workflow.update
    async def delete(self, input: DeleteRequest) -> DeleteAccepted:
        self._request_delete(input)
        return DeleteAccepted()

    @workflow.signal
    def reconcile(self, input: ReconcileRequest) -> None:
        self._restart("ManualReconciliation", input.reason)

    @workflow.signal(name=REDELIVER_SIGNAL)
    def redeliver(self, input: RedeliverRequest) -> None:
        """A Destination changed: spread dependencies to new matches, flag misplaced ones, rewrite or clean up."""
        self._request_redelivery(input)

    @workflow.signal
    def requirements_changed_signal(self, input: RequirementsChanged) -> None:
        """A required Promise was installed, upgraded, paused or removed: look again."""
        self.requirements_changed = True  # wakes a run waiting for its requirements
        if self.state.available:
            # Re-evaluate now: a required Promise going away makes this one unavailable.
            self._restart("RequirementsChanged", f"required Promise {input.promise} changed")

    def _labels_changed(self, old: dict[str, str]) -> None:
        super()._labels_changed(old)
        if lb.is_true(self.labels, lb.RECONCILE_RESOURCES):
            del self.labels[lb.RECONCILE_RESOURCES]  # Kratix removes it once the resources are relabelled
            self._in_background(self._roll_resources(f"label {lb.RECONCILE_RESOURCES} was set"))

    def _on_paused(self) -> None:
        self._set_available(False, "PausedReconciliation", "Paused")

    def _on_unpaused(self) -> None:
        self.state.roll_resources = True

    def _on_suspended(self) -> None:
        self._set_available(False, "WorkflowSuspended", "Suspended")

    def _in_background(self, work: Awaitable[Any]) -> None:
        self.background = [t for t in self.background if not t.done()] + [asyncio.ensure_future(work)]

    # --- hooks ---

    def _version(self) -> str:
        return promise_version(self.promise)

    def _required_names(self) -> list[str]:
        return sorted(r.name for r in self.promise.spec.required_promises) if self.state.document else []

    def _context(self, action: Action) -> PipelineContext:
        return PipelineContext.of_promise(action, self.state.name, configured_pipeline_namespace(self.promise))

    def _run_prefix(self) -> str:
        return f"promise-{self.state.name}"

    def _promise_selectors(self) -> dict[str, str]:
        return squash([s.match_labels for s in self.promise.spec.destination_selectors])

    def _interval_override(self) -> float | None:
        return reconciliation_interval(self.promise)

    def _set_available(
        self, available: bool, reason: str = "PromiseUnavailable", message: str = "Cannot fulfil resource requests"
    ) -> None:
        status = self.state.status
        changed = available != self.state.available
        self.state.available = available
        status["status"] = "Available" if available else "Unavailable"
        if available:
            st.set_condition(
                status, st.AVAILABLE, "True", "PromiseAvailable", "Ready to fulfil resource requests", now_iso()
            )
        else:
            st.set_condition(status, st.AVAILABLE, "False", reason, message, now_iso())
        if changed:
            if available:
                status["lastAvailableTime"] = now_iso()
                self._event("Normal", "Available", "Promise is available")
            else:
                self._event("Warning", "Unavailable", f"Promise no longer available: {message}")
            self._in_background(self._notify_dependents())
        self._publish()

    async def _prepare_configure(self, start: int) -> list[Pipeline] | None:
        promise, api, status = self.promise, self.api, self.state.status
        if api is not None:
            status["kind"], status["apiVersion"] = api.kind, api.api_version.lower()
        status["version"] = self._version()
        if promise.spec.required_promises and not await self._requirements_met(start):
            return None
        await self._write_static_dependencies(await read_catalog(), promise)
        return promise.spec.workflows.promise.configure

    async def _requirements_met(self, start: int) -> bool:
        required = self.promise.spec.required_promises
        self.requirements_changed = False
        result = await read(
            CatalogActivities.read_required_promises, ReadRequiredInput(names=[r.name for r in required])
        )
        verdict = evaluate_requirements(required, result.found)
        status = self.state.status
        status["requiredPromises"] = verdict.entries
        st.set_condition(
            status,
            "RequirementsFulfilled",
            "True" if verdict.fulfilled else "False",
            verdict.reason,
            verdict.message,
            now_iso(),
        )
        if verdict.fulfilled:
            return True
        st.set_condition(status, st.RECONCILED, "Unknown", "RequirementsNotFulfilled", "Pending", now_iso())
        self._event("Normal", verdict.reason, verdict.message)
        self._set_available(False, "PromiseUnavailable", "Cannot fulfil resource requests")
        # Woken by the required Promise's signal; the periodic look is a safety net for a missed one.
        try:
            await workflow.wait_condition(
                lambda: self.requirements_changed or self.state.delete_requested or self.state.start_from is not None,
                timeout=timedelta(seconds=self.config.requirement_recheck_s),
            )
        except asyncio.TimeoutError:
            pass
        if self.state.start_from is None:
            self.state.start_from = start
        return False

    async def _write_static_dependencies(self, catalog: Catalog, promise: Promise) -> None:
        if not promise.spec.dependencies:
            if any(o.pipeline == STATIC_PIPELINE for o in self.state.outputs):
                await self._drop_outputs(catalog, [STATIC_PIPELINE], "Delete from")
            return
        content = yaml.safe_dump_all(promise.spec.dependencies, sort_keys=False)
        selectors = self._promise_selectors()
        group = WorkloadGroup(
            directory=ROOT_DIRECTORY,
            selectors=[DestinationSelector(match_labels=selectors, source=SelectorSource.PROMISE)] if selectors else [],
        )
        await self._place(catalog, STATIC_PIPELINE, [group], None, {static_dependencies_file(self.state.name): content})

    def _output_of(
        self, pipeline: str, groups: list[WorkloadGroup], artifact: str | None, inline: dict[str, str]
    ) -> PipelineOutput:
        name = self.state.name
        if pipeline == STATIC_PIPELINE:
            # Kratix's static-dependency Work: no pipeline segment, one file, in the platform namespace.
            identifier, root = f"{name}-static-deps", static_nested_root(name)
        else:
            identifier, root = f"{name}-{pipeline}", promise_nested_root(name, pipeline)
        return PipelineOutput(
            pipeline=pipeline,
            groups=groups,
            artifact=artifact,
            inline=inline,
            dependency=True,
            identifier=identifier,
            namespace=PLATFORM_NAMESPACE,
            nested_root=root,
        )

    def _keeps_output(self, pipeline: str) -> bool:
        return pipeline == STATIC_PIPELINE

    def _label(self) -> str:
        return f"promise/{self.state.name}"

    async def _configure_succeeded(self, generation: int) -> None:
        self._mark_works()
        spec_changed = generation != self.state.observed_generation
        became_available = not self.state.available
        self._set_available(True)
        if became_available or spec_changed or self.state.roll_resources:
            self.state.roll_resources = False
            # Resources waiting for this Promise, or built from its previous spec, re-run now.
            await self._roll_resources("the Promise changed" if spec_changed else "the Promise became available")

    async def _roll_resources(self, reason: str) -> None:
        count = await self._signal_resources(
            lambda h: h.signal(ResourceWorkflow.reconcile, ReconcileRequest(reason=reason))
        )
        if count:
            self._event("Normal", "ReconcilingResources", f"Reconciling {count} resources: {reason}")
            self._publish()

    async def _list(self, activity: Any, arg: BaseModel) -> list[str]:
        result = await read(activity, arg)
        return result.workflow_ids

    async def _signal_resources(self, send: Callable[[Any], Awaitable[None]]) -> int:
        ids = await self._list(CatalogActivities.list_promise_resources, ListResourcesInput(promise=self.state.name))
        for start in range(0, len(ids), _RESOURCE_FANOUT):
            handles = [workflow.get_external_workflow_handle(i) for i in ids[start : start + _RESOURCE_FANOUT]]
            await asyncio.gather(*[send(h) for h in handles], return_exceptions=True)  # a resource may finish meanwhile
        return len(ids)

    async def _notify_dependents(self) -> None:
        ids = await self._list(CatalogActivities.list_dependent_promises, ListDependentsInput(promise=self.state.name))
        signal = RequirementsChanged(promise=self.state.name)
        await asyncio.gather(
            *[
                workflow.get_external_workflow_handle(i).signal(PromiseWorkflow.requirements_changed_signal, signal)
                for i in ids
            ],
            return_exceptions=True,
        )

    # --- delete ---

    async def _delete_pipeline(self) -> Pipeline | None:
        self._set_available(False, "PromiseUnavailable", "Promise is being deleted")
        pipelines = self.promise.spec.workflows.promise.delete
        return pipelines[0] if pipelines else None  # Kratix runs only the first delete pipeline

    async def _delete_cleanup(self) -> None:
        request = DeleteRequest(force=self.state.force_delete)
        while count := await self._signal_resources(lambda h: h.signal(ResourceWorkflow.delete_signal, request)):
            st.set_condition(
                self.state.status,
                st.DELETE_COMPLETED,
                "False",
                "WaitingForResources",
                f"waiting for {count} resource requests to be deleted",
                now_iso(),
            )
            self._publish()
            await workflow.sleep(_DELETE_POLL)
        if workflow.patched(PIPELINE_RBAC_CLEANUP_PATCH):
            # Kratix deletes the Promise's pipeline ServiceAccounts and RBAC with it (Kubernetes runner only).
            try:
                await workflow.execute_activity_method(
                    PipelineActivities.delete_promise_pipeline_rbac,
                    PromiseRbacCleanup(promise=self.state.name),
                    task_queue=pipeline_task_queue(workflow.info().task_queue),
                    start_to_close_timeout=options.PIPELINE_RBAC_CLEANUP_TIMEOUT,
                    retry_policy=options.PIPELINE_RBAC_CLEANUP_RETRY,
                )
            except ActivityError as exc:
                # Housekeeping on the cluster: the Promise's deletion goes on, and says what was left.
                self._event("Warning", "PipelineRbacNotDeleted", f"pipeline RBAC objects were not deleted: {exc.cause}")
        await workflow.get_external_workflow_handle(CATALOG_WORKFLOW_ID).signal(
            CatalogWorkflow.unregister_api, UnregisterApiInput(promise=self.state.name)
        )
        await self._notify_dependents()
        await asyncio.gather(*self.background, return_exceptions=True)

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(PromiseWorkflowInput(state=self.state))

    def _publish(self) -> None:
        memo = self._memo()
        if self.state.document:
            snapshot = snapshot_of(
                self.promise, self.api, self.state.generation, self.state.available, self.state.versions
            )
            memo["snapshot"] = snapshot.model_dump(mode="json", by_alias=True)
        phase = (
            "Deleting"
            if self.state.delete_requested
            else ("Available" if self.state.available else st.summary_phase(self.state.status))
        )
        self.publisher.publish(memo, phase)
