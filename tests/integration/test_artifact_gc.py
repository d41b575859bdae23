"""Stored pipeline outputs are collected once no workflow holds them: on a worker's disk, and in a shared bucket."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, ScheduleIntervalSpec
from temporalio.service import RPCError

from activities.artifacts.gc import HELD_ARTIFACTS_QUERY, CollectGarbageInput, CollectGarbageResult, HeldArtifacts
from service.platform import Platform
from domain.naming import resource_workflow_id
from tests.conftest import read_remote
from tests.integration.test_destinations import install
from tests.kratix_documents import eventually, pipeline, resource
from worker.housekeeping import ARTIFACT_GC_SCHEDULE, ensure_artifact_gc_schedule
from worker.settings import Settings
from workflows.artifact_gc import ArtifactGcWorkflow

PATH = "dev/resources/default/versioned/one/render/5058f/app.yaml"


async def collect(platform: Platform, grace_s: float) -> CollectGarbageResult:
    return await platform.client.execute_workflow(
        ArtifactGcWorkflow.run,
        CollectGarbageInput(grace_s=grace_s),
        id=f"artifact-gc-test-{uuid.uuid4().hex[:8]}",
        task_queue=platform.task_queue,
    )


async def held(platform: Platform) -> list[str]:
    handle = platform.client.get_workflow_handle(resource_workflow_id("versioned", "default", "one"))
    return (await handle.query(HELD_ARTIFACTS_QUERY, result_type=HeldArtifacts)).digests


async def committed(git_remote: Path) -> str:
    try:
        return await asyncio.to_thread(read_remote, git_remote, PATH)
    except subprocess.CalledProcessError:
        return ""  # not committed yet


async def two_versions(platform: Platform, git_remote: Path) -> None:
    """A resource whose output changed once: the first tree is garbage, the second is held."""
    await install(
        platform, git_remote, "versioned", "Versioned", pipeline("render", FILES={"app.yaml": {"v": "{spec[v]}"}})
    )
    for version in ("1", "2"):
        await platform.apply(resource("Versioned", "one", spec={"v": version}))
        await eventually(
            lambda: committed(git_remote), lambda text: f"v: '{version}'" in text, what=f"version {version} committed"
        )


@pytest.mark.parametrize("shared", [False, True], ids=["worker-disk", "shared-bucket"])
async def test_only_the_outputs_no_workflow_holds_are_collected_and_only_after_the_grace(
    shared: bool,
    platform_factory,
    git_remote: Path,
    tmp_path: Path,
    s3_server,
    s3_bucket: str,
    pipeline_images,
    s3_worker_credentials,
) -> None:
    settings = {"artifact_bucket": s3_bucket, "artifact_endpoint": f"http://{s3_server.endpoint}"} if shared else {}
    platform = await platform_factory(settings=settings)
    await two_versions(platform, git_remote)
    (home,) = tmp_path.glob(f"ktx-home-{platform.client.namespace}")

    def stored() -> set[str]:
        if shared:
            listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="ktx-artifacts/").get("Contents", [])
            return {entry["Key"].removeprefix("ktx-artifacts/").removesuffix(".tar") for entry in listed}
        return {p.name for p in (home / "artifacts").iterdir() if not p.name.startswith(".")}

    (current,) = await held(platform)
    assert len(stored()) == 2 and current in stored()

    # Both trees were stored moments ago: within the grace nothing goes, held or not.
    within = await collect(platform, grace_s=3600)
    assert (within.removed, within.live, within.young, within.skipped) == (0, 1, 1, None)
    assert within.holders == 2  # the Promise and the resource
    assert len(stored()) == 2

    after = await collect(platform, grace_s=0)
    assert (after.removed, after.live, after.skipped) == (1, 1, None)
    assert stored() == {current}

    # What is left is what the resource places from: a third version still reaches the store, and collecting
    # again removes the second.
    await platform.apply(resource("Versioned", "one", spec={"v": "3"}))
    await eventually(lambda: committed(git_remote), lambda text: "v: '3'" in text)
    assert (await collect(platform, grace_s=0)).removed == 1
    assert stored() == set(await held(platform)) and current not in stored()


async def test_a_holder_that_cannot_answer_stops_the_sweep(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    await two_versions(platform, git_remote)
    # A resource workflow no worker serves (as while its task queue is down) cannot say what it holds.
    await platform.client.start_workflow(
        "ResourceWorkflow",
        id="resource/versioned/default/orphan",
        task_queue="nobody-polls-this",
        execution_timeout=None,
    )
    result = await collect(platform, grace_s=0)
    assert result.removed == 0 and result.skipped and "resource/versioned/default/orphan" in result.skipped
    (home,) = tmp_path.glob(f"ktx-home-{platform.client.namespace}")
    assert len([p for p in (home / "artifacts").iterdir() if not p.name.startswith(".")]) == 2


async def test_every_worker_keeps_the_schedule_in_line_with_its_settings(platform: Platform) -> None:
    client: Client = platform.client
    settings = Settings(task_queue=platform.task_queue, artifact_gc_interval_s=3600, artifact_gc_grace_s=7200)
    await ensure_artifact_gc_schedule(client, settings)
    await ensure_artifact_gc_schedule(client, settings)  # a second replica starting: no error, one schedule
    handle = client.get_schedule_handle(ARTIFACT_GC_SCHEDULE)
    described = await handle.describe()
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=3600))]
    assert described.schedule.action.args  # the grace travels as the workflow's input
    await ensure_artifact_gc_schedule(client, settings.model_copy(update={"artifact_gc_interval_s": 600}))
    assert (await handle.describe()).schedule.spec.intervals[0].every == timedelta(seconds=600)
    await ensure_artifact_gc_schedule(client, settings.model_copy(update={"artifact_gc_interval_s": 0}))
    with pytest.raises(RPCError):
        await handle.describe()
    await ensure_artifact_gc_schedule(client, settings.model_copy(update={"artifact_gc_interval_s": 0}))  # already gone
