"""The overhead benchmark's floor: a bare Temporal workflow that runs one trivial activity, on its own task queue with
an in-process worker, the pydantic data converter and the default sandbox, as the platform's own worker has.

A module of its own, importing nothing but Temporal and pydantic, so the workflow sandbox has nothing else to load.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from uuid import uuid4

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

TASK_QUEUE = "bench-bare"


class Request(BaseModel):
    name: str


class Done(BaseModel):
    name: str


@activity.defn
async def trivial(request: Request) -> Done:
    return Done(name=request.name)


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, request: Request) -> Done:
        return await workflow.execute_activity(trivial, request, start_to_close_timeout=timedelta(seconds=60))


async def bare_runs(address: str, names: list[str]) -> tuple[float, list[float]]:
    """All N started at once and awaited: the wall time, and each one's start -> result latency."""
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    prefix = uuid4().hex[:8]  # workflow ids never meet an earlier run's on the same server
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[BareWorkflow], activities=[trivial]):

        async def one(name: str) -> float:
            started = time.perf_counter()
            await client.execute_workflow(
                BareWorkflow.run, Request(name=name), id=f"bare-{prefix}-{name}", task_queue=TASK_QUEUE
            )
            return time.perf_counter() - started

        started = time.perf_counter()
        latencies = await asyncio.gather(*[one(name) for name in names])
        return time.perf_counter() - started, list(latencies)
