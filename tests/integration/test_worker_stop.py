"""A worker that cannot stop is left behind after a deadline, with the reason logged, instead of holding its process
(a pod stuck Terminating, a test's teardown) forever."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from worker.main import stop_within

released = asyncio.Event()
started = asyncio.Event()


@activity.defn
async def ignores_cancellation() -> None:
    """Stands for any call that will not end when cancelled: what sdk-rust#1297 does to a poll."""
    started.set()
    try:
        await asyncio.wait_for(asyncio.shield(released.wait()), 60)
    except asyncio.CancelledError:
        await asyncio.wait_for(released.wait(), 60)


@workflow.defn(sandboxed=False)
class RunsIt:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(ignores_cancellation, start_to_close_timeout=timedelta(seconds=120))


def worker(env: WorkflowEnvironment) -> Worker:
    return Worker(
        env.client,
        task_queue=f"stop-{uuid.uuid4()}",
        workflows=[RunsIt],
        activities=[ignores_cancellation],
        graceful_shutdown_timeout=timedelta(0),
    )


async def test_a_worker_that_stops_is_stopped(temporal_env: WorkflowEnvironment) -> None:
    stopping = worker(temporal_env)
    await stopping.__aenter__()
    assert await stop_within(stopping, 30)
    assert stopping.is_shutdown


async def test_a_worker_that_cannot_stop_is_left_behind_with_the_reason(
    temporal_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    released.clear()
    started.clear()
    stuck = worker(temporal_env)
    await stuck.__aenter__()
    await temporal_env.client.start_workflow(RunsIt.run, id=f"runs-{uuid.uuid4()}", task_queue=stuck.task_queue)
    await asyncio.wait_for(started.wait(), 30)
    with caplog.at_level(logging.ERROR, logger="worker.main"):
        assert not await stop_within(stuck, 0.5)
    assert f"the worker on task queue {stuck.task_queue} did not stop within 0.5s" in caplog.text
    assert not stuck.is_shutdown
    released.set()  # now it can stop: nothing of this test outlives it
    await asyncio.wait_for(stuck.shutdown(), 30)
    assert stuck.is_shutdown
