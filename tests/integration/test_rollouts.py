"""Rollout plans against real parts: a real Temporal dev server, real workers, real podman pipelines, a real Git
remote. Requests are pinned (resourceBindingVersionStrategy: pinned), so installing v2 moves none of them; the plan
does, group by group, and each request's own workflow reports back how its run on v2 ended."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cli.rollout import status_lines
from domain.errors import Conflict, InvalidDocument, NotFound
from service.platform import Platform
from tests.integration.test_destinations import destination, git_store, ready
from tests.kratix_documents import eventually, get, pipeline, promise, resource
from workflows.upgrade_records import UPGRADE_OUTCOME_SIGNAL

PROMISE, KIND = "db", "Db"


def versioned(version: str, configure: dict[str, Any], properties: dict | None = None) -> dict[str, Any]:
    document = promise(PROMISE, KIND, configure=[configure], properties=properties)
    document["metadata"]["labels"]["kratix.io/promise-version"] = version
    return document


def writer(name: str, **env: Any) -> dict[str, Any]:
    return pipeline(name, FILES={"cm.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}}, **env)


def plan(name: str = "db-v2", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "platform.ktx.dev/v1alpha1",
        "kind": "RolloutPlan",
        "metadata": {"name": name},
        "spec": {
            "promiseRef": {"name": PROMISE},
            "fromVersion": "v1",
            "toVersion": "v2",
            "groups": [{"name": "canary", "namespaces": ["team-a"]}, {"name": "rest", "namespaces": ["team-b"]}],
            **spec,
        },
    }


async def on_version(platform: Platform, namespace: str, name: str, version: str) -> dict[str, Any]:
    return await eventually(
        lambda: get(platform, KIND, name, namespace),
        lambda o: (o.get("status") or {}).get("promiseVersion") == version,
        timeout=120,
        what=f"{namespace}/{name} reconciled on {version}",
    )


async def fleet(platform: Platform, git_remote: Path, names: dict[str, list[str]], v2: dict[str, Any], **props: Any):
    """A Git store and Destination, Promise db at v1 with requests (pinned to v1), then db at v2."""
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await ready(platform, "dev")
    await platform.apply(versioned("v1", writer("write-v1")))
    await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=60)
    for namespace, requests in names.items():
        for name in requests:
            labels = {"ok": "yes"} if not name.startswith("bad") else {}
            await platform.apply(resource(KIND, name, {"size": 1}, labels=labels, namespace=namespace))
    for namespace, requests in names.items():
        for name in requests:
            await on_version(platform, namespace, name, "v1")
    await platform.apply(versioned("v2", v2, **props))
    await eventually(
        lambda: platform.get("promise", PROMISE),
        lambda p: (p.get("status") or {}).get("version") == "v2",
        what="db at v2",
    )


def v2_runs(obj: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
        for r in obj["_ktx"]["runs"]
        if r["pipeline"] == "write-v2" and r["action"] == "configure" and r["started_at"] and r["finished_at"]
    ]


def peak(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


async def phase(platform: Platform, name: str, wanted: str, timeout: float = 240) -> dict[str, Any]:
    return await eventually(
        lambda: platform.rollout(name),
        lambda o: (o.get("status") or {}).get("phase") == wanted,
        timeout=timeout,
        what=f"rollout {name} {wanted}",
    )


async def test_a_plan_upgrades_group_by_group_never_over_its_limit(platform_factory, git_remote: Path) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    names = {"team-a": ["a0", "a1"], "team-b": [f"b{i}" for i in range(5)]}
    await fleet(platform, git_remote, names, writer("write-v2", SLEEP="1"))
    # Pinned: installing v2 moved nothing.
    assert (await get(platform, KIND, "b0", "team-b"))["status"]["promiseVersion"] == "v1"

    _, order = await platform.preview_rollout(plan(maxConcurrent="40%"))
    assert [[r.name for r in g.requests] for g in order.groups] == [["a0", "a1"], ["b0", "b1", "b2", "b3", "b4"]]
    assert [g.limit for g in order.groups] == [1, 2]  # 40% of 2 and of 5, rounded up

    applied, _ = await platform.create_rollout(plan(maxConcurrent="40%"))
    assert applied.action == "created"
    done = await phase(platform, "db-v2", "Succeeded")
    assert [g["counts"] for g in done["status"]["groups"]] == [{"Succeeded": 2}, {"Succeeded": 5}]

    objects = {(ns, n): await on_version(platform, ns, n, "v2") for ns, ns_names in names.items() for n in ns_names}
    canary = [run for (ns, _), o in objects.items() if ns == "team-a" for run in v2_runs(o)]
    rest = [run for (ns, _), o in objects.items() if ns == "team-b" for run in v2_runs(o)]
    assert len(canary) == 2 and len(rest) == 5  # each request ran on v2 exactly once
    assert peak(canary) == 1 and peak(rest) <= 2
    # Groups in order: every canary run ended before the first of the rest started.
    assert max(end for _, end in canary) <= min(start for start, _ in rest)
    # Applying the same plan again changes nothing; another spec under the same name is refused.
    assert (await platform.create_rollout(plan(maxConcurrent="40%")))[0].action == "unchanged"
    with pytest.raises(Conflict, match="another spec"):
        await platform.create_rollout(plan(maxConcurrent=1))


async def test_a_failure_halts_the_plan_and_rollback_restores_the_finished_requests(
    platform_factory, git_remote: Path
) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    # v2's pipeline fails for requests without the `ok` label: team-b/bad0 is the rest group's first.
    names = {"team-a": ["a0"], "team-b": ["bad0", "c1", "c2"]}
    await fleet(platform, git_remote, names, writer("write-v2", FAIL="3", GATE_LABEL="ok"))
    await platform.create_rollout(plan())
    halted = await phase(platform, "db-v2", "Halted")
    status = halted["status"]
    assert [g["counts"] for g in status["groups"]] == [{"Succeeded": 1}, {"Failed": 1, "Pending": 2}]
    failure = status["failed"][0]
    assert (failure["namespace"], failure["name"], failure["failing_pipeline"]) == ("team-b", "bad0", "write-v2")
    assert "failing on purpose with exit code 3" in failure["log_tail"]
    # Nothing after the failure ran.
    assert (await get(platform, KIND, "c1", "team-b"))["status"]["promiseVersion"] == "v1"
    with pytest.raises(Conflict, match="cannot pause a rollout that is Halted"):
        await platform.control_rollout("db-v2", "pause")

    assert await platform.control_rollout("db-v2", "rollback") == "RollingBack"
    rolled = await phase(platform, "db-v2", "RolledBack")
    assert [g["counts"] for g in rolled["status"]["groups"]] == [{"RolledBack": 1}, {"RolledBack": 1, "Pending": 2}]
    await on_version(platform, "team-a", "a0", "v1")
    bad = await get(platform, KIND, "bad0", "team-b")
    assert bad["status"]["promiseVersion"] == "v1"
    assert await platform.control_rollout("db-v2", "delete") == "RolledBack"
    await eventually(lambda: platform.wait_deleted("rollout/db-v2", 30), what="the plan's workflow ended", timeout=60)


async def test_pause_holds_the_next_start_and_resume_continues(platform_factory, git_remote: Path) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    names = {"team-a": ["a0", "a1", "a2"]}
    await fleet(platform, git_remote, names, writer("write-v2", SLEEP="2"))
    await platform.create_rollout(plan(groups=[{"name": "all", "namespaces": ["team-a"]}]))
    assert await platform.control_rollout("db-v2", "pause") == "Paused"
    paused = await eventually(
        lambda: platform.rollout("db-v2"),
        lambda o: o["status"].get("phase") == "Paused" and not o["status"].get("running"),
        what="the run in flight when paused finished",
    )
    counts = paused["status"]["groups"][0]["counts"]
    assert counts.get("Pending", 0) >= 2, counts  # at most the first one ran
    assert await platform.control_rollout("db-v2", "resume") == "Running"
    await phase(platform, "db-v2", "Succeeded")
    for name in names["team-a"]:
        await on_version(platform, "team-a", name, "v2")


async def test_abort_stops_the_plan_for_good(platform_factory, git_remote: Path) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    await fleet(platform, git_remote, {"team-a": ["a0", "a1"]}, writer("write-v2", SLEEP="2"))
    await platform.create_rollout(plan(groups=[{"name": "all", "namespaces": ["team-a"]}]))
    assert await platform.control_rollout("db-v2", "abort") == "Aborted"
    with pytest.raises(Conflict, match="cannot resume a rollout that is Aborted"):
        await platform.control_rollout("db-v2", "resume")
    aborted = await eventually(
        lambda: platform.rollout("db-v2"),
        lambda o: o["status"].get("phase") == "Aborted" and not o["status"].get("running"),
        what="in-flight runs done",
    )
    assert aborted["status"]["groups"][0]["counts"].get("Pending", 0) >= 1


async def test_requests_the_target_schema_refuses_are_reported_and_left_alone(
    platform_factory, git_remote: Path
) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    names = {"team-a": ["a0"], "team-b": ["b0"]}
    # v2 declares spec.size a string: the requests' integer no longer validates.
    strict = {"size": {"type": "string"}}
    await fleet(platform, git_remote, names, writer("write-v2"), properties=strict)
    _, order = await platform.preview_rollout(plan())
    assert [(r.namespace, r.name, r.field) for r in order.refused] == [
        ("team-a", "a0", "spec.size"),
        ("team-b", "b0", "spec.size"),
    ]
    assert order.size == 0
    with pytest.raises(InvalidDocument) as refused:
        await platform.preview_rollout(plan(toVersion="v9"))
    assert refused.value.errors[0].field == "spec.toVersion"


async def test_outside_its_windows_a_plan_waits_on_a_timer(platform_factory, git_remote: Path) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    await fleet(platform, git_remote, {"team-a": ["a0"]}, writer("write-v2"))
    now = datetime.now(timezone.utc)
    opens = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    window = {"schedule": f"{opens.minute} {opens.hour} * * *", "duration": "1h", "timeZone": "UTC"}
    await platform.create_rollout(plan(groups=[{"name": "all", "namespaces": ["team-a"]}], windows=[window]))
    waiting = await phase(platform, "db-v2", "WaitingForWindow")
    assert waiting["status"]["window"] == {"open": False, "until": opens.isoformat().replace("+00:00", "Z")}
    assert waiting["status"]["groups"][0]["counts"] == {"Pending": 1}
    # The timer is durable: it is in the workflow's history, not in a worker's memory.
    history = await platform.client.get_workflow_handle("rollout/db-v2").fetch_history()
    assert any(e.HasField("timer_started_event_attributes") for e in history.events)
    assert (await get(platform, KIND, "a0", "team-a"))["status"]["promiseVersion"] == "v1"
    # One live plan per Promise: a second would re-bind the same requests against the first.
    with pytest.raises(Conflict, match="one plan per Promise at a time"):
        await platform.create_rollout(plan("db-v2-again", groups=[{"name": "all", "namespaces": ["team-a"]}]))


async def test_of_two_plans_created_at_once_exactly_one_holds_the_promise(platform_factory, git_remote: Path) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    await fleet(platform, git_remote, {"team-a": ["a0"]}, writer("write-v2"))
    group = [{"name": "all", "namespaces": ["team-a"]}]
    later = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(second=0, microsecond=0)
    closed = [{"schedule": f"{later.minute} {later.hour} * * *", "duration": "1h"}]  # nothing runs meanwhile
    results = await asyncio.gather(
        *(platform.create_rollout(plan(name, groups=group, windows=closed)) for name in ("one", "two")),
        return_exceptions=True,
    )
    created = [r[0].name for r in results if isinstance(r, tuple) and r[0].action == "created"]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(refused) == 1, results
    (live,) = created
    assert f'rolloutplan "{live}" of promise {PROMISE} has not finished' in str(refused[0])
    loser = "two" if live == "one" else "one"
    with pytest.raises(NotFound):
        await platform.rollout(loser)  # refused before it started: nothing to delete
    # Deleted, the plan lets go of the Promise.
    assert await platform.control_rollout(live, "pause") == "Paused"
    assert await platform.control_rollout(live, "delete") == "Paused"
    # The release is a signal, a moment behind the delete: until it lands the Promise is still held.
    applied, _ = await eventually(
        lambda: platform.create_rollout(plan("three", groups=group)), ignoring=(Conflict,), what="a plan accepted"
    )
    assert applied.action == "created"
    # Succeeded, it lets go too, while it stays to be read.
    await phase(platform, "three", "Succeeded")
    applied, _ = await eventually(
        lambda: platform.create_rollout(plan("four", groups=group)), ignoring=(Conflict,), what="a plan accepted"
    )
    assert applied.action == "created"
    assert (await platform.rollout("three"))["status"]["phase"] == "Succeeded"


async def test_a_request_deleted_while_it_upgrades_is_counted_deleted_and_the_plan_goes_on(
    platform_factory, git_remote: Path
) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    # A slow v2 pipeline, so the delete lands while a0's run on v2 is under way (had the run ended first, a0 would
    # count Succeeded and this test fail).
    await fleet(platform, git_remote, {"team-a": ["a0", "a1"]}, writer("write-v2", SLEEP="8"))
    # One at a time, halting at the first failure: a deletion counted as one would halt the plan.
    await platform.create_rollout(plan(groups=[{"name": "all", "namespaces": ["team-a"]}], failureThreshold=1))
    await eventually(
        lambda: platform.rollout("db-v2"),
        lambda o: [r["name"] for r in o["status"].get("running", [])] == ["a0"],
        what="a0 upgrading",
    )
    workflow_id = await platform.delete(KIND, "a0", "team-a")  # its run finishes, then the request goes
    assert await platform.wait_deleted(workflow_id, 120)
    done = await phase(platform, "db-v2", "Succeeded")
    assert done["status"]["groups"][0]["counts"] == {"Deleted": 1, "Succeeded": 1}
    assert (done["status"]["failures"], done["status"]["failed"]) == (0, [])
    await on_version(platform, "team-a", "a1", "v2")


async def test_a_request_with_no_result_by_the_request_timeout_times_out_and_halts_the_plan(
    platform_factory, git_remote: Path
) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    # v2's pipeline hangs far past the plan's timeout.
    await fleet(platform, git_remote, {"team-a": ["a0", "a1"]}, writer("write-v2", SLEEP="600"))
    await platform.create_rollout(
        plan(groups=[{"name": "all", "namespaces": ["team-a"]}], maxConcurrent=1, requestTimeout="3s")
    )
    halted = await phase(platform, "db-v2", "Halted", timeout=60)
    status = halted["status"]
    assert status["groups"][0]["counts"] == {"TimedOut": 1, "Pending": 1}
    assert (status["failures"], status["running"]) == (1, [])
    (failure,) = status["failed"]
    assert (failure["namespace"], failure["name"], failure["version"]) == ("team-a", "a0", "v2")
    assert (failure["outcome"], failure["message"]) == ("TimedOut", "no result within 3s")
    assert "TimedOut: team-a/a0 on v2: no result within 3s" in status_lines(halted)
    # The slot it held is free, yet the halt holds the next request back.
    assert (await get(platform, KIND, "a1", "team-a"))["status"]["promiseVersion"] == "v1"


async def test_a_result_after_the_request_timeout_changes_nothing(platform_factory, git_remote: Path) -> None:
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    # The run on v2 ends, well after the plan's timeout.
    await fleet(platform, git_remote, {"team-a": ["a0"]}, writer("write-v2", SLEEP="8"))
    await platform.create_rollout(plan(groups=[{"name": "all", "namespaces": ["team-a"]}], requestTimeout="3s"))
    timed_out = (await phase(platform, "db-v2", "Halted", timeout=60))["status"]
    assert timed_out["groups"][0]["counts"] == {"TimedOut": 1}
    # The request was left to its run, which ends on v2 and reports to the plan.
    await on_version(platform, "team-a", "a0", "v2")
    handle = platform.client.get_workflow_handle("rollout/db-v2")

    async def outcomes() -> int:
        history = await handle.fetch_history()
        return sum(
            1
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
            and e.workflow_execution_signaled_event_attributes.signal_name == UPGRADE_OUTCOME_SIGNAL
        )

    await eventually(outcomes, lambda n: n == 1, what="a0's late outcome reached the plan")
    late = (await platform.rollout("db-v2"))["status"]
    assert (late["phase"], late["groups"], late["failures"], late["failed"]) == (
        "Halted",
        timed_out["groups"],
        1,
        timed_out["failed"],
    )
