"""Reconciliation controls: periodic re-runs (also after failure), manual reconciliation, pause, spec changes mid-run,
reconcile-resources, backoffLimit, and bounded concurrency when a Promise change re-runs many resources."""

from __future__ import annotations

from pathlib import Path

from service.platform import Platform
from tests.kratix_documents import (
    condition,
    eventually,
    get,
    git_store_and_destinations,
    phases,
    pipeline,
    promise,
    resource,
    runs,
)


async def install(platform: Platform, remote: Path, doc: dict) -> None:
    for d in git_store_and_destinations(remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(d)
    await platform.apply(doc)
    await platform.wait_condition("promise", doc["metadata"]["name"], "default", "Available", timeout=60)


async def test_periodic_reconciliation_reruns_also_after_failure(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform: Platform = await platform_factory(reconciliation_interval_s=1.0)
    doc = promise("periodic", "Periodic", configure=[pipeline("render", GATE_LABEL="ok", FAIL="2")])
    await install(platform, git_remote, doc)
    await platform.apply(resource("Periodic", "one"))
    read = lambda: get(platform, "periodic", "one")  # noqa: E731
    # Failing runs are retried by the interval timer (reconcileAfterFailure defaults to true).
    # Each workflow run is two attempts (backoffLimit 1); six runs means the interval re-ran it twice after failing.
    await eventually(
        read,
        lambda o: (
            runs(o, "render") >= 6
            and condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed"
        ),
        what="failed workflow re-run by the interval",
    )
    await platform.label("periodic", "one", set={"ok": "yes"})
    obj = await eventually(read, lambda o: condition(o, "Reconciled").get("status") == "True")
    first = condition(obj, "ConfigureWorkflowCompleted")["lastTransitionTime"]
    count = runs(obj, "render")
    # Successful workflows keep being re-run on the interval.
    obj = await eventually(
        read, lambda o: runs(o, "render") >= count + 2 and condition(o, "Reconciled").get("status") == "True"
    )
    assert obj["_ktx"]["schedule"]["nextReconcileAt"]
    assert condition(obj, "ConfigureWorkflowCompleted")["lastTransitionTime"] >= first


async def test_no_rerun_after_failure_when_disabled_until_manual_reconciliation(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform: Platform = await platform_factory(reconcile_after_failure=False)
    await install(platform, git_remote, promise("once", "Once", configure=[pipeline("render", FAIL="2")]))
    await platform.apply(resource("Once", "one"))
    read = lambda: get(platform, "once", "one")  # noqa: E731
    obj = await eventually(
        read, lambda o: condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed"
    )
    assert obj["_ktx"]["schedule"]["nextReconcileAt"] is None  # nothing will re-run it by itself
    assert runs(obj, "render") == 2  # the first attempt and one backoff retry (backoffLimit 1 in the test config)
    await platform.label("once", "one", set={"kratix.io/manual-reconciliation": "true"})
    obj = await eventually(read, lambda o: runs(o, "render") == 4)
    assert "kratix.io/manual-reconciliation" not in obj["metadata"]["labels"]


async def test_backoff_limit_bounds_container_retries(platform: Platform, git_remote: Path, pipeline_images) -> None:
    await install(
        platform, git_remote, promise("flaky", "Flaky", configure=[pipeline("render", backoff_limit=3, FAIL="1")])
    )
    await platform.apply(resource("Flaky", "one"))
    obj = await eventually(
        lambda: get(platform, "flaky", "one"),
        lambda o: condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed",
    )
    assert runs(obj, "render") == 4  # backoffLimit 3: the first attempt and three retries
    assert obj["_ktx"]["runs"][-1]["attempt"] == 4
    assert sum(e["count"] for e in obj["_ktx"]["events"] if e["reason"] == "BackoffLimitRetry") == 3
    assert phases(obj) == {"render": "Failed"}


async def test_pause_holds_runs_until_unpaused(platform: Platform, git_remote: Path, pipeline_images) -> None:
    await install(platform, git_remote, promise("pausedtest", "Pausable", configure=[pipeline("render")]))
    await platform.apply(resource("Pausable", "one", {"v": 1}))
    await platform.wait_condition("pausable", "one", "default", "Reconciled", timeout=60)
    await platform.label("pausable", "one", set={"kratix.io/paused": "true"})
    await platform.apply(resource("Pausable", "one", {"v": 2}, labels={"kratix.io/paused": "true"}))
    obj = await get(platform, "pausable", "one")
    reconciled = condition(obj, "Reconciled")
    assert (reconciled["status"], reconciled["reason"], reconciled["message"]) == (
        "Unknown",
        "PausedReconciliation",
        "Paused",
    )
    assert obj["status"].get("observedGeneration") == 1  # the paused object shows generation 2 not run
    await platform.label("pausable", "one", remove=["kratix.io/paused"])
    obj = await eventually(
        lambda: get(platform, "pausable", "one"),
        lambda o: o["status"].get("observedGeneration") == 2 and condition(o, "Reconciled").get("status") == "True",
    )
    # A run while paused would be followed by the unpause's own run: three, not two.
    assert runs(obj, "render") == 2  # no run for generation 2 happened while paused
    last_run = obj["_ktx"]["runs"][-1]
    assert last_run["generation"] == 2
    # The events are in order, so "started after the unpause" holds even within the one second timestamps resolve.
    events = obj["_ktx"]["events"]
    reasons = [e["reason"] for e in events]
    paused = max(i for i, r in enumerate(reasons) if r == "PausedReconciliation")
    unpaused = max(i for i, r in enumerate(reasons) if r == "Unpaused")
    assert paused < unpaused, reasons
    assert "PipelineStarted" not in reasons[paused:unpaused], reasons  # nothing started while paused
    assert "PipelineStarted" in reasons[unpaused:], reasons  # generation 2 ran once unpaused
    # The unpause's time (its own event, not the pause's, which the run would trivially postdate).
    unpaused_at = events[unpaused]["first_seen"]
    assert last_run["started_at"] >= unpaused_at >= events[paused]["last_seen"]


async def test_paused_promise_is_unavailable_and_its_resources_wait(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise("pp", "PausedPromise", configure=[pipeline("render")]))
    await platform.label("promise", "pp", set={"kratix.io/paused": "true"})
    p = await get(platform, "promise", "pp")
    assert (condition(p, "Available")["status"], condition(p, "Available")["reason"]) == (
        "False",
        "PausedReconciliation",
    )
    await platform.apply(resource("PausedPromise", "two"))
    obj = await eventually(
        lambda: get(platform, "pausedpromise", "two"),
        lambda o: condition(o, "Reconciled").get("reason") == "PausedReconciliation",
    )
    assert obj["status"]["message"] == "Pending" and runs(obj, "render") == 0
    await platform.label("promise", "pp", remove=["kratix.io/paused"])
    await platform.wait_condition("pausedpromise", "two", "default", "Reconciled", timeout=60)


async def test_newer_spec_during_a_run_restarts_from_the_first_pipeline(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    doc = promise(
        "slow", "Slow", configure=[pipeline("pipe-a", SLEEP="2", STATUS={"seen": "{spec[v]}"}), pipeline("pipe-b")]
    )
    await install(platform, git_remote, doc)
    await platform.apply(resource("Slow", "one", {"v": 1}))
    read = lambda: get(platform, "slow", "one")  # noqa: E731
    await eventually(read, lambda o: phases(o).get("pipe-a") == "Running", what="pipe-a running")
    await platform.apply(resource("Slow", "one", {"v": 2}))
    await platform.apply(resource("Slow", "one", {"v": 3}))
    obj = await eventually(
        read,
        lambda o: o["status"].get("observedGeneration") == 3 and condition(o, "Reconciled").get("status") == "True",
    )
    # The outdated run stopped at the pipeline boundary: pipe-b ran once, for the newest spec only.
    assert (runs(obj, "pipe-a"), runs(obj, "pipe-b")) == (2, 1)
    assert obj["status"]["seen"] == "3"
    b_run = next(r for r in obj["_ktx"]["runs"] if r["pipeline"] == "pipe-b")
    assert b_run["generation"] == 3


async def test_reconcile_resources_label_and_bounded_concurrency(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform: Platform = await platform_factory(pipeline_concurrency=2)
    await install(platform, git_remote, promise("many", "Many", configure=[pipeline("render", SLEEP="0.5")]))
    names = [f"r{i}" for i in range(6)]
    for name in names:
        await platform.apply(resource("Many", name))
    for name in names:
        await platform.wait_condition("many", name, "default", "Reconciled", timeout=120)
    await platform.label("promise", "many", set={"kratix.io/reconcile-resources": "true"})
    assert "kratix.io/reconcile-resources" not in (await get(platform, "promise", "many"))["metadata"]["labels"]
    objs = [
        await eventually(
            lambda n=n: get(platform, "many", n),
            lambda o: runs(o, "render") == 2 and condition(o, "Reconciled").get("status") == "True",
        )
        for n in names
    ]
    spans = [
        (c["started_at"], c["started_at"] + c["duration_seconds"])
        for o in objs
        for c in o["_ktx"]["runs"][-1]["containers"]
    ]
    overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert overlap <= 2, f"{overlap} pipelines ran at once with pipeline_concurrency=2"
