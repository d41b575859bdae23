"""One DryRun (Kratix's preview): `dryrun/<namespace>/<name>`, alive until the DryRun is deleted.

It runs the Promise's resource configure pipelines on the proposed request with KRATIX_DRY_RUN=true, diffs what they
wrote against the live request's last output, and writes that output and kratix-dry-run-summary.md to the
Destinations labelled `kratix.io/dry-run: "true"` only. It never tells the live request, the Promise or any other
object anything; off-platform actions the pipelines ask for are listed as "would run", never run. Deleting the
DryRun removes what it wrote (Kratix's ephemeral request and its Works are owned by the DryRun).

A compound request's output holds component requests (labelled kratix.io/parent-resource-name): for each, the DryRun
starts a component DryRun as a child workflow, which reports its diff back with a signal once it is made; the
summary nests the components' diffs, and `status.components` and `ComponentsSucceeded` say how each one went, as in
Kratix's compound-dry-run preview. Deleting the DryRun deletes its components first.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ChildWorkflowError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.artifacts.dry_run_diff import DiffDryRunInput, DiffDryRunResult, DryRunActivities, OutputFiles
    from activities.platform.apply import PLATFORM_DESTINATION
    from activities.platform.catalog import CatalogActivities, ReadPromiseInput
    from activities.platform.dry_run_components import ComponentRequest, DryRunComponentActivities, FindComponentsInput
    from activities.platform.search_attributes import KIND, PROMISE
    from activities.pipelines.models import PipelineContext, PipelineRunResult
    from domain import dry_run as dr
    from domain import status as st
    from domain.catalog import Catalog
    from domain.documents import Pipeline
    from domain.errors import InvalidDocument
    from domain.naming import dry_run_workflow_id, resource_workflow_id
    from domain.pipeline_rules import pipeline_timeout_s
    from domain.promise_api import PromiseSnapshot
    from domain.scheduling import DestinationSelector, SelectorSource, WorkloadGroup
    from domain.workflow_control import parse_workflow_control
    from workflows import options
    from workflows import patches
    from workflows.delivery import (
        PipelineOutput,
        Placement,
        deliver,
        is_dry_run_destination,
        now_iso,
        plan_output,
        plan_removal,
        read,
        read_catalog,
        read_platform_config,
        run_pipeline,
    )
    from workflows.publishing import Publisher
    from workflows.records import DeleteAccepted, DeleteRequest, failure_message

# How often a DryRun waiting for its Promise or for a dry-run Destination looks again (Kratix requeues).
RECHECK = timedelta(seconds=30)
SUMMARY_PIPELINE = "dry-run-summary"
# A deleted DryRun tries this often to remove what it wrote, then ends regardless: it never outlives its object.
REMOVAL_ATTEMPTS = 3
# What one component's result may weigh when it reaches its parent (and is kept in the parent's memo): MAX_COMPONENTS
# of them, nested summaries included, stay well under Temporal's 2 MB memo beside the parent's own diffs. Past it
# the diffs' text is left out, the changed files still listed.
COMPONENT_RESULT_BYTES = 32 * 1024


class DryRunWorkflowInput(BaseModel):
    document: dict[str, Any]
    # The request the pipelines see: the live request's metadata (or the names it would have) and the proposed
    # spec, validated and defaulted by the Promise's API at admission (Kratix's reader presents the same).
    request: dict[str, Any]
    resource_version: int = 0
    # The Promise as it would be (`ktx diff -f promise.yaml`); None: the one installed, read when the run starts.
    promise: PromiseSnapshot | None = None
    # A component DryRun's: the workflow of the DryRun that raised it, which its result is signalled to, and how
    # many compound requests deep it is.
    parent: str = ""
    depth: int = 0


class DryRunWorkflowResult(BaseModel):
    deleted: bool


class WouldRun(BaseModel):
    pipeline: str
    name: str
    provider: str


class DryRunFile(BaseModel):
    """One file's change, with the Destination the live request holds it on (for `ktx diff`)."""

    pipeline: str
    path: str
    change: str
    diff: str
    destinations: list[str] = Field(default_factory=list)


