"""What keeps the worker's storage bounded: the `artifact-gc` Temporal Schedule, and trimming this worker's cache.

The Schedule lives in Temporal, so the collection runs once per interval however many workers there are, and
operators see (and can pause or trigger) it in the Temporal UI. Each worker's local copies of shared artifacts are its
own business: a loop in the process drops those not used within the grace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.artifacts.gc import CollectGarbageInput
from activities.artifacts.store import ArtifactStore
from activities.pipelines.container_logs import sweep_logs
from activities.pipelines.workspaces import Workspaces
from worker.settings import Settings
from workflows.artifact_gc import ArtifactGcWorkflow

ARTIFACT_GC_SCHEDULE = "artifact-gc"


def artifact_gc_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ArtifactGcWorkflow.run,
            CollectGarbageInput(grace_s=settings.artifact_gc_grace_s),
            id=ARTIFACT_GC_SCHEDULE,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.artifact_gc_interval_s))]),
        # A collection still running when the next is due makes the next one pointless.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_artifact_gc_schedule(client: Client, settings: Settings) -> None:
    """Creates the Schedule, or brings it in line with these settings (every worker does this at start)."""
    handle = client.get_schedule_handle(ARTIFACT_GC_SCHEDULE)
    if settings.artifact_gc_interval_s == 0:
        try:
            await handle.delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        return
    schedule = artifact_gc_schedule(settings)
    try:
        await client.create_schedule(ARTIFACT_GC_SCHEDULE, schedule)
    except ScheduleAlreadyRunningError:
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))


async def trim_cache_forever(artifacts: ArtifactStore, settings: Settings) -> None:
    """Every interval (or hour, if collection is off), drops local trees and crash leftovers older than the grace."""
    every = settings.artifact_gc_interval_s or 3600
    while True:
        try:
            gone = await asyncio.to_thread(artifacts.trim_cache, time.time() - settings.artifact_gc_grace_s)
            if gone:
                logging.info("artifact cache: %d local entries removed", gone)
        except OSError:
            logging.exception("artifact cache: trimming failed; trying again in %.0f s", every)
        await asyncio.sleep(every)


# Leftovers of dead workers and old runs are found within the hour: a worker killed mid-run leaves one workspace, and
# logs are a few MiB per container (activities/pipelines/container_logs.py).
SWEEP_EVERY_S = 3600.0


async def sweep_runs_forever(workspaces: Workspaces, logs_dir: Path) -> None:
    """At start and every SWEEP_EVERY_S: dead workers' pipeline workspaces, and container logs past their retention."""
    while True:
        try:
            workers = await asyncio.to_thread(workspaces.sweep)
            runs = await asyncio.to_thread(sweep_logs, logs_dir)
            if workers or runs:
                logging.info(
                    "pipeline leftovers: workspaces of %d dead workers and logs of %d old runs removed", workers, runs
                )
        except OSError:
            logging.exception("pipeline leftovers: sweeping failed; trying again in %.0f s", SWEEP_EVERY_S)
        await asyncio.sleep(SWEEP_EVERY_S)
