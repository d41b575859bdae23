"""The lifecycle of one Promise: `promise/<name>`: requirements, dependencies, promise workflows, its resources'
fate."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Awaitable, Callable

import yaml
from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

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
    from domain.naming import CATALOG_WORKFLOW_ID, pipeline_task_queue, promise_workflow_id, rollout_workflow_id
    from domain.rollout_plan import KIND as ROLLOUT_KIND
    from domain.promise_api import (
        PromiseApi,
        configured_pipeline_namespace,
        promise_version,
        read_promise_api,
        reconciliation_interval,
        snapshot_of,
    )
    from domain.requirements import evaluate_requirements, required_by
    from domain import revisions as rv
    from domain.revisions import REVISION_QUERY, Binding, Revision, RevisionView
    from domain.scheduling import DestinationSelector, SelectorSource, WorkloadGroup, squash
    from workflows import carried_memo, options
    from workflows import patches
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
    from workflows.rollout import RolloutWorkflow, StartRollout, StartRolloutResult
    from workflows.upgrade_records import ROLLOUT_RELEASED_SIGNAL, RolloutReleased
    from workflows.revision_records import (
        RequiredByChange,
        DeleteRevisionInput,
        DeleteRevisionResult,
        RevisionDeleted,
        HoldBindingInput,
        HoldBindingResult,
    )
    from activities.platform.search_attributes import KIND, PROMISE, REQUIRES

STATIC_PIPELINE = ""  # static dependencies have no pipeline segment in their path
# Signals sent at once when every resource must re-run; the pipelines they start queue on the pipeline task queue,
# whose worker slots bound how many run at a time.
_RESOURCE_FANOUT = 50
_DELETE_POLL = timedelta(seconds=2)


class PromiseState(LifecycleState):
    name: str
    available: bool = False
    versions: list[str] = Field(default_factory=list)
    # Resources must re-run once the current configure run succeeds (spec change, unpause, became available).
    roll_resources: bool = False
    # Kratix's PromiseRevisions, one per version applied, in the order first applied (domain/revisions.py).
    revisions: list[Revision] = Field(default_factory=list)
    # What each required Promise was last told for its `status.requiredBy` (this version and the version required),
    # so it is told once per change.
    required_by_sent: dict[str, str] = Field(default_factory=dict)
    # ResourceBindings applied before their requests, by `namespace/name`, until the request adopts its own.
    held_bindings: dict[str, Binding] = Field(default_factory=dict)
    # The one live RolloutPlan of this Promise (docs/rollouts.md), until it lets go.
    rollout: str | None = None


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
        previous_spec = self.state.document.get("spec") if self.state.document else None
        previous_version = self._version() if self.state.document else None
        result = self._apply_document(input, lambda d: d.get("spec"))
        version = self._version()
        if patches.patched(patches.REVISIONS):
            self._record_revision(previous_version, previous_spec, version)
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
            promise = Promise.model_validate(input.document)
            admit_promise(promise)
            rv.refuse_new_version(self._revisions(), promise_version(promise), self.state.document.get("spec"))
        except (InvalidDocument, ValueError) as exc:
            raise ApplicationError(str(exc), type="InvalidDocument", non_retryable=True) from exc

    @workflow.update
    async def label(self, input: LabelRequest) -> LabelResult:
        return self._apply_labels(input)

    @workflow.query(name=REVISION_QUERY)
    def revision(self, version: str) -> RevisionView | None:
        """One PromiseRevision (`latest` for the latest) with its spec, and the snapshot its requests run on."""
        revisions = self._revisions()
        if version == rv.LATEST:
            version = rv.latest_version(revisions)
        found = next((r for r in revisions if r.version == version), None)
        if found is None or not self.state.document:
            return None
        spec = found.spec if found.spec is not None else (self.state.document.get("spec") or {})
        document = {**self.state.document, "spec": spec}
        document["metadata"] = {**document.get("metadata", {}), "labels": {**self.labels, lb.PROMISE_VERSION: version}}
        promise = Promise.model_validate(document)
        api = read_promise_api(self.state.name, promise.spec.api) if promise.spec.api else None
        snapshot = snapshot_of(promise, api, self.state.generation, self.state.available, self.state.versions)
        if api is not None and snapshot.api is not None:
            snapshot.api = api  # with its schema: a rebind checks the request against it
        return RevisionView(
            version=version,
            latest=found.spec is None,
            document=rv.revision_document(self.state.name, found, spec, found.spec is None),
            snapshot=snapshot,
        )

    @workflow.update
    async def delete_revision(self, input: DeleteRevisionInput) -> DeleteRevisionResult:
        """Kratix deletes a PromiseRevision's requests with it (those bound to its version)."""
        self.state.revisions = [r for r in self.state.revisions if r.version != input.version]
        self.state.versions = [v for v in self.state.versions if v != input.version]
        self._event("Normal", "RevisionDeleted", f"Revision for version {input.version} deleted")
        self._publish()
        deleted = RevisionDeleted(version=input.version)
        count = await self._signal_resources(lambda h: h.signal(ResourceWorkflow.revision_deleted, deleted))
        self._in_background(self._notify_dependents())
        return DeleteRevisionResult(signalled=count)

    @workflow.update
    async def hold_binding(self, input: HoldBindingInput) -> HoldBindingResult:
        key = f"{input.namespace}/{input.resource}"
        before = self.state.held_bindings.get(key)
        if input.binding is None:
            self.state.held_bindings.pop(key, None)
            action = "deleted" if before else "unchanged"
        else:
            self.state.held_bindings[key] = input.binding
            action = "created" if before is None else ("unchanged" if before == input.binding else "configured")
        self._publish()
        return HoldBindingResult(action=action)

    @workflow.signal
    def binding_adopted(self, input: HoldBindingInput) -> None:
        """The request came and took its binding."""
        if self.state.held_bindings.pop(f"{input.namespace}/{input.resource}", None) is not None:
            self._publish()

    @hold_binding.validator
    def _validate_hold_binding(self, input: HoldBindingInput) -> None:
        if self.state.delete_requested:
            raise ApplicationError("the Promise is being deleted", type="Conflict", non_retryable=True)
        key = f"{input.namespace}/{input.resource}"
        if input.binding is not None and key not in self.state.held_bindings:
            if len(self.state.held_bindings) >= rv.MAX_HELD_BINDINGS:
                raise ApplicationError(
                    f"spec.resourceRef: Promise {self.state.name} holds {rv.MAX_HELD_BINDINGS} bindings for requests "
                    "not made yet, the most it may; make those requests first",
                    type="Conflict",
                    non_retryable=True,
                )

    @delete_revision.validator
    def _validate_delete_revision(self, input: DeleteRevisionInput) -> None:
        try:
            rv.refuse_revision_delete(self._revisions(), input.version)
        except LookupError as exc:
            raise ApplicationError(str(exc), type="NotFound", non_retryable=True) from exc
        except InvalidDocument as exc:
            raise ApplicationError(str(exc), type="Conflict", non_retryable=True) from exc

    def _revisions(self) -> list[Revision]:
        """The revisions, with the one a Promise from before revisions had: its live version."""
        if self.state.revisions or not self.state.document:
            return self.state.revisions
        return [Revision(version=self._version(), created=self._created_at())]

    def _created_at(self) -> str:
        return str(self.state.document.get("metadata", {}).get("creationTimestamp") or now_iso())

    def _record_revision(self, previous_version: str | None, previous_spec: Any, version: str) -> None:
        if previous_version is not None and not self.state.revisions:
            self.state.revisions = [Revision(version=previous_version, created=self._created_at())]
        self.state.revisions, _ = rv.record_revision(self.state.revisions, version, previous_spec, now_iso())

    @workflow.update
    async def start_rollout(self, input: StartRollout) -> StartRolloutResult:
        """Starts a RolloutPlan of this Promise, which then holds it until it lets go (ROLLOUT_RELEASED_SIGNAL).

        The hold and the plan's start are one step of this workflow: updates are decided one after another, so of two
        plans created at once exactly one starts, and a plan holding the Promise always exists."""
        self._refuse_rival_rollout(input.plan)
        held, self.state.rollout = self.state.rollout, input.plan
        document = input.rollout.document
        try:
            await workflow.start_child_workflow(
                RolloutWorkflow.run,
                input.rollout.model_copy(update={"claimed": True}),
                id=rollout_workflow_id(input.plan),
                # The plan outlives this run of the Promise's workflow (continue-as-new) and answers to its own delete.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                memo={"object": document},
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(KIND, ROLLOUT_KIND), SearchAttributePair(PROMISE, self.state.name)]
                ),
            )
        except WorkflowAlreadyStartedError:
            # That name runs already: this plan applied again (which still holds the Promise), or another plan.
            if held != input.plan and self.state.rollout == input.plan:
                self.state.rollout = held
            return StartRolloutResult(started=False)
        return StartRolloutResult(started=True)

    @start_rollout.validator
    def _validate_start_rollout(self, input: StartRollout) -> None:
        if self.state.delete_requested:
            raise ApplicationError("the Promise is being deleted", type="Conflict", non_retryable=True)
        self._refuse_rival_rollout(input.plan)

    def _refuse_rival_rollout(self, plan: str) -> None:
        held = self.state.rollout
        if held is not None and held != plan:
            raise ApplicationError(
                f'rolloutplan "{held}" of promise {self.state.name} has not finished: one plan per Promise at a time; '
                "delete it once it has finished",
                type="Conflict",
                non_retryable=True,
            )

    @workflow.signal(name=ROLLOUT_RELEASED_SIGNAL)
    def rollout_released(self, input: RolloutReleased) -> None:
        if self.state.rollout == input.plan:
            self.state.rollout = None

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
    def required_by_signal(self, input: RequiredByChange) -> None:
        """A Promise requiring this one: Kratix lists it in this one's `status.requiredBy`."""
        status = self.state.status
        status["requiredBy"] = required_by(
            status.get("requiredBy") or [], input.promise, input.version, input.required_version
        )
        if not status["requiredBy"]:
            del status["requiredBy"]
        self._publish()

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
            self._in_background(self._roll_resources(f"label {lb.RECONCILE_RESOURCES} was set", every=True))

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
        if not promise.spec.required_promises and self.state.required_by_sent and patches.patched(patches.REQUIRED_BY):
            await self._tell_required({})  # the requirements were dropped from the spec
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
        if patches.patched(patches.REQUIRED_BY):
            await self._tell_required({r.name: r.version or "" for r in required if r.name in result.found})
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

    async def _roll_resources(self, reason: str, *, every: bool = False) -> None:
        # A spec change re-runs only the requests bound to the changed revision (Kratix: those floating on latest,
        # and those pinned to this version); the reconcile-resources label re-runs every request.
        request = ReconcileRequest(reason=reason, version=None if every else self._version())
        count = await self._signal_resources(lambda h: h.signal(ResourceWorkflow.reconcile, request))
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

    async def _tell_required(self, wanted: dict[str, str]) -> None:
        """Each required Promise lists this one in its `status.requiredBy`; one no longer required drops it."""
        version = self._version()
        changes = {
            name: RequiredByChange(promise=self.state.name, version=version, required_version=required)
            for name, required in wanted.items()
            if self.state.required_by_sent.get(name) != f"{version}/{required}"
        }
        changes.update(
            {
                name: RequiredByChange(promise=self.state.name, version=version)
                for name in self.state.required_by_sent
                if name not in wanted
            }
        )
        for name, change in sorted(changes.items()):
            try:
                await workflow.get_external_workflow_handle(promise_workflow_id(name)).signal(
                    PromiseWorkflow.required_by_signal, change
                )
            except ApplicationError:
                pass  # the required Promise is gone: nothing lists this one any more
            if change.required_version is None:
                self.state.required_by_sent.pop(name, None)
            else:
                self.state.required_by_sent[name] = f"{version}/{change.required_version}"

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
        if patches.patched(patches.PIPELINE_RBAC_CLEANUP):
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
        if self.state.required_by_sent:
            await self._tell_required({})
        await asyncio.gather(*self.background, return_exceptions=True)

    def _continue_as_new(self) -> None:
        carried_memo.continue_as_new(PromiseWorkflowInput(state=self.state))

    def _publish(self) -> None:
        memo = self._memo()
        if self.state.document:
            snapshot = snapshot_of(
                self.promise, self.api, self.state.generation, self.state.available, self.state.versions
            )
            snapshot.held_bindings = {k: b.model_dump(mode="json") for k, b in sorted(self.state.held_bindings.items())}
            # Left out when empty, so the snapshot of a Promise holding none is what it was before bindings.
            held = set() if snapshot.held_bindings else {"held_bindings"}
            memo["snapshot"] = snapshot.model_dump(mode="json", by_alias=True, exclude=held)
            if patches.patched(patches.REVISIONS):
                latest = rv.latest_version(self._revisions())
                memo["revisions"] = [
                    {"version": r.version, "created": r.created, "latest": r.version == latest}
                    for r in self._revisions()
                ]
        phase = (
            "Deleting"
            if self.state.delete_requested
            else ("Available" if self.state.available else st.summary_phase(self.state.status))
        )
        self.publisher.publish(memo, phase)