class ComponentResult(BaseModel):
    """What a component DryRun tells the one that raised it, once its diff is made or it failed; and what a compound
    DryRun shows of each component (`ktx diff` prints its files with the parent's)."""

    dry_run: str
    promise: str
    kind: str
    request: str
    namespace: str
    phase: dr.Phase = "Pending"
    message: str = ""
    summary: str = ""
    files: list[DryRunFile] = Field(default_factory=list)
    would_run: list[WouldRun] = Field(default_factory=list)
    components: list[ComponentResult] = Field(default_factory=list)

    def bounded(self) -> ComponentResult:
        """Within COMPONENT_RESULT_BYTES: first without the diffs' text (and the summary's), then without the nested
        components' files too."""
        if len(self.model_dump_json()) <= COMPONENT_RESULT_BYTES:
            return self
        note = f"(over the {COMPONENT_RESULT_BYTES} bytes a component's diff may take; not included)\n"
        slim = self.model_copy(
            update={
                "summary": note,
                "files": [f.model_copy(update={"diff": ""}) for f in self.files],
                "components": [
                    c.model_copy(update={"summary": "", "files": [], "components": []}) for c in self.components
                ],
            }
        )
        if len(slim.model_dump_json()) <= COMPONENT_RESULT_BYTES:
            return slim
        return slim.model_copy(update={"files": slim.files[:100], "components": []})


def _dry_run_groups(groups: list[WorkloadGroup]) -> list[WorkloadGroup]:
    """Kratix's scheduler replaces a dry-run Work's selectors with `kratix.io/dry-run: "true"`."""
    only = DestinationSelector(match_labels={dr.DRY_RUN: "true"}, source=SelectorSource.RESOURCE_WORKFLOW)
    return [g.model_copy(update={"selectors": [only]}) for g in groups]


def _dry_run_catalog(catalog: Catalog) -> Catalog:
    """Only the dry-run Destinations, and never one that applies what it receives back into the platform: a compound
    request's preview must not create its components for real."""
    kept = {
        name: d
        for name, d in catalog.destinations.items()
        if is_dry_run_destination(d.metadata.labels) and d.metadata.annotations.get(PLATFORM_DESTINATION) != "true"
    }
    return catalog.model_copy(update={"destinations": kept})


