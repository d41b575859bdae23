"""The messages between a rollout plan and the resource requests it upgrades.

A rollout (workflows/rollout.py) re-binds a request by signalling its resource workflow with REBIND_SIGNAL; when the
upgrade run on that version ends, the resource workflow signals UPGRADE_OUTCOME_SIGNAL back to `reply_to`. Signals
both ways keep the two durable and independent: neither waits on the other's worker, and a restart of either side
loses nothing, because Temporal holds the signal until the receiver runs.

A plan also holds its Promise: the Promise's workflow starts it (workflows/promise.py, `start_rollout`) and refuses a
second live plan, until the plan tells it with ROLLOUT_RELEASED_SIGNAL that it has finished or been deleted.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.rollout_progress import Outcome

REBIND_SIGNAL = "rebind"
UPGRADE_OUTCOME_SIGNAL = "upgrade_outcome"
ROLLOUT_RELEASED_SIGNAL = "rollout_released"


class RebindRequest(BaseModel):
    """Set the request's ResourceBinding `spec.version` (a version, or "latest") and re-run it on that revision."""

    version: str = Field(max_length=63)
    # The workflow ID to tell when the run on `version` ends; none when a person edits the binding.
    reply_to: str | None = Field(default=None, max_length=512)
    # Which plan asked for it, for the binding's events and the request's status.
    plan: str | None = Field(default=None, max_length=253)


class UpgradeOutcome(Outcome):
    """How one request's run on a re-bound version ended, as its resource workflow reports it to `reply_to`: the
    outcome the rollout's progress records (its failure is the binding's UpgradeFailed message), and its Promise."""

    promise: str


class RolloutReleased(BaseModel):
    """The plan no longer holds its Promise: it succeeded, rolled back, or was deleted."""

    plan: str = Field(max_length=63)
