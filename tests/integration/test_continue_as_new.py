"""Object workflows continue as new when Temporal suggests it: after a configure, and while idle (a paused object
only relabelled), so no history grows until Temporal's hard limit terminates the workflow of a live object. A dev
server of its own suggests continuing as new after a few dozen events."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.naming import resource_workflow_id
from service.platform import Platform
from tests.conftest import remote_files
from tests.integration.test_reconciliation import install
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource, runs

SUGGEST_AFTER = 25
# Each run's history stays near the threshold: what one change adds (its update, workflow task and memo upsert) and
# the continue-as-new itself on top of it, never the whole series of changes.
RUN_EVENTS_BOUND = SUGGEST_AFTER + 40
CHANGES = 40

pytestmark = pytest.mark.parametrize(
    "temporal_env", [{"limit.historyCount.suggestContinueAsNew": SUGGEST_AFTER}], indirect=True
)


async def run_chain(client: Client, workflow_id: str) -> list[list[EventType.ValueType]]:
    """The event types of each run under `workflow_id`, first to current, followed through continue-as-new."""
    described = await client.get_workflow_handle(workflow_id).describe()
    run_id = described.raw_description.workflow_execution_info.first_run_id
    chain = []
    while run_id:
        events = [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
        chain.append([e.event_type for e in events])
        last = events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else ""
    assert chain[-1][-1] != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert run_id == "" and described.run_id  # the chain ends at the run `describe` reports as current
    return chain


async def test_paused_resource_continues_as_new_while_only_relabelled(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise("canpromise", "Longlived", configure=[pipeline("render")]))
    await platform.apply(resource("Longlived", "one", {"v": 1}))
    await platform.wait_condition("longlived", "one", "default", "Reconciled", timeout=60)
    workflow_id = resource_workflow_id("canpromise", "default", "one")
    placed = sorted(remote_files(git_remote))
    # The configure alone passes the threshold: it continued as new after it (the path taken before idle runs did).
    after_configure = await run_chain(platform.client, workflow_id)
    assert len(after_configure) >= 2, [len(r) for r in after_configure]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in after_configure[0]

    await platform.label("longlived", "one", set={"kratix.io/paused": "true"})
    for i in range(CHANGES):
        labels = await platform.label("longlived", "one", set={"change": str(i)})
        assert labels["change"] == str(i)
    obj = await get(platform, "longlived", "one")
    version = int(obj["_ktx"]["resourceVersion"])

    chain = await run_chain(platform.client, workflow_id)
    idle_runs = chain[len(after_configure) :]
    # Relabelling alone (no configure: the object is paused) made new runs, each ending before the bound.
    assert len(idle_runs) >= 2, [len(r) for r in chain]
    assert all(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in r for r in chain[len(after_configure) :][1:])
    assert max(len(r) for r in chain) <= RUN_EVENTS_BOUND, [len(r) for r in chain]

    # Labels, status, resourceVersion and placements came through every new run; the next change still applies.
    assert obj["metadata"]["labels"]["change"] == str(CHANGES - 1)
    assert obj["metadata"]["labels"]["kratix.io/paused"] == "true"
    assert condition(obj, "Reconciled")["reason"] == "PausedReconciliation"
    assert runs(obj, "render") == 1
    assert sorted(remote_files(git_remote)) == placed
    await platform.label("longlived", "one", remove=["kratix.io/paused"], set={"change": "last"})
    after = await get(platform, "longlived", "one")
    assert int(after["_ktx"]["resourceVersion"]) > version
    assert after["metadata"]["labels"]["change"] == "last"
    await eventually(
        lambda: get(platform, "longlived", "one"),
        lambda o: runs(o, "render") == 2 and condition(o, "Reconciled").get("status") == "True",
        timeout=60,
        what="the unpaused resource to run its pipeline again",
    )
    assert sorted(remote_files(git_remote)) == placed