@workflow.defn
class DryRunWorkflow:
    @workflow.init
    def __init__(self, input: DryRunWorkflowInput) -> None:
        self.document = input.document
        self.spec = dr.parse_dry_run(input.document)
        self.ephemeral = dr.ephemeral_name(self.spec.name)
        self.status: dict[str, Any] = {}
        self.placements: list[Placement] = []
        self.files: list[DryRunFile] = []
        self.would_run: list[WouldRun] = []
        self.summary = ""
        self.diffed = False
        self.deleting = False
        self.publisher = Publisher(input.resource_version)
        self.parent = input.parent
        self.kind = str(input.request.get("kind") or "")
        self.depth = input.depth
        self.reported = False
        # dry-run name -> its component's result, as the components report (Pending until then)
        self.components: dict[str, ComponentResult] = {}
        self.children: list[workflow.ChildWorkflowHandle[Any, DryRunWorkflowResult]] = []

    @workflow.update
    async def delete(self, input: DeleteRequest) -> DeleteAccepted:
        self.deleting = True
        return DeleteAccepted()

    @workflow.signal
    def delete_component(self, input: DeleteRequest) -> None:
        """The DryRun that raised this component is being deleted (an update cannot be sent from a workflow)."""
        self.deleting = True

    @workflow.signal
    def component_finished(self, input: ComponentResult) -> None:
        if input.dry_run in self.components:
            self.components[input.dry_run] = input
            self._sync_components()
            self._publish()

    @workflow.run
    async def run(self, input: DryRunWorkflowInput) -> DryRunWorkflowResult:
        self._publish()
        await self._preview(input.request, input.promise)
        if not self.reported:
            await self._report("Failed", "the dry run was deleted before its diff was made")
        await workflow.wait_condition(lambda: self.deleting)
        await self._delete_components()
        for _ in range(REMOVAL_ATTEMPTS):
            if not self.placements:
                break
            catalog = await read_catalog()
            try:
                await deliver(
                    catalog, [plan_removal(catalog, self.placements)], f"Delete from: dry run {self._label()}", {}
                )
                self.placements = []
            except ActivityError as exc:
                # The DryRun is gone either way; what it could not remove stays on the dry-run Destination only.
                self.status["message"] = f"could not remove the dry-run output: {exc.cause or exc}"[:4096]
                await self._recheck()
        self.publisher.publish_final()
        return DryRunWorkflowResult(deleted=True)

    # --- the preview ---

    async def _preview(self, request: dict[str, Any], proposed: PromiseSnapshot | None) -> None:
        snapshot = proposed
        while snapshot is None and not self.deleting:
            snapshot = (await read(CatalogActivities.read_promise, ReadPromiseInput(name=self.spec.promise))).snapshot
            if snapshot is not None and snapshot.available and snapshot.api is not None:
                break
            snapshot = None
            self.status["message"] = f"waiting for Promise {self.spec.promise} to be available"
            self._publish()
            await self._recheck()
        if self.deleting or snapshot is None or snapshot.api is None:
            return
        self.status.pop("message", None)
        config = await read_platform_config()
        context = PipelineContext.of_resource(
            "configure", snapshot.api, self.spec.live_name, self.spec.live_namespace
        ).model_copy(update={"dry_run": True})
        obj = {**copy.deepcopy(request), "status": {}}
        outputs: list[PipelineOutput] = []
        for pipeline in snapshot.resource_configure:
            timeout_s = pipeline_timeout_s(pipeline, config.pipeline_timeout_s)
            result = await self._run(pipeline, obj, context, snapshot.destination_selectors, timeout_s)
            if result is None:
                return
            failure, suspended = self._absorb(obj, result)
            if failure is not None:
                await self._finish(failure)
                return
            name = pipeline.metadata.name
            asked = pipeline.spec.actions + result.actions
            self.would_run += [WouldRun(pipeline=name, name=a.name, provider=a.provider) for a in asked]
            if suspended:
                break  # Kratix writes no Work for a suspended pipeline, and runs none after it
            outputs.append(self._output(name, _dry_run_groups(result.groups), result.artifact, {}))
        try:
            diff = await self._diff(outputs)
        except ActivityError as exc:
            await self._finish(f"the diff could not be made: {exc.cause or exc}"[:4096])
            return
        self.files = [DryRunFile(**d.model_dump()) for d in diff.files]
        if patches.patched(patches.COMPOUND_DRY_RUNS):
            await self._follow_components(outputs)
            if self.deleting:
                return
        components = [
            dr.Component(c.promise, c.request, c.namespace, c.dry_run, c.phase, c.message, c.summary)
            for c in self.components.values()
        ]
        self.summary = dr.summary(diff.sections, self.spec.promise, self.spec.live_name, components) or ""
        if self.would_run:
            self.summary = (self.summary or dr.SUMMARY_TITLE) + _would_run_section(self.would_run)
        if self.summary:
            filepath = dr.summary_filepath(self.spec.name, component=bool(self.parent))
            outputs.append(
                self._output(
                    SUMMARY_PIPELINE, _dry_run_groups([WorkloadGroup(directory=".")]), None, {filepath: self.summary}
                )
            )
        # Shown before it is written anywhere: `ktx diff` reads it here and needs no dry-run Destination.
        self.diffed = True
        self._publish()
        await self._report("Succeeded", "")
        await self._write(outputs)
        if not self.deleting:
            await self._finish(None)

    # --- components ---

    async def _follow_components(self, outputs: list[PipelineOutput]) -> None:
        """Starts a component DryRun for each component request in the output, and waits (bounded, as Kratix does)
        for each to report; one that does not stays Pending in the partial summary."""
        if self.depth >= dr.MAX_DEPTH:
            self.status["message"] = f"components more than {dr.MAX_DEPTH} compound requests deep are not previewed"
            return
        found = await workflow.execute_activity_method(
            DryRunComponentActivities.find_components,
            FindComponentsInput(
                outputs=[_output_files(o) for o in outputs],
                namespace=self.spec.namespace,
            ),
            start_to_close_timeout=options.STATE_STORE_TIMEOUT,
            retry_policy=options.READ_RETRY,
        )
        if found.more:
            self.status["message"] = f"{found.more} more component requests not previewed (at most {dr.MAX_COMPONENTS})"
        for component in found.components:
            await self._start_component(component)
        if not self.components:
            return
        self._sync_components()
        self._publish()
        try:
            await workflow.wait_condition(
                lambda: self.deleting or all(c.phase != "Pending" for c in self.components.values()),
                timeout=timedelta(seconds=dr.COMPONENT_TIMEOUT_S),
            )
        except TimeoutError:
            pass

    async def _start_component(self, component: ComponentRequest) -> None:
        named = {"metadata": {"name": component.name, "namespace": component.namespace}}
        document = dr.component_dry_run(self.spec, component.promise, component.request or named)
        name = document["metadata"]["name"]
        result = ComponentResult(
            dry_run=name,
            promise=component.promise,
            kind=component.kind,
            request=component.name,
            namespace=component.namespace,
        )
        self.components[name] = result
        if component.error:
            self.components[name] = result.model_copy(update={"phase": "Failed", "message": component.error})
            return
        try:
            handle = await workflow.start_child_workflow(
                DryRunWorkflow.run,
                DryRunWorkflowInput(
                    document=document,
                    request=component.request,
                    parent=workflow.info().workflow_id,
                    depth=self.depth + 1,
                ),
                id=dry_run_workflow_id(self.spec.namespace, name),
                memo={"object": document},
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(KIND, dr.KIND), SearchAttributePair(PROMISE, component.promise)]
                ),
            )
        except WorkflowAlreadyStartedError:
            message = f'a DryRun named "{name}" exists already in namespace "{self.spec.namespace}"'
            self.components[name] = result.model_copy(update={"phase": "Failed", "message": message})
            return
        self.children.append(handle)

    def _sync_components(self) -> None:
        self.status["components"] = [
            dr.Component(c.promise, c.request, c.namespace, c.dry_run, c.phase, c.message).status()
            for c in self.components.values()
        ]

    async def _report(self, phase: dr.Phase, message: str) -> None:
        """A component tells the DryRun that raised it how it went, once."""
        if not self.parent or self.reported:
            return
        self.reported = True
        result = ComponentResult(
            dry_run=self.spec.name,
            promise=self.spec.promise,
            kind=self.kind,
            request=self.spec.live_name,
            namespace=self.spec.live_namespace,
            phase=phase,
            message=message,
            summary=self.summary,
            files=self.files,
            would_run=self.would_run,
            components=list(self.components.values()),
        )
        try:
            await workflow.get_external_workflow_handle(self.parent).signal(
                DryRunWorkflow.component_finished, result.bounded()
            )
        except FailureError:
            pass  # the parent is gone: it deletes its components before it ends, so this one is being deleted too

    async def _delete_components(self) -> None:
        """Each component removes what it wrote and ends before its parent does (Kratix's owner references)."""
        for handle in self.children:
            try:
                await handle.signal(DryRunWorkflow.delete_component, DeleteRequest())
            except FailureError:
                pass  # it has ended already: deleted on its own
        for handle in self.children:
            try:
                await handle
            except ChildWorkflowError:
                pass  # it ended without a result; it is gone either way

    async def _diff(self, outputs: list[PipelineOutput]) -> DiffDryRunResult:
        return await workflow.execute_activity_method(
            DryRunActivities.diff_dry_run,
            DiffDryRunInput(
                live_workflow_id=resource_workflow_id(self.spec.promise, self.spec.live_namespace, self.spec.live_name),
                proposed=[_output_files(o) for o in outputs],
            ),
            start_to_close_timeout=options.STATE_STORE_TIMEOUT,
            retry_policy=options.READ_RETRY,
        )

    async def _recheck(self) -> None:
        try:
            await workflow.wait_condition(lambda: self.deleting, timeout=RECHECK)
        except TimeoutError:
            pass

    async def _run(
        self,
        pipeline: Pipeline,
        obj: dict[str, Any],
        context: PipelineContext,
        selectors: dict[str, str],
        timeout_s: float,
    ) -> PipelineRunResult | None:
        """One run; a run deferred for want of a slot is asked again, as the object workflows do."""
        waits = 0
        while not self.deleting:
            run_id = (
                f"dryrun-{self.spec.namespace}-{self.spec.name}-{pipeline.metadata.name}-{workflow.uuid4().hex[:8]}"
            )
            try:
                result = await run_pipeline(run_id, pipeline, obj, context, selectors, timeout_s)
            except ActivityError as exc:
                return PipelineRunResult(succeeded=False, message=str(exc.cause or exc)[:4096])
            if not result.deferred:
                return result
            waits += 1
            delay = min(options.SLOT_RETRY_BASE_S * 2**waits, options.SLOT_RETRY_CAP_S)
            try:
                await workflow.wait_condition(lambda: self.deleting, timeout=delay)
            except TimeoutError:
                pass
        return None

    def _absorb(self, obj: dict[str, Any], result: PipelineRunResult) -> tuple[str | None, bool]:
        """(failure, suspended): the run's status merged into the object the next pipeline sees, as the status writer
        does; an unreadable status.yaml or workflow-control.yaml fails the pipeline, as in Kratix."""
        if not result.succeeded:
            return failure_message(result), False
        try:
            obj["status"] = st.merge_status_file(obj["status"], result.status, promise_workflow=False)
            control = parse_workflow_control(result.workflow_control)
        except InvalidDocument as exc:
            return str(exc), False
        except Exception as exc:  # noqa: BLE001 - pure functions over a pipeline's output; the run failed
            return f"the pipeline's metadata could not be read: {type(exc).__name__}: {exc}"[:4096], False
        suspended = control is not None and control.suspends
        return None, suspended

    def _output(
        self, pipeline: str, groups: list[WorkloadGroup], artifact: str | None, inline: dict[str, str]
    ) -> PipelineOutput:
        """Laid out as the ephemeral request's output would be, so it never lands where the live request's does."""
        spec = self.spec
        return PipelineOutput.of_resource(
            spec.promise, spec.namespace, self.ephemeral, pipeline, groups, artifact, inline
        )

    async def _write(self, outputs: list[PipelineOutput]) -> None:
        """Onto the dry-run Destinations only; waits (re-checking) while there is none, or while writing fails."""
        while not self.deleting:
            catalog = _dry_run_catalog(await read_catalog())
            if catalog.destinations:
                plans = [plan_output(catalog, o, [], workflow.random(), lambda p: True, True) for o in outputs]
                try:
                    self.placements = await deliver(catalog, plans, f"Update from: dry run {self._label()}", {})
                    break
                except ActivityError as exc:
                    self.status["message"] = f"the dry-run output could not be written: {exc.cause or exc}"[:4096]
            else:
                self.status["message"] = 'waiting for a Destination labelled kratix.io/dry-run: "true"'
            self._publish()
            await self._recheck()
        if self.deleting:
            return
        self.status.pop("message", None)
        failed = [p.error for p in self.placements if p.error]
        if failed:
            self.status["message"] = f"some dry-run output could not be written: {failed[0]}"

    async def _finish(self, failure: str | None) -> None:
        value, reason, message = dr.completed_condition(failure)
        st.set_condition(self.status, dr.COMPLETED, value, reason, message, now_iso())
        if self.components and failure is None:
            components = [
                dr.Component(c.promise, c.request, c.namespace, c.dry_run, c.phase) for c in self.components.values()
            ]
            value, reason, message = dr.components_condition(components)
            st.set_condition(self.status, dr.COMPONENTS_SUCCEEDED, value, reason, message, now_iso())
        self._publish()
        await self._report("Failed" if failure else "Succeeded", failure or "")

    def _label(self) -> str:
        return f"{self.spec.namespace}/{self.spec.name}"

    def _publish(self) -> None:
        self.publisher.publish(
            {
                "object": self.document,
                "status": self.status,
                "placements": [p.model_dump(mode="json") for p in self.placements],
                "dryRun": {
                    "files": [f.model_dump() for f in self.files],
                    "wouldRun": [w.model_dump() for w in self.would_run],
                    "summary": self.summary,
                    "diffed": self.diffed,
                    # Only for a compound request: an unchanged memo is no new command in a replayed history.
                    **({"components": [c.model_dump() for c in self.components.values()]} if self.components else {}),
                },
            },
            _phase(self.status),
        )


def _output_files(output: PipelineOutput) -> OutputFiles:
    return OutputFiles(
        pipeline=output.pipeline,
        artifact=output.artifact,
        files=sorted({f for g in output.groups for f in g.files}),
        inline=output.inline,
    )


def _phase(status: dict[str, Any]) -> str:
    completed = st.get_condition(status, dr.COMPLETED)
    if completed is None:
        return "Pending"
    return "Completed" if completed.get("status") == "True" else "Failed"


def _would_run_section(would_run: list[WouldRun]) -> str:
    """ktx's own: Kratix has no off-platform actions, so this section appears only when a pipeline asked for one."""
    lines = ["\n---\n\n## Off-platform actions (would run; skipped in a dry run)\n\n"]
    lines += [f"- `{w.pipeline}`: {w.name} ({w.provider})\n" for w in would_run]
    return "".join(lines)
