"""Where a rollout is: each request's state, which to start next, what an outcome or a control changes, the ETA.

Pure: the rollout workflow (workflows/rollout.py) holds a RolloutProgress and asks it what to do, so every rule here
is unit-tested without Temporal, and the workflow's only decisions are when to wait and whom to signal.

Forward, groups run in order, each at most its limit at once; the next group starts once every request of the one
before has finished. A failure counts towards the threshold; reaching it halts the plan (running requests finish,
none start). A rollback re-binds every request that ran on the target version (succeeded or failed) to the source
version, last group first, at the same limits, windows aside: a rollback is a repair, not planned work.

With a request timeout, a run with no outcome by its deadline ends for the plan (TimedOut forward, RollbackFailed
back): a failure like any other, its slot freed. The request is left as it is; its outcome, should it come, is for a
run the plan no longer waits on, and changes nothing.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from domain.durations import format_duration
from domain.errors import Conflict
from domain.rollout_plan import PlanOrder, RefusedRequest, RolloutPlan

Phase = Literal["Running", "Paused", "Halted", "Aborted", "Succeeded", "RollingBack", "RolledBack"]
# Gone: the request was deleted before its turn (no workflow to signal). Deleted: it was deleted while the plan ran it,
# and its workflow said so. Neither is a failure of the version: there is nothing left to upgrade. TimedOut: no outcome
# within the plan's request timeout, a failure.
MemberState = Literal[
    "Pending",
    "Running",
    "Succeeded",
    "Failed",
    "TimedOut",
    "Gone",
    "Deleted",
    "RollingBack",
    "RolledBack",
    "RollbackFailed",
]
# What a rollback re-binds: every request that ran on the target version, whether or not it said how its run ended.
_RAN: tuple[MemberState, ...] = ("Succeeded", "Failed", "TimedOut")
Control = Literal["pause", "resume", "abort", "rollback", "delete"]

# The status keeps the first failures in full (their log tails are what a person reads to fix them); past this many
# only the counts grow, so the memo stays small however many fail.
REPORTED_FAILURES = 20
MESSAGE_MAX = 1024


class Member(BaseModel):
    namespace: str
    name: str
    state: MemberState = "Pending"
    started_at: float | None = None  # epoch seconds, the workflow's clock
    ended_at: float | None = None


class GroupProgress(BaseModel):
    name: str
    limit: int
    members: list[Member]

    def count(self, *states: MemberState) -> int:
        return sum(1 for m in self.members if m.state in states)


class Outcome(BaseModel):
    """One request's run on a version ended (the body of workflows/upgrade_records.UpgradeOutcome)."""

    namespace: str
    name: str
    version: str
    succeeded: bool
    # The request was deleted before its run on `version` ended: no failure of the version (member state Deleted).
    deleted: bool = False
    # The failure when not succeeded.
    message: str = ""
    failing_pipeline: str | None = None
    failing_container: str | None = None
    log_tail: str = Field(default="", max_length=4096)


class Failure(Outcome):
    """A failed outcome as the status reports it, with the group the request was in."""

    group: str
    # Failures recorded before they were outcomes have no `succeeded`: a failure never succeeded.
    succeeded: bool = False
    # TimedOut when the plan stopped waiting for the outcome (failures recorded before timeouts reported one).
    outcome: Literal["Failed", "TimedOut"] = "Failed"


