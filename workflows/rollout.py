"""`rollout/<plan>`: one RolloutPlan as one durable workflow, alive until the plan is deleted.

The workflow only orchestrates: domain/rollout_progress.py decides which requests start, what an outcome or a control
changes and when the plan halts; this module waits (for outcomes, controls, or the next allowed window, on a durable
timer) and signals. A request is upgraded by signalling its resource workflow with REBIND_SIGNAL; the resource
workflow signals UPGRADE_OUTCOME_SIGNAL back when its run on that version ends (workflows/upgrade_records.py).

Crash safety comes from Temporal's history: a request is marked running in the same workflow task that records the
signal to it, so a worker dying anywhere either loses both (the task runs again) or keeps both (the replay knows the
signal was sent and sends it no more): no request is re-bound twice, and none is skipped. Outcomes are signals,
which Temporal holds while no worker runs. A plan with a request timeout also wakes, on a durable timer, at the first
running request's deadline, and counts it TimedOut (domain/rollout_progress.py) unless its outcome came first.

One live plan per Promise: the Promise's workflow starts the plan and holds it as the Promise's plan
(workflows/promise.py, `start_rollout`); the plan lets go with ROLLOUT_RELEASED_SIGNAL once it has succeeded or rolled
back, or is deleted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.platform.signals import SIGNAL_BATCH, SignalActivities, SignalEachInput
    from domain.cron import WindowState, window_state
    from domain.naming import promise_workflow_id, resource_workflow_id
    from domain.rollout_progress import Control, Member, RolloutProgress
    from workflows import carried_memo, options, patches
    from workflows.publishing import Publisher
    from workflows.upgrade_records import (
        REBIND_SIGNAL,
        ROLLOUT_RELEASED_SIGNAL,
        UPGRADE_OUTCOME_SIGNAL,
        RebindRequest,
        RolloutReleased,
        UpgradeOutcome,
    )

# Once here, the plan no longer stands in the way of another plan of its Promise (deleted plans too).
_RELEASING_PHASES = ("Succeeded", "RolledBack")


class RolloutWorkflowInput(BaseModel):
    progress: RolloutProgress
    # The plan as applied, for reads.
    document: dict[str, Any]
    resource_version: int = 0
    # Whether the plan holds its Promise (started by the Promise's workflow, not yet released).
    claimed: bool = False


class RolloutWorkflowResult(BaseModel):
    deleted: bool = True


class StartRollout(BaseModel):
    """What the Promise's workflow needs to start a plan of its own (the service's create, workflows/promise.py)."""

    plan: str
    rollout: RolloutWorkflowInput


class StartRolloutResult(BaseModel):
    # False when a workflow `rollout/<plan>` runs already (this plan applied again, or another of that name).
    started: bool


class RolloutControlRequest(BaseModel):
    control: Control


class RolloutControlResult(BaseModel):
    phase: str


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@workflow.defn
class RolloutWorkflow:
    @workflow.init
    def __init__(self, input: RolloutWorkflowInput) -> None:
        self.progress = input.progress
        self.document = input.document
        self.publisher = Publisher(input.resource_version)
        self.woken = False
        self.claimed = input.claimed

    @workflow.run
    async def run(self, input: RolloutWorkflowInput) -> RolloutWorkflowResult:
        windows = self.progress.plan.windows_of()
        while not self.progress.deleted:
            now = workflow.now()
            if self._timing_out():
                self.progress.time_out(now.timestamp())
            window = window_state(windows, now)
            due = self.progress.due_starts(window.open, now.timestamp())
            if due:
                await self._signal_all(due)
                self._publish(window)
                continue
            self._publish(window)
            if self.progress.phase in _RELEASING_PHASES:
                await self._release()
            waiting_for_window = self.progress.phase == "Running" and not window.open and window.until is not None
            timeout = (window.until - now).total_seconds() if waiting_for_window and window.until else None
            deadline = self.progress.next_deadline() if self._timing_out() else None
            if deadline is not None:
                due_in = deadline - now.timestamp()
                timeout = due_in if timeout is None else min(timeout, due_in)
            self.woken = False
            try:
                await workflow.wait_condition(lambda: self.woken, timeout=timeout)
            except asyncio.TimeoutError:
                pass  # the window opened, or a request's time is up
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                carried_memo.continue_as_new(
                    RolloutWorkflowInput(
                        progress=self.progress,
                        document=self.document,
                        resource_version=self.publisher.resource_version,
                        claimed=self.claimed,
                    )
                )
        await self._release()
        self.publisher.publish_final()
        return RolloutWorkflowResult()

    def _timing_out(self) -> bool:
        """Whether the plan gives up on a request after its timeout. Only plans with one ask the patch: a history from
        before has none, and waited on outcomes and windows alone."""
        return self.progress.plan.request_timeout_s is not None and workflow.patched(patches.ROLLOUT_REQUEST_TIMEOUTS)

    async def _release(self) -> None:
        """Tells the Promise's workflow the plan no longer holds it, once."""
        if not self.claimed or not workflow.patched(patches.ROLLOUT_CLAIMS):
            return
        self.claimed = False
        handle = workflow.get_external_workflow_handle(promise_workflow_id(self.progress.plan.promise))
        try:
            await handle.signal(ROLLOUT_RELEASED_SIGNAL, RolloutReleased(plan=self.progress.plan.name))
        except FailureError:
            pass  # the Promise is gone, and what it held with it

    async def _signal_all(self, due: list[tuple[Member, str]]) -> None:
        """Re-bind each request; one whose workflow has gone (deleted since the plan was made) is marked Gone."""
        if workflow.patched(patches.BATCHED_REBINDS):
            await self._signal_in_batches(due)
            return
        plan, reply_to = self.progress.plan, workflow.info().workflow_id

        async def rebind(member: Member, version: str) -> None:
            handle = workflow.get_external_workflow_handle(
                resource_workflow_id(plan.promise, member.namespace, member.name)
            )
            try:
                await handle.signal(REBIND_SIGNAL, RebindRequest(version=version, reply_to=reply_to, plan=plan.name))
            except FailureError:
                self.progress.gone(member, workflow.now().timestamp())

        await asyncio.gather(*(rebind(member, version) for member, version in due))

    async def _signal_in_batches(self, due: list[tuple[Member, str]]) -> None:
        """The same re-binds, up to SIGNAL_BATCH requests per activity and the batches at once. The activities are
        scheduled in the workflow task that marked the requests running, so the two are recorded together, as the
        signals were."""
        plan, info = self.progress.plan, workflow.info()
        by_version: dict[str, list[Member]] = {}
        for member, version in due:
            by_version.setdefault(version, []).append(member)
        batches: list[dict[str, Member]] = []
        calls = []
        for version, members in by_version.items():
            request = RebindRequest(version=version, reply_to=info.workflow_id, plan=plan.name)
            for start in range(0, len(members), SIGNAL_BATCH):
                batch = {
                    resource_workflow_id(plan.promise, m.namespace, m.name): m
                    for m in members[start : start + SIGNAL_BATCH]
                }
                batches.append(batch)
                calls.append(
                    workflow.execute_activity_method(
                        SignalActivities.signal_each,
                        SignalEachInput(
                            signal=REBIND_SIGNAL,
                            workflow_ids=list(batch),
                            arg=request.model_dump(mode="json"),
                            # A request is re-bound to a version at most once per plan; a plan of the same name made
                            # again is another first run.
                            request_id=f"{info.first_execution_run_id}/{version}",
                        ),
                        start_to_close_timeout=options.FANOUT_TIMEOUT,
                        heartbeat_timeout=options.FANOUT_HEARTBEAT,
                        retry_policy=options.SIGNAL_RETRY,
                    )
                )
        for batch, result in zip(batches, await asyncio.gather(*calls)):
            for workflow_id in result.missing:
                self.progress.gone(batch[workflow_id], workflow.now().timestamp())

    # --- messages ---

    @workflow.signal(name=UPGRADE_OUTCOME_SIGNAL)
    def upgrade_outcome(self, outcome: UpgradeOutcome) -> None:
        if outcome.promise != self.progress.plan.promise:
            return
        recorded = self.progress.record(outcome, workflow.now().timestamp())
        self.woken = self.woken or recorded

    @workflow.update
    async def control(self, input: RolloutControlRequest) -> RolloutControlResult:
        self.progress.apply(input.control)
        self.woken = True
        return RolloutControlResult(phase=self.progress.phase)

    @control.validator
    def _validate_control(self, input: RolloutControlRequest) -> None:
        reason = self.progress.refusal(input.control)
        if reason is not None:
            raise ApplicationError(reason, type="Conflict", non_retryable=True)

    def _publish(self, window: WindowState) -> None:
        status = self.progress.summary(workflow.now().timestamp())
        status["window"] = window.describe()
        phase = self.progress.phase
        if phase == "Running" and not window.open:
            phase = "WaitingForWindow"
        status["phase"] = phase
        eta = status.get("etaSeconds")
        if isinstance(eta, float):
            status["estimatedCompletion"] = _iso(workflow.now() + timedelta(seconds=eta))
        self.publisher.publish({"object": self.document, "status": status}, phase)
