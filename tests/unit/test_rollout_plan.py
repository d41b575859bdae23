"""RolloutPlan documents, their bounds, their order, and the progress rules the rollout workflow follows."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import Conflict, FieldError, InvalidDocument
from domain.rollout_plan import MAX_GROUPS, MAX_REQUESTS, Candidate, concurrency_limit, order_plan, parse_plan
from domain.rollout_progress import Outcome, RolloutProgress


def plan_doc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "promiseRef": {"name": "db"},
        "fromVersion": "v1",
        "toVersion": "v2",
        "groups": [{"name": "canary", "namespaces": ["team-a"]}, {"name": "rest", "selector": {"matchLabels": {}}}],
    }
    return {
        "apiVersion": "platform.ktx.dev/v1alpha1",
        "kind": "RolloutPlan",
        "metadata": {"name": "db-v2"},
        "spec": {**base, **spec},
    }


def fields(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidDocument) as caught:
        parse_plan(document)
    return {e.field: e.reason for e in caught.value.errors}


def test_a_full_plan_parses() -> None:
    plan = parse_plan(
        plan_doc(
            maxConcurrent="25%",
            failureThreshold=3,
            windows=[{"schedule": "0 22 * * 1-5", "duration": "4h", "timeZone": "Europe/London"}],
            groups=[
                {"name": "canary", "namespaces": ["team-a"], "maxConcurrent": 1},
                {
                    "name": "prod",
                    "selector": {
                        "matchLabels": {"tier": "prod"},
                        "matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}],
                    },
                },
            ],
        )
    )
    assert (plan.promise, plan.from_version, plan.to_version, plan.failure_threshold) == ("db", "v1", "v2", 3)
    assert [g.max_concurrent for g in plan.groups] == ["1", None]
    assert plan.windows[0].duration_s == 4 * 3600
    assert plan.groups[1].matches("x", {"tier": "prod", "region": "eu"})
    assert not plan.groups[1].matches("x", {"tier": "prod", "region": "us"})
    assert plan.namespaces() is None  # the selector group reaches every namespace


@pytest.mark.parametrize(
    "spec, field, reason",
    [
        ({"groups": []}, "spec.groups", "at least one"),
        ({"groups": [{"name": f"g{i}", "namespaces": ["a"]} for i in range(MAX_GROUPS + 1)]}, "spec.groups", "at most"),
        ({"groups": [{"name": "a"}]}, "spec.groups[0]", "namespaces or selector"),
        ({"groups": [{"name": "a", "namespaces": ["-x"]}]}, "spec.groups[0].namespaces[0]", "RFC 1123"),
        ({"groups": [{"name": "a", "namespaces": ["n"] * 101}]}, "spec.groups[0].namespaces", "at most 100"),
        (
            {"groups": [{"name": "a", "selector": {"matchLabels": {f"k{i}": "v" for i in range(21)}}}]},
            "spec.groups[0].selector",
            "at most 20",
        ),
        (
            {"groups": [{"name": "a", "selector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}}]},
            "spec.groups[0].selector.matchExpressions[0].operator",
            "Unsupported",
        ),
        ({"groups": [{"name": "a", "namespaces": ["x"]}, {"name": "a", "namespaces": ["y"]}]}, "spec.groups", "Dup"),
        ({"maxConcurrent": 0}, "spec.maxConcurrent", "from 1"),
        ({"maxConcurrent": 1001}, "spec.maxConcurrent", "from 1 to 1000"),
        ({"maxConcurrent": "150%"}, "spec.maxConcurrent", "percentage"),
        ({"maxConcurrent": "--all"}, "spec.maxConcurrent", "percentage"),
        ({"failureThreshold": 0}, "spec.failureThreshold", "from 1"),
        ({"windows": [{"schedule": "0 22 * *", "duration": "1h"}]}, "spec.windows[0].schedule", "five fields"),
        ({"windows": [{"schedule": "0 22 * * *", "duration": "30s"}]}, "spec.windows[0].duration", "1m to 168h"),
        ({"windows": [{"schedule": "0 22 * * *", "duration": "169h"}]}, "spec.windows[0].duration", "1m to 168h"),
        (
            {"windows": [{"schedule": "0 22 * * *", "duration": "1h", "timeZone": "Moon/Base"}]},
            "spec.windows[0].timeZone",
            "unknown time zone",
        ),
        ({"windows": [{"schedule": "* * * * *", "duration": "1h"}] * 11}, "spec.windows", "at most 10"),
        ({"toVersion": "v1"}, "spec.toVersion", "must differ"),
        ({"toVersion": "v" * 64}, "spec.toVersion", "at most 63"),
        ({"promiseRef": {"name": "../x"}}, "spec.promiseRef.name", "RFC 1123"),
        ({"surprise": 1}, "spec.surprise", "not declared"),
        ({"requestTimeout": "0.5s"}, "spec.requestTimeout", "from 1s to 168h"),
        ({"requestTimeout": "168h1s"}, "spec.requestTimeout", "from 1s to 168h"),
        ({"requestTimeout": "soon"}, "spec.requestTimeout", "'soon'"),
        ({"requestTimeout": 30}, "spec.requestTimeout", "a duration"),
    ],
)
def test_bounds_are_refused_naming_the_field(spec: dict[str, Any], field: str, reason: str) -> None:
    found = fields(plan_doc(**spec))
    assert field in found, found
    assert reason in found[field]


def test_the_plan_name_is_a_dns_label() -> None:
    document = plan_doc()
    document["metadata"]["name"] = "a/b"
    assert "metadata.name" in fields(document)


def test_concurrency_limits_round_up_and_never_reach_zero() -> None:
    assert concurrency_limit("25%", 10) == 3
    assert concurrency_limit("25%", 1000) == 250
    assert concurrency_limit("1%", 3) == 1
    assert concurrency_limit("7", 3) == 7


def candidates() -> list[Candidate]:
    return [
        Candidate("team-b", "two", {}, "v1", {"spec": {"size": 2}}),
        Candidate("team-a", "one", {}, "v1", {"spec": {"size": 1}}),
        Candidate("team-b", "bad", {}, "v1", {"spec": {"size": "huge"}}),
        Candidate("team-b", "old", {}, "v0", {"spec": {}}),
        Candidate("team-a", "also", {}, "v1", {"spec": {}}),
    ]


def refuse_strings(document: dict[str, Any]) -> list[FieldError]:
    size = document["spec"].get("size", 0)
    return [FieldError("spec.size", "Invalid value: must be an integer")] if isinstance(size, str) else []


def test_order_puts_each_request_in_its_first_group_sorted_and_reports_refusals() -> None:
    order = order_plan(parse_plan(plan_doc()), candidates(), refuse_strings)
    assert [[(r.namespace, r.name) for r in g.requests] for g in order.groups] == [
        [("team-a", "also"), ("team-a", "one")],
        [("team-b", "two")],
    ]
    assert [(r.namespace, r.name, r.group, r.field) for r in order.refused] == [("team-b", "bad", "rest", "spec.size")]
    assert order.not_selected == 1  # team-b/old is on v0


def test_a_plan_over_the_request_bound_is_refused() -> None:
    many = [Candidate("ns", f"r{i}", {}, "v1") for i in range(MAX_REQUESTS + 1)]
    with pytest.raises(InvalidDocument, match="at most 5000"):
        order_plan(parse_plan(plan_doc()), many, lambda _: [])


def test_a_request_timeout_is_a_duration_and_none_by_default() -> None:
    assert parse_plan(plan_doc()).request_timeout_s is None
    assert parse_plan(plan_doc(requestTimeout="30m")).request_timeout_s == 1800
    assert parse_plan(plan_doc(requestTimeout="1s")).request_timeout_s == 1
    assert parse_plan(plan_doc(requestTimeout="168h")).request_timeout_s == 7 * 24 * 3600


def progress_of(n: int, limit: int | str = 2, threshold: int = 1, **spec: Any) -> RolloutProgress:
    document = plan_doc(
        maxConcurrent=limit,
        failureThreshold=threshold,
        groups=[{"name": "first", "namespaces": ["a"]}, {"name": "second", "namespaces": ["b"]}],
        **spec,
    )
    plan = parse_plan(document)
    found = [Candidate(ns, f"r{i}", {}, "v1") for ns in ("a", "b") for i in range(n)]
    return RolloutProgress.of(plan, order_plan(plan, found, lambda _: []))


def done(progress: RolloutProgress, namespace: str, name: str, version: str = "v2", ok: bool = True) -> bool:
    return progress.record(Outcome(namespace=namespace, name=name, version=version, succeeded=ok), now=10.0)


def test_groups_run_in_order_never_over_the_limit() -> None:
    progress = progress_of(3)
    first = progress.due_starts(window_open=True, now=0.0)
    assert [(m.namespace, m.name, v) for m, v in first] == [("a", "r0", "v2"), ("a", "r1", "v2")]
    assert progress.due_starts(window_open=True, now=0.0) == []  # at the limit
    assert done(progress, "a", "r0")
    assert [m.name for m, _ in progress.due_starts(True, 1.0)] == ["r2"]
    assert done(progress, "a", "r1")
    # The second group waits for the first to finish entirely.
    assert progress.due_starts(True, 2.0) == []
    assert done(progress, "a", "r2")
    assert [(m.namespace, m.name) for m, _ in progress.due_starts(True, 3.0)] == [("b", "r0"), ("b", "r1")]


def test_a_repeated_or_foreign_outcome_changes_nothing() -> None:
    progress = progress_of(1)
    progress.due_starts(True, 0.0)
    assert not done(progress, "a", "r0", version="v3")  # not the plan's version
    assert not done(progress, "zzz", "r0")
    assert done(progress, "a", "r0")
    assert not done(progress, "a", "r0")  # said twice


def test_outside_a_window_nothing_starts() -> None:
    progress = progress_of(2)
    assert progress.due_starts(window_open=False, now=0.0) == []


def test_one_failure_halts_by_default_and_running_requests_finish() -> None:
    progress = progress_of(3)
    progress.due_starts(True, 0.0)
    assert done(progress, "a", "r0", ok=False)
    assert progress.phase == "Halted"
    assert progress.due_starts(True, 1.0) == []
    assert done(progress, "a", "r1")  # the other one's outcome still lands
    assert progress.summary(2.0)["groups"][0]["counts"] == {"Pending": 1, "Succeeded": 1, "Failed": 1}


def test_the_threshold_allows_that_many_failures_less_one() -> None:
    progress = progress_of(3, threshold=2)
    progress.due_starts(True, 0.0)
    assert done(progress, "a", "r0", ok=False)
    assert progress.phase == "Running"
    assert done(progress, "a", "r1", ok=False)
    assert progress.phase == "Halted"


def test_controls_follow_the_phase() -> None:
    progress = progress_of(2)
    assert progress.refusal("rollback") and "Running" in progress.refusal("rollback")  # type: ignore[operator]
    progress.apply("pause")
    assert progress.due_starts(True, 0.0) == []
    with pytest.raises(Conflict):
        progress.apply("pause")
    progress.apply("resume")
    assert len(progress.due_starts(True, 0.0)) == 2
    progress.apply("abort")
    assert progress.refusal("delete") is not None  # two are running
    assert progress.due_starts(True, 0.0) == []


def test_rollback_rebinds_the_finished_requests_last_group_first() -> None:
    progress = progress_of(1, limit=1)
    progress.due_starts(True, 0.0)
    done(progress, "a", "r0")
    progress.due_starts(True, 1.0)
    done(progress, "b", "r0", ok=False)
    assert progress.phase == "Halted"
    progress.apply("rollback")
    assert [(m.namespace, v) for m, v in progress.due_starts(True, 2.0)] == [("b", "v1")]
    assert progress.due_starts(True, 2.0) == []
    assert done(progress, "b", "r0", version="v1")
    assert [(m.namespace, v) for m, v in progress.due_starts(False, 3.0)] == [("a", "v1")]  # windows aside
    assert done(progress, "a", "r0", version="v1")
    assert progress.phase == "RolledBack"


def test_status_holds_failures_with_their_log_tail_and_an_eta() -> None:
    progress = progress_of(5, threshold=3)
    progress.due_starts(True, 0.0)
    progress.record(
        Outcome(namespace="a", name="r0", version="v2", succeeded=False, failing_pipeline="p", log_tail="boom"),
        now=10.0,
    )
    summary = progress.summary(10.0)
    assert summary["failed"][0]["log_tail"] == "boom"  # type: ignore[index]
    # 4 pending in batches of 2 (2 batches) in group a (one still running), 5 in group b (3 batches): 5 x 10 s,
    # plus what is left of the running one's mean run.
    assert summary["etaSeconds"] == 50.0


def test_an_empty_plan_has_succeeded() -> None:
    progress = progress_of(0)
    assert progress.phase == "Succeeded"


def test_a_request_deleted_while_it_upgrades_is_deleted_not_failed() -> None:
    progress = progress_of(2, limit=1, threshold=1)
    progress.due_starts(True, 0.0)
    deleted = Outcome(namespace="a", name="r0", version="v2", succeeded=False, deleted=True)
    assert progress.record(deleted, now=5.0)
    assert progress.groups[0].members[0].state == "Deleted"
    # No failure: the threshold of 1 is not reached, and the next request starts.
    assert (progress.phase, progress.failures_total, progress.reported) == ("Running", 0, [])
    assert [m.name for m, _ in progress.due_starts(True, 5.0)] == ["r1"]
    assert not progress.record(deleted, now=6.0)  # a repeat changes nothing


def test_a_failure_is_reported_as_its_outcome_with_its_group() -> None:
    progress = progress_of(1, threshold=1)
    progress.due_starts(True, 0.0)
    progress.record(Outcome(namespace="a", name="r0", version="v2", succeeded=False, message="x" * 5000), now=1.0)
    (failed,) = progress.summary(1.0)["failed"]  # type: ignore[misc]
    assert failed["group"] == "first" and len(failed["message"]) == 1024
    assert "succeeded" not in failed and "deleted" not in failed
    assert progress.phase == "Halted"


def test_a_group_whose_request_is_deleted_mid_upgrade_is_done_and_counts_it() -> None:
    progress = progress_of(1)
    progress.due_starts(True, 0.0)
    progress.record(Outcome(namespace="a", name="r0", version="v2", succeeded=False, deleted=True), now=3.0)
    assert progress.summary(3.0)["groups"][0]["counts"] == {"Deleted": 1}  # type: ignore[index]
    assert progress.eta_seconds(3.0) is None  # a run cut short says nothing of the pace
    assert [(m.namespace, m.name) for m, _ in progress.due_starts(True, 3.0)] == [("b", "r0")]
    assert done(progress, "b", "r0") and progress.phase == "Succeeded"


def test_a_run_without_an_outcome_by_its_deadline_times_out_as_a_failure() -> None:
    progress = progress_of(3, threshold=1, requestTimeout="30m")
    progress.due_starts(True, 0.0)
    assert progress.next_deadline() == 1800.0
    assert not progress.time_out(1799.0)
    assert done(progress, "a", "r1")
    assert progress.next_deadline() == 1800.0  # r0's, still running; r2 started at 10 s
    [(started, _)] = progress.due_starts(True, 10.0)
    assert started.name == "r2"
    assert progress.time_out(1800.0)
    assert [m.state for m in progress.groups[0].members] == ["TimedOut", "Succeeded", "Running"]
    assert (progress.phase, progress.failures, progress.failures_total) == ("Halted", 1, 1)
    assert progress.next_deadline() == 1810.0
    summary = progress.summary(1800.0)
    assert summary["groups"][0]["counts"] == {"Running": 1, "Succeeded": 1, "TimedOut": 1}  # type: ignore[index]
    (failed,) = summary["failed"]  # type: ignore[misc]
    assert (failed["name"], failed["version"], failed["outcome"]) == ("r0", "v2", "TimedOut")
    assert failed["message"] == "no result within 30m"
    # Its run ends after all: the plan stopped waiting for it, and counts nothing twice.
    assert not done(progress, "a", "r0", ok=False)
    assert not done(progress, "a", "r0")
    assert (progress.failures_total, len(progress.reported)) == (1, 1)
    assert progress.groups[0].members[0].state == "TimedOut"


def test_without_a_request_timeout_a_run_is_waited_for_however_long() -> None:
    progress = progress_of(1)
    progress.due_starts(True, 0.0)
    assert progress.next_deadline() is None
    assert not progress.time_out(10.0**9)
    assert progress.groups[0].members[0].state == "Running"


def test_rollback_rebinds_a_timed_out_request_and_times_out_its_rollback_too() -> None:
    progress = progress_of(1, limit=1, requestTimeout="1m")
    progress.due_starts(True, 0.0)
    done(progress, "a", "r0")
    progress.due_starts(True, 10.0)
    assert progress.time_out(70.0) and progress.phase == "Halted"
    progress.apply("rollback")
    assert [(m.namespace, v) for m, v in progress.due_starts(True, 100.0)] == [("b", "v1")]
    # The late outcome of its run on v2 is not the rollback's.
    assert not done(progress, "b", "r0", version="v2")
    assert progress.time_out(160.0)
    assert progress.groups[1].members[0].state == "RollbackFailed"
    assert progress.reported[-1].outcome == "TimedOut" and progress.reported[-1].version == "v1"
    assert [(m.namespace, v) for m, v in progress.due_starts(True, 160.0)] == [("a", "v1")]
    assert done(progress, "a", "r0", version="v1")
    assert progress.phase == "RolledBack"