class RolloutProgress(BaseModel):
    plan: RolloutPlan
    groups: list[GroupProgress]
    refused: list[RefusedRequest] = Field(default_factory=list)
    phase: Phase = "Running"
    # Failures since the plan last started or resumed: what the threshold is compared with.
    failures: int = 0
    failures_total: int = 0
    reported: list[Failure] = Field(default_factory=list)
    deleted: bool = False

    @classmethod
    def of(cls, plan: RolloutPlan, order: PlanOrder) -> "RolloutProgress":
        groups = [
            GroupProgress(name=g.name, limit=g.limit, members=[Member(**r.model_dump()) for r in g.requests])
            for g in order.groups
        ]
        progress = cls(plan=plan, groups=groups, refused=order.refused)
        progress.settle()
        return progress

    # --- what runs ---

    def running(self) -> int:
        return sum(g.count("Running", "RollingBack") for g in self.groups)

    def _current_forward(self) -> GroupProgress | None:
        """The first group with work left: the later ones wait for it."""
        return next((g for g in self.groups if g.count("Pending", "Running")), None)

    def due_starts(self, window_open: bool, now: float) -> list[tuple[Member, str]]:
        """Marks the requests to start now and returns them with the version to bind each to."""
        if self.phase == "Running" and window_open:
            group = self._current_forward()
            if group is None:
                return []
            room = group.limit - group.count("Running")
            due = [m for m in group.members if m.state == "Pending"][: max(room, 0)]
            for member in due:
                member.state, member.started_at, member.ended_at = "Running", now, None
            return [(m, self.plan.to_version) for m in due]
        if self.phase == "RollingBack":
            for group in reversed(self.groups):
                to_undo = [m for m in group.members if m.state in _RAN]
                if not to_undo and not group.count("RollingBack"):
                    continue
                room = group.limit - group.count("RollingBack")
                due = to_undo[: max(room, 0)]
                for member in due:
                    member.state, member.started_at, member.ended_at = "RollingBack", now, None
                return [(m, self.plan.from_version) for m in due]
        return []

    def gone(self, member: Member, now: float) -> None:
        """Its resource workflow is not there to signal: the request was deleted after the plan was made."""
        member.state, member.ended_at = "Gone", now
        self.settle()

    def record(self, outcome: Outcome, now: float) -> bool:
        """Applies an outcome; False when it is not for a request the plan is running on that version (a repeat,
        or another change's outcome), which changes nothing."""
        found = self._find(outcome.namespace, outcome.name)
        if found is None:
            return False
        group, member = found
        ended: tuple[MemberState, MemberState]
        if member.state == "Running" and outcome.version == self.plan.to_version:
            ended = ("Succeeded", "Failed")
        elif member.state == "RollingBack" and outcome.version == self.plan.from_version:
            ended = ("RolledBack", "RollbackFailed")
        else:
            return False
        if outcome.deleted:
            member.state, member.ended_at = "Deleted", now
            self.settle()
            return True
        member.state, member.ended_at = ended[0] if outcome.succeeded else ended[1], now
        if not outcome.succeeded:
            self._failed(member, Failure(**outcome.model_dump(exclude={"succeeded", "deleted"}), group=group.name))
        self.settle()
        return True

    def _failed(self, member: Member, failure: Failure) -> None:
        self.failures_total += 1
        if member.state in ("Failed", "TimedOut"):
            self.failures += 1
        if len(self.reported) < REPORTED_FAILURES:
            failure.message = failure.message[:MESSAGE_MAX]
            self.reported.append(failure)

    def next_deadline(self) -> float | None:
        """When the first running request's time is up (epoch seconds); None without a request timeout or a run."""
        timeout = self.plan.request_timeout_s
        started = [
            m.started_at
            for g in self.groups
            for m in g.members
            if m.state in ("Running", "RollingBack") and m.started_at is not None
        ]
        if timeout is None or not started:
            return None
        return min(started) + timeout

    def time_out(self, now: float) -> bool:
        """Ends, as failures, the runs whose deadline has passed; whether there were any."""
        timeout = self.plan.request_timeout_s
        if timeout is None:
            return False
        reason = f"no result within {format_duration(timeout)}"
        found = False
        for group in self.groups:
            for member in group.members:
                if member.state not in ("Running", "RollingBack") or member.started_at is None:
                    continue
                if member.started_at + timeout > now:
                    continue
                forward = member.state == "Running"
                member.state, member.ended_at = ("TimedOut" if forward else "RollbackFailed"), now
                version = self.plan.to_version if forward else self.plan.from_version
                failure = Failure(
                    namespace=member.namespace,
                    name=member.name,
                    version=version,
                    message=reason,
                    group=group.name,
                    outcome="TimedOut",
                )
                self._failed(member, failure)
                found = True
        if found:
            self.settle()
        return found

    def _find(self, namespace: str, name: str) -> tuple[GroupProgress, Member] | None:
        for group in self.groups:
            for member in group.members:
                if (member.namespace, member.name) == (namespace, name):
                    return group, member
        return None

    def settle(self) -> None:
        """The phase that follows from the members: halted at the threshold, done when nothing is left."""
        if self.phase == "Running" and self.failures >= self.plan.failure_threshold:
            self.phase = "Halted"
        if self.phase == "Running" and self._current_forward() is None:
            self.phase = "Succeeded"
        if self.phase == "RollingBack" and not any(g.count(*_RAN, "RollingBack") for g in self.groups):
            self.phase = "RolledBack"

    # --- controls ---

    def refusal(self, control: Control) -> str | None:
        """Why `control` cannot apply in this phase, or None."""
        allowed: dict[Control, tuple[Phase, ...]] = {
            "pause": ("Running",),
            "resume": ("Paused", "Halted"),
            "abort": ("Running", "Paused", "Halted"),
            "rollback": ("Halted", "Aborted"),
            "delete": ("Paused", "Halted", "Aborted", "Succeeded", "RolledBack"),
        }
        if self.phase not in allowed[control]:
            when = " or ".join(allowed[control])
            return f"cannot {control} a rollout that is {self.phase}: {control} applies when {when}"
        if control == "delete" and self.running():
            return f"cannot delete a rollout while {self.running()} requests are running; wait for them to finish"
        return None

    def apply(self, control: Control) -> None:
        reason = self.refusal(control)
        if reason is not None:
            raise Conflict(reason)
        if control == "pause":
            self.phase = "Paused"
        elif control == "resume":
            # A resume after a halt is a person's judgement that the failures are understood: the threshold counts
            # afresh. Failed requests stay failed (Kratix does not retry a failed version by itself either).
            self.phase, self.failures = "Running", 0
        elif control == "abort":
            self.phase = "Aborted"
        elif control == "rollback":
            self.phase = "RollingBack"
        else:
            self.deleted = True
        self.settle()

    # --- status ---

    def eta_seconds(self, now: float) -> float | None:
        """Time left at the pace so far: each group's remaining requests in batches of its limit, at the mean run
        time; None until a run has finished, and when nothing is left (windows not counted)."""
        durations = [
            m.ended_at - m.started_at
            for g in self.groups
            for m in g.members
            # A run cut short, or one the plan stopped waiting for, says nothing of the pace.
            if m.ended_at is not None and m.started_at is not None and m.state not in ("Gone", "Deleted", "TimedOut")
        ]
        if not durations:
            return None
        mean = sum(durations) / len(durations)
        if self.phase == "RollingBack":
            remaining = [(g, g.count(*_RAN)) for g in self.groups]
        elif self.phase in ("Running", "Paused"):
            remaining = [(g, g.count("Pending")) for g in self.groups]
        else:
            return None
        batches = sum(math.ceil(left / g.limit) for g, left in remaining if left)
        started = [
            m.started_at
            for g in self.groups
            for m in g.members
            if m.state in ("Running", "RollingBack") and m.started_at is not None
        ]
        in_flight = max((mean - (now - at) for at in started), default=0.0)
        return batches * mean + max(in_flight, 0.0)

    def summary(self, now: float) -> dict[str, object]:
        """The status a client reads (the workflow's memo): bounded, whatever the plan's size."""
        groups = []
        for g in self.groups:
            counts = {state: g.count(state) for state in MemberState.__args__ if g.count(state)}  # type: ignore[attr-defined]
            groups.append({"name": g.name, "limit": g.limit, "total": len(g.members), "counts": counts})
        running = [
            {"namespace": m.namespace, "name": m.name, "group": g.name}
            for g in self.groups
            for m in g.members
            if m.state in ("Running", "RollingBack")
        ]
        eta = self.eta_seconds(now)
        return {
            "phase": self.phase,
            "fromVersion": self.plan.from_version,
            "toVersion": self.plan.to_version,
            "groups": groups,
            "running": running[:100],
            "failures": self.failures_total,
            "failureThreshold": self.plan.failure_threshold,
            "failed": [f.model_dump(exclude={"succeeded", "deleted"}) for f in self.reported],
            "refused": [r.model_dump() for r in self.refused],
            **({"etaSeconds": round(eta, 1)} if eta is not None else {}),
        }
