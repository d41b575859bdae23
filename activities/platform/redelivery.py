"""Tells the objects a Destination change affects to place their outputs again, without re-running pipelines.

Found through search attributes, not a registry: objects holding output on the Destination (misplacement, drift
repair, a deletion's cleanup), objects with groups waiting for any Destination, and Promises (their dependencies
spread to every match). Everything else is left alone, so a relabel or a new Destination never starts a write storm.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from domain.visibility import equals
from activities.platform.search_attributes import DESTINATIONS, KIND, UNPLACED

REDELIVER_SIGNAL = "redeliver"
_SIGNAL_FANOUT = 50


class RedeliverRequest(BaseModel):
    reason: str
    # Rewrite what is already placed on these Destinations (drift repair, `ktx reconcile destination`).
    rewrite: list[str] = Field(default_factory=list)

    def merged(self, other: "RedeliverRequest | None") -> "RedeliverRequest":
        if other is None:
            return self
        return RedeliverRequest(
            reason=f"{other.reason}; {self.reason}", rewrite=sorted({*other.rewrite, *self.rewrite})
        )


class RedeliverOwnersInput(BaseModel):
    destination: str
    request: RedeliverRequest
    # A label or path change can also affect unplaced groups and Promise dependencies; a drift repair cannot.
    include_unplaced: bool = True


class RedeliverOwnersResult(BaseModel):
    signalled: int


class RedeliveryActivities:
    def __init__(self, client: Client):
        self.client = client

    @activity.defn
    async def redeliver_to_owners(self, input: RedeliverOwnersInput) -> RedeliverOwnersResult:
        """Idempotent: a repeated signal merges into the pending request of the same object."""
        clauses = [equals(DESTINATIONS.name, input.destination)]
        if input.include_unplaced:
            clauses += [f"{UNPLACED.name} = true", equals(KIND.name, "Promise")]
        query = f'({" OR ".join(clauses)}) AND ExecutionStatus = "Running"'
        ids = sorted({w.id async for w in self.client.list_workflows(query)})
        for start in range(0, len(ids), _SIGNAL_FANOUT):
            await asyncio.gather(*[self._signal(i, input.request) for i in ids[start : start + _SIGNAL_FANOUT]])
            activity.heartbeat(start)
        return RedeliverOwnersResult(signalled=len(ids))

    async def _signal(self, workflow_id: str, request: RedeliverRequest) -> None:
        try:
            await self.client.get_workflow_handle(workflow_id).signal(REDELIVER_SIGNAL, request)
        except RPCError:
            pass  # the object finished (deleted) since the query: nothing to place
