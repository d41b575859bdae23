"""The Kratix workflow engine shared by Promise and resource workflows.

One object, one Temporal workflow, one loop: it waits until a run is due (spec change, manual reconciliation, the
reconciliation interval, a resumed or retried suspension), runs the configure pipelines in order, and finally runs
the delete pipeline. Only one run is ever in flight, so two configure runs of one object can never overlap; a newer
spec or a manual reconciliation makes the current run stop at the next pipeline boundary and start again from the
first pipeline. Every wait shows its reason in status, and every timer is a durable Temporal timer.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.artifacts.gc import HELD_ARTIFACTS_QUERY, HeldArtifacts
    from activities.artifacts.dry_run_diff import PIPELINE_OUTPUTS_QUERY
    from activities.pipelines.models import PipelineContext, PipelineRunResult
    from activities.platform.redelivery import RedeliverRequest
    from domain import labels as lb
    from domain import status as st
    from domain.catalog import Catalog
    from domain.actions import Action as ActionSpec
    from domain.actions import ActionRecord
    from domain.config import PlatformConfig
    from domain.documents import Pipeline
    from domain.durations import format_duration
    from domain.pipeline_rules import pipeline_timeout_s
    from domain.errors import InvalidDocument
    from domain.events import Event, record_event
    from domain.workflow_control import WorkflowControl, parse_workflow_control, retry_after_error
    from domain.naming import destination_workflow_id
    from domain.scheduling import WorkloadGroup
    from workflows.delivery import (
        PendingGroup,
        PipelineOutput,
        Placement,
        deliver,
        is_dry_run_destination,
        iso,
        now_iso,
        plan_output,
        plan_removal,
        read_catalog,
        read_platform_config,
        run_pipeline,
    )
    from workflows import actions as off_platform
    from workflows import idle_continue_as_new
    from workflows import options
    from workflows import patches
    from workflows.destination import DestinationWorkflow, WriteReport
    from workflows.publishing import Publisher
    from workflows.records import (
        ApplyInput,
        ApplyResult,
        DeleteRequest,
        LabelRequest,
        LabelResult,
        PipelineRunRecord,
        StatusPatch,
        StatusPatched,
        failure_message,
        record_run,
    )

Action = Literal["configure", "delete"]


def _activity_failure(exc: ActivityError) -> str:
    """The innermost cause's message, cut to what status shows (a failure may quote a whole payload)."""
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    message = f"the pipeline could not be run: {cause}"
    return message if len(message) <= 4096 else message[:4096] + "..."


WAITING_FOR_PIPELINE = "WaitingForRunningPipeline"


RUNNING_PIPELINE_QUERY = "running_pipeline"


class RunningPipeline(BaseModel):
    """The pipeline whose run the workflow awaits now (never across continue-as-new: none runs then)."""

    action: Action
    name: str
    timeout_s: float
    # Where its containers' logs are being written (<logs dir>/<run_id>/<container>.log), for reading them live.
    run_id: str = ""
    containers: list[str] = Field(default_factory=list)


class LifecycleState(BaseModel):
    """What every object workflow carries across continue-as-new."""

    document: dict[str, Any] = Field(default_factory=dict)
    generation: int = 0
    observed_generation: int = 0
    status: dict[str, Any] = Field(default_factory=dict)
    placements: list[Placement] = Field(default_factory=list)
    pending_groups: list[PendingGroup] = Field(default_factory=list)
    # The last output of each configure pipeline, so it can be placed again without re-running the pipeline.
    outputs: list[PipelineOutput] = Field(default_factory=list)
    redeliver: RedeliverRequest | None = None
    delivery_retry_at: datetime | None = None
    delivery_failures: int = 0
    # The write error last reported to each Destination's workflow, so it is told once, and told when it clears.
    reported_write_errors: dict[str, str] = Field(default_factory=dict)
    # Off-platform actions done for this object, for updates and for compensation on delete.
    actions: list[ActionRecord] = Field(default_factory=list)
    runs: list[PipelineRunRecord] = Field(default_factory=list)
    run_counts: dict[str, int] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    # The pipeline index the next run starts from; None while nothing is due.
    start_from: int | None = None
    # Index of the suspended pipeline (configure, or 0 for the delete pipeline) until it is resumed or restarted.
    suspended_at: int | None = None
    retry_at: datetime | None = None
    next_reconcile_at: datetime | None = None
    delete_requested: bool = False
    force_delete: bool = False
    # The last resourceVersion published (workflows/publishing.py), so a new run goes on from it.
    resource_version: int = 0


