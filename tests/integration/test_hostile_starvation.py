"""One team cannot starve all (issue 14, class 8): hung pipelines end at a deadline, one tenant holds at most its
share of the pipeline slots, and a delete waiting on a running pipeline says so.

Real parts: `behave` containers that hang in real podman (SLEEP, templated from each request's spec so one Promise
serves a hung team and a quick one), a real Temporal dev server, real workers with a real pipeline task queue.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from service.platform import Platform
from domain.naming import resource_workflow_id
from domain.pipeline_rules import PIPELINE_TIMEOUT
from tests.kratix_documents import (
    condition,
    eventually,
    git_store_and_destinations,
    phases,
    pipeline,
    pipeline_entry,
    promise,
    resource,
)

HANG = "600"  # far past every wait below: only a deadline or a kill ends it


def _hanging(name: str, timeout: str | None = None, backoff_limit: int = 0, sleep: str = HANG) -> dict:
    doc = pipeline(
        name,
        backoff_limit=backoff_limit,
        SLEEP=sleep,
        FILES={"app.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}},
    )
    if timeout is not None:
        doc["metadata"]["annotations"] = {PIPELINE_TIMEOUT: timeout}
    return doc


def _containers(prefix: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], check=True, capture_output=True, text=True
    ).stdout
    return [n for n in out.split() if n.startswith(prefix)]


async def _setup(platform: Platform, git_remote: Path, *promises: dict) -> None:
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    for doc in promises:
        await platform.apply(doc)
    for doc in promises:
        await platform.wait_condition("promise", doc["metadata"]["name"], "default", "Available", timeout=60)


async def test_a_hung_pipeline_is_stopped_at_its_deadline_and_is_a_failed_run(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    # The platform's default deadline, and a Pipeline's own, shorter one; each a failure counted by backoffLimit.
    platform = await platform_factory(pipeline_timeout_s=4)
    await _setup(
        platform,
        git_remote,
        promise("hang-default", "HangDefault", configure=[_hanging("render", backoff_limit=1)]),
        promise("hang-own", "HangOwn", configure=[_hanging("render", timeout="2s")]),
    )
    await platform.apply(resource("HangDefault", "deadline-default"))
    await platform.apply(resource("HangOwn", "deadline-own"))

    for kind, name, after, attempts in (
        ("hangdefault", "deadline-default", "4s", 2),
        ("hangown", "deadline-own", "2s", 1),
    ):
        obj = await eventually(
            lambda: platform.get(kind, name),
            lambda o: phases(o).get("render") == "Failed",
            timeout=90,
            what=f"{name}: the hung pipeline failed at its deadline",
        )
        message = pipeline_entry(obj, "render")["message"]
        assert (
            f"container 'render-c' (localhost/ktx-test/behave:v0.1.0) was stopped: timed out after {after}" in message
        )
        assert obj["_ktx"]["runCounts"]["configure/render"] == attempts
        assert condition(obj, "ConfigureWorkflowCompleted")["reason"] == "ConfigureWorkflowFailed"
        [run] = obj["_ktx"]["runs"]
        assert run["containers"][0]["exit_code"] is None
        assert not _containers(f"ktx-default-{name}-"), "a timed-out container was left behind"
    retries = [
        e
        for e in (await platform.get("hangdefault", "deadline-default"))["_ktx"]["events"]
        if e["reason"] == "BackoffLimitRetry"
    ]
    assert retries and "timed out after 4s" in retries[0]["message"]


async def test_one_tenant_cannot_hold_every_pipeline_slot(platform_factory, git_remote: Path, pipeline_images) -> None:
    # Two slots, of which one namespace may hold one. Team A asks for three runs that hang; teams B and C, on the same
    # Promise, each get the other slot in turn while all of A's are still running or waiting.
    platform = await platform_factory(pipeline_concurrency=2, settings={"pipeline_tenant_slots": 1})
    await _setup(
        platform,
        git_remote,
        promise("shared", "Shared", configure=[_hanging("render", timeout="5m", sleep="{spec[sleep]}")]),
    )
    hogs = [f"hog-{i}" for i in range(3)]
    for name in hogs:
        await platform.apply(resource("Shared", name, {"sleep": HANG}, namespace="team-a"))
    await eventually(
        lambda: _containers("ktx-team-a-hog-"),
        lambda names: len(names) >= 1,
        timeout=60,
        what="team A's first run to be running",
    )
    for team in ("team-b", "team-c"):
        await platform.apply(resource("Shared", "quick", {"sleep": "0"}, namespace=team))

    for team in ("team-b", "team-c"):
        await platform.wait_condition("shared", "quick", team, "ConfigureWorkflowCompleted", timeout=60)
    hogged = [await platform.get("shared", name, "team-a") for name in hogs]
    assert all(condition(o, "ConfigureWorkflowCompleted").get("status") != "True" for o in hogged)
    assert len(_containers("ktx-team-a-hog-")) == 1, "team A held more than its share of the slots"
    waiting = [
        o
        for o in hogged
        if "waiting for a pipeline slot: namespace team-a already runs 1 pipelines"
        in pipeline_entry(o, "render").get("message", "")
    ]
    assert waiting, [pipeline_entry(o, "render") for o in hogged]
    assert any(e["reason"] == "WaitingForPipelineSlot" for o in waiting for e in o["_ktx"]["events"])
    for name in hogs:
        await platform.delete("shared", name, "team-a", force=True)
    for name in hogs:
        assert await platform.wait_deleted(resource_workflow_id("shared", "team-a", name), timeout=60)
    await eventually(
        lambda: _containers("ktx-team-a-hog-"),
        lambda names: not names,
        timeout=30,
        what="the force-deleted runs' containers to be removed",
    )


async def test_a_delete_waiting_on_a_running_pipeline_says_so(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await _setup(platform, git_remote, promise("stuck", "Stuck", configure=[_hanging("provision", timeout="10m")]))
    await platform.apply(resource("Stuck", "wedged"))
    await eventually(
        lambda: _containers("ktx-default-wedged-provision-"), bool, timeout=60, what="the pipeline to be running"
    )

    await platform.delete("stuck", "wedged")
    obj = await platform.get("stuck", "wedged")
    waits = [e for e in obj["_ktx"]["events"] if e["reason"] == "DeleteWaitingForPipeline"]
    assert waits and "waits for the running configure pipeline provision" in waits[0]["message"]
    assert "10m" in waits[0]["message"] and "--force" in waits[0]["message"]
    deleting = condition(obj, "DeleteWorkflowCompleted")
    assert (deleting["status"], deleting["reason"]) == ("False", "WaitingForRunningPipeline")
    assert "configure pipeline provision" in deleting["message"]

    # The hint holds: a forced delete ends the wait, and the container with it.
    await platform.delete("stuck", "wedged", force=True)
    assert await platform.wait_deleted(resource_workflow_id("stuck", "default", "wedged"), timeout=60)
    await eventually(
        lambda: _containers("ktx-default-wedged-provision-"),
        lambda names: not names,
        timeout=30,
        what="the cancelled run's container to be removed",
    )
