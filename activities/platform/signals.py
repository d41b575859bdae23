"""Signals many workflows with one message, from an activity: a rollout re-binds its requests this way.

A workflow's own signal command costs the server two updates of the sender's history (the signal initiated, then
delivered), all under the sender's lock: a plan's 100 re-binds, recorded in one task, reached their requests over
26-36 s (docs/benchmarks.md). Sent with the client, a signal takes only its receiver's lock: the 100 arrive within
about a second.

Each signal carries a request ID the caller chooses; Temporal drops a signal whose ID the receiver already saw, so the
activity's retries (a worker died before it reported) re-send nothing twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

# The most workflows one activity signals: a batch's input (their IDs) is in the caller's history.
SIGNAL_BATCH = 100
# Signals of a batch in flight at once.
_IN_FLIGHT = 25


class SignalEachInput(BaseModel):
    signal: str = Field(max_length=128)
    workflow_ids: list[str] = Field(max_length=SIGNAL_BATCH)
    arg: dict[str, Any]
    # The same for every receiver: IDs are remembered per receiving workflow.
    request_id: str = Field(max_length=255)


class SignalEachResult(BaseModel):
    # The workflows that are not running (their objects were deleted): nobody to tell.
    missing: list[str] = Field(default_factory=list)


class SignalActivities:
    def __init__(self, client: Client):
        self.client = client

    @activity.defn
    async def signal_each(self, input: SignalEachInput) -> SignalEachResult:
        (payload,) = await self.client.data_converter.encode([input.arg])
        slots = asyncio.Semaphore(_IN_FLIGHT)
        missing: list[str] = []

        async def one(workflow_id: str) -> None:
            request = SignalWorkflowExecutionRequest(
                namespace=self.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                signal_name=input.signal,
                identity=self.client.identity,
                request_id=input.request_id,
            )
            request.input.payloads.append(payload)
            async with slots:
                try:
                    await self.client.workflow_service.signal_workflow_execution(request, retry=True)
                except RPCError as exc:
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise
                    missing.append(workflow_id)
                activity.heartbeat()

        await asyncio.gather(*(one(w) for w in input.workflow_ids))
        return SignalEachResult(missing=sorted(missing))