class ObjectLifecycle:
    """Mixin for the Promise and resource workflows; subclasses provide the hooks at the bottom."""

    state: LifecycleState
    config: PlatformConfig
    publisher: Publisher
    workflow_type: Literal["promise", "resource"]
    running: RunningPipeline | None = None
    continue_when_idle: bool = False

    @workflow.query(name=HELD_ARTIFACTS_QUERY)
    def held_artifacts(self) -> HeldArtifacts:
        """The stored outputs this object may place again; the artifact garbage collector keeps them."""
        return HeldArtifacts(digests=sorted({o.artifact for o in self.state.outputs if o.artifact}))

    @workflow.query(name=RUNNING_PIPELINE_QUERY)
    def running_pipeline(self) -> RunningPipeline | None:
        """The run in progress, whose logs the API reads as they are written (a query: no command, nothing recorded)."""
        return self.running

    @workflow.query(name=PIPELINE_OUTPUTS_QUERY)
    def pipeline_outputs(self) -> dict[str, Any]:
        """The last output of each pipeline, which a DryRun diffs its preview against
        (activities/artifacts/dry_run_diff.py)."""
        return {"outputs": [o.model_dump(mode="json") for o in self.state.outputs]}

    # --- the loop ---

    async def lifecycle(self) -> None:
        self.continue_when_idle = idle_continue_as_new.allowed_this_run()
        self.config = await read_platform_config()
        self._publish()
        while True:
            await self._wait_for_work()
            if not self._work_due():
                await self._continue_as_new_when_handled()
            if self.state.delete_requested:
                await self._delete()
                self.publisher.flush()  # the deleted object's last state, before the workflow ends
                return
            if self.state.redeliver is not None:
                request, self.state.redeliver = self.state.redeliver, None
                await self._redeliver(request)
                continue
            start, self.state.start_from = self.state.start_from or 0, None
            await self._configure(start)
            if workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new_when_handled()

    async def _continue_as_new_when_handled(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.state.resource_version = self.publisher.resource_version
        self._continue_as_new()

    @property
    def labels(self) -> dict[str, str]:
        return self.state.document.setdefault("metadata", {}).setdefault("labels", {})

    @property
    def paused(self) -> bool:
        return lb.is_true(self.labels, lb.PAUSED)

    def _timer_due_at(self) -> datetime | None:
        timers = (
            [self.state.delivery_retry_at]
            if self.paused
            else [self.state.retry_at, self.state.next_reconcile_at, self.state.delivery_retry_at]
        )
        due = [t for t in timers if t is not None]
        return min(due) if due else None

    def _work_due(self) -> bool:
        # Placement is the scheduler's job, not the reconciler's: it goes on while the object is paused.
        return (
            (self.state.delete_requested and (self.state.force_delete or not self.paused))
            or (self.state.start_from is not None and not self.paused)
            or self.state.redeliver is not None
        )

    def _work_or_new_run_due(self) -> bool:
        return self._work_due() or idle_continue_as_new.suggested(self.continue_when_idle)

    async def _wait_for_work(self) -> None:
        """Returns when work is due, or (with no work due) when Temporal suggests continuing as new."""
        while not self._work_or_new_run_due():
            due = self._timer_due_at()
            timeout = max((due - workflow.now()).total_seconds(), 0.001) if due else None
            try:
                await workflow.wait_condition(self._work_or_new_run_due, timeout=timeout)
            except asyncio.TimeoutError:
                self._fire_timers()

    def _fire_timers(self) -> None:
        now = workflow.now()
        if self.state.delivery_retry_at is not None and self.state.delivery_retry_at <= now:
            self.state.delivery_retry_at = None
            self._request_redelivery(RedeliverRequest(reason="retrying failed state-store writes"))
        if self.state.retry_at is not None and self.state.retry_at <= now:
            # Kratix removes the suspended label itself once nextRetryAt has passed, which resumes the pipeline.
            self.state.retry_at = None
            self.labels.pop(lb.WORKFLOW_SUSPENDED, None)
            self._resume("RetryAfter elapsed")
        if self.state.next_reconcile_at is not None and self.state.next_reconcile_at <= now:
            self.state.next_reconcile_at = None
            self._restart("ReconciliationInterval", "the reconciliation interval elapsed")

    # --- triggers (called from handlers and timers; synchronous, deterministic) ---

    def _restart(self, reason: str, message: str) -> None:
        """Run the whole configure workflow again from the first pipeline, discarding any suspension."""
        if self.state.suspended_at is not None or lb.WORKFLOW_SUSPENDED in self.labels:
            self.labels.pop(lb.WORKFLOW_SUSPENDED, None)
            self.state.suspended_at = None
            self.state.retry_at = None
        self.state.start_from = 0
        self._event("Normal", reason, f"Configure workflow will run from the start: {message}")
        self._publish()

    def _resume(self, message: str) -> None:
        if self.state.suspended_at is None:
            return
        index, self.state.suspended_at = self.state.suspended_at, None
        self.state.retry_at = None
        if self.state.start_from is None:
            self.state.start_from = index
        self._event("Normal", "WorkflowResumed", message)
        self._publish()

    def _apply_document(self, input: ApplyInput, spec_of: Any) -> ApplyResult:
        """Kubernetes semantics: only a spec change bumps the generation; labels drive reconciliation controls."""
        document = copy.deepcopy(input.document)
        document.pop("status", None)
        previous = self.state.document
        created = not previous
        metadata = document.setdefault("metadata", {})
        new_labels = metadata.setdefault("labels", {})
        old_labels = dict((previous.get("metadata") or {}).get("labels") or {})
        for key in lb.PLATFORM_OWNED:
            if key in old_labels and key not in new_labels:
                new_labels[key] = old_labels[key]
        spec_changed = created or spec_of(document) != spec_of(previous)
        if spec_changed:
            self.state.generation += 1
        metadata["generation"] = self.state.generation
        metadata["creationTimestamp"] = (previous.get("metadata") or {}).get("creationTimestamp") or now_iso()
        # Kubernetes' uid: one object's life, so a deleted and re-created object is a new one outside too.
        metadata["uid"] = (previous.get("metadata") or {}).get("uid") or str(workflow.uuid4())
        unchanged = not created and previous == document
        self.state.document = document
        if spec_changed:
            self._restart("SpecChanged" if not created else "Created", f"generation {self.state.generation}")
        self._labels_changed(old_labels)
        self._publish()
        return ApplyResult(
            action="created" if created else "unchanged" if unchanged else "configured",
            generation=self.state.generation,
        )

    def _apply_labels(self, input: LabelRequest) -> LabelResult:
        old_labels = dict(self.labels)
        for key in input.remove:
            self.labels.pop(key, None)
        self.labels.update(input.set)
        self._labels_changed(old_labels)
        self._publish()
        return LabelResult(labels=dict(self.labels))

    def _refuse_bad_labels(self, input: LabelRequest) -> None:
        """For the label update's validator: the API checks a change before it reaches Temporal, this checks it again
        against the labels the object holds, so no client can grow them past what the workflow's payloads carry.
        Reads only: a validator must not change state."""
        current = (self.state.document.get("metadata") or {}).get("labels") or {}
        try:
            lb.check_label_change(input.set, input.remove, current)
        except InvalidDocument as exc:
            details = [{"field": e.field, "reason": e.reason} for e in exc.errors]
            raise ApplicationError(str(exc), details, type="InvalidDocument", non_retryable=True) from exc

    def _patch_status(self, input: StatusPatch) -> StatusPatched:
        """The status subresource: merged into the status this workflow keeps, so it lasts until a pipeline's
        status.yaml (merged the same way, as Kratix does) or the platform sets the same fields."""
        merged = st.patch_status(self.state.status, input.patch, replace=input.replace)
        # In place: a running configure holds a reference to the status it is building.
        self.state.status.clear()
        self.state.status.update(merged)
        self._publish()
        return StatusPatched(status=merged)

    def _refuse_bad_status(self, input: StatusPatch) -> None:
        """For the status update's validator: what `_patch_status` would refuse, refused before it is accepted."""
        try:
            st.patch_status(self.state.status, input.patch, replace=input.replace)
        except InvalidDocument as exc:
            details = [{"field": e.field, "reason": e.reason} for e in exc.errors]
            raise ApplicationError(str(exc), details, type="InvalidDocument", non_retryable=True) from exc

    def _labels_changed(self, old: dict[str, str]) -> None:
        new = self.labels
        if lb.is_true(new, lb.MANUAL_RECONCILIATION):
            del new[lb.MANUAL_RECONCILIATION]  # Kratix removes it once the run is scheduled
            self._restart("ManualReconciliation", f"label {lb.MANUAL_RECONCILIATION} was set")
        if lb.is_true(new, lb.PAUSED) and not lb.is_true(old, lb.PAUSED):
            st.mark_paused(self.state.status, now_iso(), promise=self.workflow_type == "promise")
            self._event("Warning", "PausedReconciliation", "Reconciliation paused")
            self._on_paused()
        elif lb.is_true(old, lb.PAUSED) and not lb.is_true(new, lb.PAUSED):
            self._restart("Unpaused", "reconciliation was unpaused")
            self._on_unpaused()
        if lb.WORKFLOW_SUSPENDED in old and lb.WORKFLOW_SUSPENDED not in new:
            self._resume(f"label {lb.WORKFLOW_SUSPENDED} was removed")

    def _request_redelivery(self, request: RedeliverRequest) -> None:
        self.state.redeliver = request.merged(self.state.redeliver)

    def _refuse_stale(self, input: ApplyInput) -> None:
        """For the apply update's validator: Kubernetes' optimistic concurrency. Reads only."""
        self.publisher.refuse_stale(input.resource_version)

    def _request_delete(self, input: DeleteRequest) -> None:
        # Kubernetes shows a deleting object with the time its delete was asked for (kubectl: Terminating) until its
        # delete workflow ends; a second delete keeps the first time.
        metadata = self.state.document.setdefault("metadata", {})
        if "deletionTimestamp" not in metadata and patches.patched(patches.DELETION_TIMESTAMP):
            metadata["deletionTimestamp"] = now_iso()
        self.state.delete_requested = True
        self.state.force_delete = self.state.force_delete or input.force
        self._event("Normal", "DeleteRequested", "deletion requested" + (" (forced)" if input.force else ""))
        running = self.running
        if running is not None and running.action == "configure" and not self.state.force_delete:
            # The configure run finishes (or reaches its deadline) before the delete pipeline runs: say so, or a
            # delete of a hung object just waits in silence.
            message = (
                f"The delete waits for the running configure pipeline {running.name} to finish (it is stopped "
                f"{format_duration(running.timeout_s)} after it started); `ktx delete --force` stops it now"
            )
            self._event("Normal", "DeleteWaitingForPipeline", message)
            st.set_condition(self.state.status, st.DELETE_COMPLETED, "False", WAITING_FOR_PIPELINE, message, now_iso())
        self._publish()

    # --- configure ---

    def _superseded(self, generation: int) -> bool:
        """A newer spec, a restart, a deletion or a pause ends the current run at the next pipeline boundary."""
        return (
            self.state.start_from is not None
            or self.state.delete_requested
            or self.paused
            or generation != self.state.generation
        )

    async def _configure(self, start: int) -> None:
        generation = self.state.generation
        pipelines = await self._prepare_configure(start)
        if pipelines is None or self._superseded(generation):
            return
        status = self.state.status
        names = [p.metadata.name for p in pipelines]
        entries = [e.get("name") for e in st.pipelines_status(status)]
        if start == 0 or start >= len(pipelines) or entries != names:
            start = 0
            st.mark_configure_started(status, names, now_iso())
        else:
            st.mark_configure_resumed(status, now_iso())
        self._publish()
        catalog = await read_catalog()
        for index in range(start, len(pipelines)):
            if self._superseded(generation):
                return
            pipeline = pipelines[index]
            name = pipeline.metadata.name
            result = await self._run_with_backoff(
                pipeline, "configure", generation, lambda: self._superseded(generation)
            )
            if result is None:
                return
            error, control = self._absorb(result)
            if error is not None:
                await self._configure_failed(name, error, generation)
                return
            if control is not None and control.suspends:
                self._suspend(index, name, control, generation)
                self._finish(generation, failed=False, schedule=False)
                return
            if self._superseded(generation):
                return  # a newer spec is waiting; its run rewrites the outputs, so stale ones are not written
            await self._place(catalog, name, result.groups, result.artifact)
            action_error = await self._run_actions(name, pipeline.spec.actions + result.actions)
            if action_error is not None:
                await self._configure_failed(name, action_error, generation)
                return
            st.set_pipeline_phase(status, name, "Succeeded", now_iso())
            status["workflowsSucceeded"] = index + 1
            self._publish()
        stale = [
            o.pipeline for o in self.state.outputs if o.pipeline not in names and not self._keeps_output(o.pipeline)
        ]
        if stale:
            await self._drop_outputs(catalog, stale, "Delete from")
        st.mark_configure_succeeded(status, now_iso(), promise_workflow=self.workflow_type == "promise")
        await self._configure_succeeded(generation)
        self._event("Normal", "ConfigureWorkflowCompleted", "All workflows completed")
        self._finish(generation, failed=False)
        await self._report_actions(failed=False, message="")

    async def _configure_failed(self, name: str, error: str, generation: int) -> None:
        st.mark_configure_failed(self.state.status, name, now_iso(), error)
        self._event(
            "Warning", "ConfigureWorkflowFailed", f"A {self.workflow_type}/configure Pipeline has failed: {name}"
        )
        self._finish(generation, failed=True)
        await self._report_actions(failed=True, message=f"pipeline {name} failed: {error}")

    # --- off-platform actions ---

    async def _run_actions(self, pipeline: str, actions: list[ActionSpec]) -> str | None:
        """The pipeline's declared and requested actions, in order; the first failure fails the pipeline."""
        uid = self.state.document.get("metadata", {}).get("uid", "")
        for action in actions:
            previous = next((r for r in self.state.actions if (r.pipeline, r.name) == (pipeline, action.name)), None)
            record = await off_platform.perform(action, previous, pipeline, uid, self._live_object())
            self.state.actions = [r for r in self.state.actions if (r.pipeline, r.name) != (pipeline, action.name)] + [
                record
            ]
            self._publish()
            if record.state == "Failed":
                self._event(
                    "Warning", "ActionFailed", f"action {action.name} ({record.provider}) failed: {record.message}"
                )
                return f"action {action.name} ({record.provider}) failed: {record.message}"
            self._event("Normal", "ActionSucceeded", f"action {action.name} ({record.provider}): {record.external_id}")
        return None

    async def _report_actions(self, failed: bool, message: str) -> None:
        if not self.state.actions:
            return
        obj = self._live_object()
        self.state.actions = [
            await off_platform.report_outcome(r, failed, message, obj) if r.state == "Succeeded" else r
            for r in self.state.actions
        ]
        self._publish()

    def _suspend(self, index: int, name: str, control: WorkflowControl, generation: int) -> None:
        retry_at = (
            workflow.now() + timedelta(seconds=control.retry_after_s) if control.retry_after_s is not None else None
        )
        self.labels[lb.WORKFLOW_SUSPENDED] = "true"
        self.state.suspended_at = index
        self.state.retry_at = retry_at
        st.mark_suspended(self.state.status, name, now_iso(), control.message, generation, iso(retry_at))
        self._event(
            "Warning",
            "WorkflowSuspended",
            f"Pipeline {name} suspended the workflow" + (f": {control.message}" if control.message else ""),
        )
        self._on_suspended()

    def _finish(self, generation: int, *, failed: bool, schedule: bool = True) -> None:
        self.state.observed_generation = generation
        self.state.status["observedGeneration"] = generation
        rerun = schedule and (not failed or self.config.reconcile_after_failure)
        interval = self._reconciliation_interval()
        self.state.next_reconcile_at = workflow.now() + timedelta(seconds=interval) if rerun else None
        if self.paused and patches.patched(patches.PAUSED_AFTER_RUN):
            # Paused while the run finished its last steps: what the run did stands, and the object shows paused.
            st.mark_paused(self.state.status, now_iso(), promise=self.workflow_type == "promise")
        self._publish()

    def _reconciliation_interval(self) -> float:
        return self._interval_override() or self.config.reconciliation_interval_s

    def _absorb(self, result: PipelineRunResult) -> tuple[str | None, WorkflowControl | None]:
        """Merge a successful run's status.yaml into status and read its workflow control; or the error to show.

        As in Kratix, an unreadable status.yaml or workflow-control.yaml fails the pipeline.
        """
        if not result.succeeded:
            return failure_message(result), None
        try:
            merged = st.merge_status_file(
                self.state.status, result.status, promise_workflow=self.workflow_type == "promise"
            )
            control = parse_workflow_control(result.workflow_control)
        except InvalidDocument as exc:
            return str(exc), None
        except Exception as exc:  # noqa: BLE001 - pure functions over a pipeline's output: whatever they raise, the
            # run failed, with the reason in status; an exception here would fail the workflow task for ever.
            return f"the pipeline's metadata could not be read: {type(exc).__name__}: {exc}"[:4096], None
        too_late = retry_after_error(control) if control is not None else None
        # Patched, and asked only for a retry past the bound, so histories that waited that long replay as they ran.
        if too_late is not None and patches.patched(patches.RETRY_AFTER_BOUND):
            return too_late, None
        # In place: callers hold a reference to the status they are building.
        self.state.status.clear()
        self.state.status.update(merged)
        return None, control

    async def _run_with_backoff(
        self, pipeline: Pipeline, action: Action, generation: int, abandon: Any
    ) -> PipelineRunResult | None:
        """Kubernetes Job semantics: a failed pod is retried `backoffLimit` times with doubling delays.

        Returns None when the run was abandoned: a forced delete cancels the running pipeline at once, and a newer
        spec (`abandon()`) stops waiting between attempts.
        """
        name = pipeline.metadata.name
        job = pipeline.spec.job_options
        limit = (
            job.backoff_limit
            if job is not None and job.backoff_limit is not None
            else self.config.default_backoff_limit
        )
        context = self._context(action)
        timeout_s = pipeline_timeout_s(pipeline, self.config.pipeline_timeout_s)
        failures = 0
        while True:
            st.set_pipeline_phase(self.state.status, name, "Running", now_iso(), self._pipeline_message(name))
            verb = "Configure" if action == "configure" else "Delete"
            self._event("Normal", "PipelineStarted", f"{verb} Pipeline started: {name}")
            key = f"{action}/{name}"
            self.state.run_counts[key] = self.state.run_counts.get(key, 0) + 1
            self._publish()
            run_id = f"{self._run_prefix()}-{name}-{workflow.uuid4().hex[:8]}"
            started = now_iso()
            task = asyncio.ensure_future(self._run_admitted(run_id, pipeline, context, timeout_s, abandon))
            try:
                await workflow.wait_condition(lambda: task.done() or self.state.force_delete)
            finally:
                self.running = None
            if not task.done():
                task.cancel()
                return None
            try:
                result = task.result()
                if result is None:
                    return None
            except ActivityError as exc:
                # The activity validates and bounds what a pipeline leaves, so this is the impossible case (a worker
                # bug, a runtime that keeps failing): it is a failed run with its reason, retried as one, never the
                # end of the object's workflow. Histories from before failed the workflow here.
                if not patches.patched(patches.PIPELINE_ERROR_IS_A_RUN):
                    raise
                result = PipelineRunResult(succeeded=False, message=_activity_failure(exc))
            previous = next((r for r in self.state.runs if (r.pipeline, r.action) == (name, action)), None)
            self.state.runs = record_run(
                self.state.runs, PipelineRunRecord.of(run_id, name, action, generation, result, started, failures + 1)
            )
            if result.notes and (previous is None or previous.notes != result.notes):
                # When they change, not every run. A state change only (no command), and no recorded history has
                # notes, so replays are unchanged.
                message = f"{verb} Pipeline {name}: {'; '.join(result.notes)}"
                self._event("Warning", "PipelineFieldsIgnored", message[:1024])
            if result.succeeded or failures >= limit:
                return result
            failures += 1
            delay = self.config.backoff(failures)
            message = f"attempt {failures} of {limit + 1} failed, retrying in {delay:g}s: {failure_message(result)}"
            st.set_pipeline_phase(self.state.status, name, "Running", now_iso(), message)
            self._event("Warning", "BackoffLimitRetry", f"{verb} Pipeline {name} {message}")
            self._publish()
            try:
                await workflow.wait_condition(
                    lambda: self.state.force_delete or abandon(), timeout=timedelta(seconds=delay)
                )
                return None
            except asyncio.TimeoutError:
                pass

    async def _run_admitted(
        self, run_id: str, pipeline: Pipeline, context: PipelineContext, timeout_s: float, abandon: Any
    ) -> PipelineRunResult | None:
        """One run, asked for again while a worker defers it (its tenant holds all the slots it may there), with the
        wait shown; None when abandoned while waiting. Deferred results come only from workers that defer, so a
        recorded history never takes this branch: its commands are unchanged."""
        name = pipeline.metadata.name
        waits = 0
        while True:
            # Only while the activity is out: a wait for a slot ends at once for a delete, and says so itself.
            self.running = RunningPipeline(
                action=context.action,
                name=name,
                timeout_s=timeout_s,
                run_id=run_id,
                containers=[c.name for c in pipeline.spec.containers],
            )
            result = await run_pipeline(
                run_id, pipeline, self._live_object(), context, self._promise_selectors(), timeout_s
            )
            self.running = None
            if not result.deferred:
                return result
            waits += 1
            if waits == 1:
                self._event("Normal", "WaitingForPipelineSlot", f"Pipeline {name} is {result.message}")
            st.set_pipeline_phase(self.state.status, name, "Running", now_iso(), result.message)
            self._publish()
            delay = self.config.backoff(waits, options.SLOT_RETRY_BASE_S, options.SLOT_RETRY_CAP_S)
            try:
                await workflow.wait_condition(abandon, timeout=timedelta(seconds=delay))
                return None
            except asyncio.TimeoutError:
                pass
            # Asked again: if a slot is free the run starts, and the wait no longer shows.
            st.set_pipeline_phase(self.state.status, name, "Running", now_iso())
            self._publish()

    def _pipeline_message(self, name: str) -> str | None:
        entry = next((e for e in st.pipelines_status(self.state.status) if e.get("name") == name), {})
        return entry.get("message") if entry.get("phase") == "Suspended" else None

    # --- delete ---

    async def _delete(self) -> None:
        if (st.get_condition(self.state.status, st.DELETE_COMPLETED) or {}).get("reason") == WAITING_FOR_PIPELINE:
            st.set_condition(
                self.state.status,
                st.DELETE_COMPLETED,
                "False",
                "DeleteWorkflowRunning",
                "The delete workflow is running",
                now_iso(),
            )
        pipeline = await self._delete_pipeline()
        if pipeline is not None and not self.state.force_delete:
            await self._run_delete_pipeline(pipeline)
        await self._delete_cleanup()
        obj = self._live_object()
        self.state.actions = [
            await off_platform.compensate(r, obj) if r.state != "Compensated" and r.external_id else r
            for r in self.state.actions
        ]
        pipelines = [o.pipeline for o in self.state.outputs]
        if patches.patched(patches.DELETE_EVERY_PLACEMENT):
            # A clean-up run for an object whose workflow ended knows its placements only (service/platform.py), and a
            # removal that failed for an output since dropped is a placement too: every file goes.
            pipelines += [p.pipeline for p in self.state.placements if p.pipeline not in pipelines]
        await self._drop_outputs(await read_catalog(), pipelines, "Delete from")
        st.set_condition(
            self.state.status, st.DELETE_COMPLETED, "True", "DeleteWorkflowCompleted", "Deleted", now_iso()
        )
        self._publish()

    async def _run_delete_pipeline(self, pipeline: Pipeline) -> None:
        """Blocked states (paused, suspended, failed) are all visible in status and all end with `--force`."""
        status = self.state.status
        name = pipeline.metadata.name
        st.mark_delete_started(status, name)
        self.state.start_from = None
        self.state.suspended_at = None
        self.state.retry_at = None
        self.labels.pop(lb.WORKFLOW_SUSPENDED, None)
        failures = 0
        while not self.state.force_delete:
            if self.paused:
                st.mark_paused(status, now_iso(), promise=self.workflow_type == "promise")
                self._publish()
                await workflow.wait_condition(lambda: self.state.force_delete or not self.paused)
                continue
            if self.state.suspended_at is not None:
                await self._wait_resumed()
                continue
            self.state.start_from = None
            result = await self._run_with_backoff(pipeline, "delete", self.state.generation, lambda: False)
            if result is None:
                return
            error, control = self._absorb(result)
            if error is not None:
                failures += 1
                st.mark_delete_failed(status, name, now_iso(), error)
                delay = self.config.backoff(failures, self.config.delete_retry_base_s, self.config.delete_retry_cap_s)
                self._event(
                    "Warning", "Failed Pipeline", f"The Delete Pipeline has failed: {name}; retrying in {delay:g}s"
                )
                self._publish()
                try:
                    # A manual reconciliation retries at once; `ktx delete --force` gives up on the pipeline.
                    await workflow.wait_condition(
                        lambda: self.state.force_delete or self.state.start_from is not None,
                        timeout=timedelta(seconds=delay),
                    )
                except asyncio.TimeoutError:
                    pass
                continue
            if control is not None and control.suspends:
                self._suspend(0, name, control, self.state.generation)
                st.mark_delete_suspended(status, now_iso())
                self._publish()
                continue
            st.set_pipeline_phase(status, name, "Succeeded", now_iso())
            self._publish()
            return

    async def _wait_resumed(self) -> None:
        due = self.state.retry_at
        try:
            await workflow.wait_condition(
                lambda: self.state.force_delete or self.state.suspended_at is None or self.state.start_from is not None,
                timeout=max((due - workflow.now()).total_seconds(), 0.001) if due else None,
            )
        except asyncio.TimeoutError:
            self._fire_timers()
        # A manual reconciliation of a suspended delete reruns it, as removing the label does.
        self.state.suspended_at = None
        self.state.retry_at = None

    # --- shared helpers ---

    def _live_object(self) -> dict[str, Any]:
        return {**copy.deepcopy(self.state.document), "status": copy.deepcopy(self.state.status)}

    # --- delivery ---

    async def _place(
        self,
        catalog: Catalog,
        pipeline: str,
        groups: list[WorkloadGroup],
        artifact: str | None,
        inline: dict[str, str] | None = None,
    ) -> None:
        output = self._output_of(pipeline, groups, artifact, inline or {})
        self.state.outputs = [o for o in self.state.outputs if o.pipeline != pipeline] + [output]
        await self._deliver(catalog, [output], f"Update from: {self._label()}/{pipeline}", rewrite_all=True)

    async def _deliver(
        self,
        catalog: Catalog,
        outputs: list[PipelineOutput],
        message: str,
        *,
        rewrite_all: bool = False,
        rewrite: frozenset[str] = frozenset(),
    ) -> None:
        # Asked only when a dry-run Destination exists, so other histories replay without the marker.
        dry_run: bool | None = None
        if any(is_dry_run_destination(d.metadata.labels) for d in catalog.destinations.values()):
            dry_run = False if patches.patched(patches.DRY_RUN_DESTINATIONS) else None
        plans = [
            plan_output(
                catalog,
                o,
                [p for p in self.state.placements if p.pipeline == o.pipeline],
                workflow.random(),
                lambda p: rewrite_all or p.destination in rewrite,
                dry_run,
            )
            for o in outputs
        ]
        results = await deliver(catalog, plans, message, self._owner_labels())
        done = {o.pipeline for o in outputs}
        self.state.placements = [p for p in self.state.placements if p.pipeline not in done] + results
        self.state.pending_groups = [g for g in self.state.pending_groups if g.pipeline not in done] + [
            g for plan in plans for g in plan.pending
        ]
        await self._after_delivery()

    async def _drop_outputs(self, catalog: Catalog, pipelines: list[str], verb: str) -> None:
        """Remove these pipelines' outputs from the stores (Kratix deletes their Works and WorkPlacements)."""
        gone = set(pipelines)
        dropped = [p for p in self.state.placements if p.pipeline in gone]
        self.state.outputs = [o for o in self.state.outputs if o.pipeline not in gone]
        self.state.pending_groups = [g for g in self.state.pending_groups if g.pipeline not in gone]
        kept = [p for p in self.state.placements if p.pipeline not in gone]
        if dropped:
            failed = await deliver(
                catalog, [plan_removal(catalog, dropped)], f"{verb}: {self._label()}", self._owner_labels()
            )
            kept += failed
        self.state.placements = kept
        await self._after_delivery()

    async def _redeliver(self, request: RedeliverRequest) -> None:
        catalog = await read_catalog()
        await self._deliver(
            catalog,
            list(self.state.outputs),
            f"Update from: {self._label()} ({request.reason})",
            rewrite=frozenset(request.rewrite),
        )
        # Works conditions belong to a finished configure run; a suspended or failed run keeps the verdict it showed.
        completed = (st.get_condition(self.state.status, st.CONFIGURE_COMPLETED) or {}).get("status") == "True"
        if completed and self.state.suspended_at is None and self.state.observed_generation == self.state.generation:
            self._mark_works()
        self._publish()

    async def _after_delivery(self) -> None:
        failed = [p for p in self.state.placements if p.error]
        if failed:
            self.state.delivery_failures += 1
            delay = self.config.backoff(
                self.state.delivery_failures, self.config.write_retry_base_s, self.config.write_retry_cap_s
            )
            self.state.delivery_retry_at = workflow.now() + timedelta(seconds=delay)
            self._event(
                "Warning",
                "FailedWriteToDestination",
                f"{failed[0].error} (retrying in {delay:g}s)"
                + (f"; {len(failed) - 1} more" if len(failed) > 1 else ""),
            )
        else:
            self.state.delivery_failures = 0
            self.state.delivery_retry_at = None
        self.publisher.publish_delivery([p.destination for p in self.state.placements], bool(self.state.pending_groups))
        await self._report_writes()

    async def _report_writes(self) -> None:
        errors = {p.destination: p.error for p in self.state.placements if p.error}
        reported = self.state.reported_write_errors
        changed = {d: e for d, e in errors.items() if reported.get(d) != e} | {
            d: None for d in reported if d not in errors
        }
        owner = workflow.info().workflow_id
        await asyncio.gather(
            *[
                workflow.get_external_workflow_handle(destination_workflow_id(d)).signal(
                    DestinationWorkflow.report_write, WriteReport(owner=owner, error=e)
                )
                for d, e in changed.items()
            ],
            return_exceptions=True,
        )  # a deleted Destination has nobody left to tell
        self.state.reported_write_errors = errors

    def _mark_works(self) -> None:
        """Kratix's Work and WorkPlacement conditions folded into the object's: failed > misplaced > pending > ready."""

        def group(pipeline: str, directory: str) -> str:
            return f"{pipeline or 'static'}/{directory}"

        failing = [
            f"{group(p.pipeline, p.directory)}@{p.destination}: {p.error}" for p in self.state.placements if p.error
        ]
        failing += [e for p in self.state.placements for e in p.apply_errors]
        misplaced = [f"{group(p.pipeline, p.directory)}@{p.destination}" for p in self.state.placements if p.misplaced]
        pending = [group(g.pipeline, g.directory) for g in self.state.pending_groups]
        st.mark_works(self.state.status, now_iso(), pending, failing="; ".join(failing) or None, misplaced=misplaced)

    def _event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.state.events = record_event(self.state.events, type_, reason, message, now_iso())

    def _memo(self) -> dict[str, Any]:
        status = self.state.status
        if self.state.actions:
            status = {**status, "actions": [r.status_entry() for r in self.state.actions]}
        return {
            "object": self.state.document,
            "status": status,
            "placements": [p.model_dump(mode="json") for p in self.state.placements],
            "pending": [g.model_dump(mode="json") for g in self.state.pending_groups],
            "runs": [r.model_dump(mode="json") for r in self.state.runs],
            "runCounts": self.state.run_counts,
            "events": [e.model_dump(mode="json") for e in self.state.events],
            # The durable timers, so nobody has to guess when the platform will act next.
            "schedule": {
                "nextReconcileAt": iso(self.state.next_reconcile_at),
                "retryAt": iso(self.state.retry_at),
                "deliveryRetryAt": iso(self.state.delivery_retry_at),
            },
        }

    # --- hooks ---

    def _publish(self) -> None:
        raise NotImplementedError

    def _continue_as_new(self) -> None:
        raise NotImplementedError

    def _context(self, action: Action) -> PipelineContext:
        raise NotImplementedError

    def _run_prefix(self) -> str:
        raise NotImplementedError

    def _promise_selectors(self) -> dict[str, str]:
        return {}

    def _owner_labels(self) -> dict[str, str]:
        """Labels stamped on the objects this object's pipelines request through a platform Destination."""
        return {}

    def _interval_override(self) -> float | None:
        return None

    async def _prepare_configure(self, start: int) -> list[Pipeline] | None:
        """The configure pipelines to run, or None when the object cannot run now (the hook re-queues `start`)."""
        raise NotImplementedError

    def _output_of(
        self, pipeline: str, groups: list[WorkloadGroup], artifact: str | None, inline: dict[str, str]
    ) -> PipelineOutput:
        raise NotImplementedError

    def _label(self) -> str:
        raise NotImplementedError

    def _keeps_output(self, pipeline: str) -> bool:
        """Outputs that are not a configure pipeline's (static dependencies) survive the stale-output sweep."""
        return False

    async def _configure_succeeded(self, generation: int) -> None:
        pass

    def _on_paused(self) -> None:
        pass

    def _on_unpaused(self) -> None:
        pass

    def _on_suspended(self) -> None:
        pass

    async def _delete_pipeline(self) -> Pipeline | None:
        raise NotImplementedError

    async def _delete_cleanup(self) -> None:
        """Before the outputs are removed: e.g. a Promise first deletes its resources."""
