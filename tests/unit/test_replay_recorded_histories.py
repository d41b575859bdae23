"""Histories recorded with earlier versions of the workflows replay on the current code: workflows already running in
a platform survive an upgrade of the worker. Add a recording here before each change to a workflow's commands
(tests/histories/record.py, run from a checkout of the code before the change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.main import WORKFLOWS

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


# An object's workflow runs activities and answers updates; a rollout runs none, it signals requests, hears back
# (a halt, a rollback) and answers its controls.
OBJECT_EVENTS = {"EVENT_TYPE_ACTIVITY_TASK_COMPLETED", "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED"}
ROLLOUT_EVENTS = {
    "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED",
}


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def test_there_are_recordings_to_replay() -> None:
    assert {p.name for p in recorded()} >= {
        "resource-before-local-reads.json",
        "promise-before-local-reads.json",
        "promise-before-trust-boundaries.json",
        "resource-before-trust-boundaries.json",
        "deleted-resource-before-trust-boundaries.json",
        "promise-before-resource-versions.json",
        "resource-before-resource-versions.json",
        "deleted-resource-before-resource-versions.json",
        "destination-before-resource-versions.json",
        "state-store-before-resource-versions.json",
        "promise-before-status-subresource.json",
        "resource-before-status-subresource.json",
        "deleted-resource-before-status-subresource.json",
        "destination-before-status-subresource.json",
        "state-store-before-status-subresource.json",
        "promise-release-first-version.json",
        "dry-run-before-compound-dry-runs.json",
        "promise-before-revisions.json",
        "resource-before-revisions.json",
        "deleted-resource-before-revisions.json",
        "rollout-first-version.json",
        "rollout-before-rollout-claims.json",
        "promise-before-rollout-claims.json",
        "resource-before-rollout-deleted-requests.json",
        "deleted-resource-before-rollout-deleted-requests.json",
        "deleted-upgrading-resource-before-rollout-deleted-requests.json",
        "deleted-resource-before-overhead.json",
        "destination-before-overhead.json",
        "dry-run-before-overhead.json",
        "promise-before-overhead.json",
        "promise-release-before-overhead.json",
        "resource-before-overhead.json",
        "state-store-before-overhead.json",
        "resource-before-promise-version-attribute.json",
        "deleted-resource-before-promise-version-attribute.json",
        "rollout-before-batched-rebinds.json",
        "rollout-before-request-timeouts.json",
    }


@pytest.mark.parametrize("path", recorded(), ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_the_current_code(path: Path) -> None:
    events = json.loads(path.read_text())["events"]
    # Objects: a whole configure and a spec change (pipelines, placement and writes). Rollouts: see ROLLOUT_EVENTS.
    types = {e["eventType"] for e in events}
    assert (ROLLOUT_EVENTS if path.stem.startswith("rollout-") else OBJECT_EVENTS) <= types
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The default, strict sandbox, not the worker's (which passes the project's modules through): a restricted call
    # (clock, randomness, I/O) anywhere on a recorded path fails here.
    result = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
    assert result.replay_failure is None
