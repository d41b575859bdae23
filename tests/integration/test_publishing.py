"""What an object's workflow publishes (workflows/publishing.py): the changes of a workflow task go out together, in
one memo upsert, and the last state of a deleted object reaches its memo before its workflow ends."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.history.v1 import HistoryEvent
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from service.platform import Platform
from tests.conftest import remote_files
from tests.integration.test_resource_lifecycle import example, install
from worker.main import WORKFLOWS


def per_task(events: list[HistoryEvent], kind: str) -> list[int]:
    """How many events of `kind` each workflow task's completion carried (its commands follow its completed event)."""
    counts: list[int] = []
    for event in events:
        attributes = event.WhichOneof("attributes")
        if attributes == "workflow_task_completed_event_attributes":
            counts.append(0)
        elif attributes == f"{kind}_event_attributes" and counts:
            counts[-1] += 1
    return counts


async def test_a_resource_publishes_each_workflow_task_once_and_its_last_state_before_it_ends(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote)
    await platform.apply(example("resource-request.yaml"))
    obj = await platform.wait_condition("appconfig", "checkout", "default", "Reconciled", timeout=120)
    handle = platform.client.get_workflow_handle(obj["_ktx"]["workflowId"])
    history = await handle.fetch_history()
    memos = per_task(list(history.events), "workflow_properties_modified")
    # Created, pipeline run, write: before coalescing, the first task alone upserted the memo three times.
    assert sum(memos) >= 2
    assert max(memos) == 1, memos
    # What the memo shows is the run's last state, sent in the task that ended the run.
    assert [p["phase"] for p in obj["status"]["kratix"]["workflows"]["pipelines"]] == ["Succeeded"]
    assert obj["_ktx"]["placements"][0]["destination"] == "local"

    workflow_id = await platform.delete("appconfig", "checkout", "default")
    assert await platform.wait_deleted(workflow_id, timeout=120)
    assert not [f for f in remote_files(git_remote) if f.startswith("local/resources/default/app-config/checkout/")]
    # The deleted object's last state (its delete completed), published in the task that ended the workflow.
    status = await (await handle.describe()).memo_value("status")
    deleted = [c for c in status["conditions"] if c["type"] == "DeleteWorkflowCompleted"]
    assert [(c["status"], c["reason"]) for c in deleted] == [("True", "DeleteWorkflowCompleted")]
    # When the flush runs is decided by the workflow's own state, so the whole history replays as it ran.
    replayed = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
        await handle.fetch_history()
    )
    assert replayed.replay_failure is None
