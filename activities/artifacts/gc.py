"""Garbage collection of stored pipeline outputs: mark what every Promise and resource workflow holds, sweep the rest.

Each object workflow keeps the artifact of the last output of each of its pipelines (to place it again when a
Destination appears); older outputs, and those of deleted objects, are garbage. The mark asks every running object
workflow (a query: no history event, no worker state). If any of them cannot answer, nothing is swept, because an
unknown holder could hold anything. A tree stored or reused after the grace's cutoff is never swept, which covers
results still on their way to their workflow and workflows too new for visibility to list.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from activities.artifacts.store import ArtifactStore

HELD_ARTIFACTS_QUERY = "held_artifacts"
HOLDERS = "WorkflowType IN ('PromiseWorkflow', 'ResourceWorkflow') AND ExecutionStatus = 'Running'"


class HeldArtifacts(BaseModel):
    digests: list[str] = Field(default_factory=list)


class CollectGarbageInput(BaseModel):
    grace_s: float
    concurrency: int = 8


class CollectGarbageResult(BaseModel):
    holders: int = 0
    live: int = 0
    young: int = 0
    removed: int = 0
    # Set when the sweep was skipped, with the reason (and nothing was removed).
    skipped: str | None = None


class ArtifactGcActivities:
    def __init__(self, client: Client, artifacts: ArtifactStore):
        self.client = client
        self.artifacts = artifacts

    @activity.defn
    async def collect_artifact_garbage(self, input: CollectGarbageInput) -> CollectGarbageResult:
        # Taken before the mark: whatever is stored or reused from here on is younger and survives.
        cutoff = time.time() - input.grace_s
        live: set[str] = set()
        holders = 0
        gate = asyncio.Semaphore(input.concurrency)
        unanswered: list[str] = []

        async def mark(workflow_id: str) -> None:
            async with gate:
                # The latest run, not the one listed: one that continued-as-new meanwhile carries its outputs along.
                handle = self.client.get_workflow_handle(workflow_id)
                try:
                    held = await handle.query(HELD_ARTIFACTS_QUERY, result_type=HeldArtifacts)
                except WorkflowQueryRejectedError:
                    return  # it closed meanwhile: a finished object holds nothing
                except RPCError as exc:
                    if exc.status == RPCStatusCode.NOT_FOUND:
                        return
                    unanswered.append(f"{workflow_id}: {exc.message}")
                    return
                except WorkflowQueryFailedError as exc:
                    unanswered.append(f"{workflow_id}: {exc}")
                    return
                live.update(held.digests)

        pending: set[asyncio.Task[None]] = set()
        async for execution in self.client.list_workflows(HOLDERS):
            holders += 1
            pending.add(asyncio.create_task(mark(execution.id)))
            if len(pending) >= 4 * input.concurrency:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                activity.heartbeat(holders)
        if pending:
            await asyncio.wait(pending)
        if unanswered:
            more = f" and {len(unanswered) - 3} more" if len(unanswered) > 3 else ""
            return CollectGarbageResult(
                holders=holders,
                live=len(live),
                skipped=f"{len(unanswered)} workflows did not answer: " + "; ".join(unanswered[:3]) + more,
            )
        swept = await asyncio.to_thread(self.artifacts.sweep, live, cutoff)
        activity.logger.info(
            "artifact gc: %d holders, %d live trees, %d young, %d removed",
            holders,
            swept.live,
            swept.young,
            swept.removed,
        )
        return CollectGarbageResult(holders=holders, live=swept.live, young=swept.young, removed=swept.removed)
