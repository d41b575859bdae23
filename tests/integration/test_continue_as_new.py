"""Object workflows continue as new when Temporal suggests it: after a configure, and while idle (a paused object
only relabelled, a Destination only sent write reports, a PromiseRelease only re-applied unchanged), so no history
grows until Temporal's hard limit terminates the workflow of a live object. A dev server of its own suggests
continuing as new after a few dozen events."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.naming import (
    CATALOG_WORKFLOW_ID,
    destination_workflow_id,
    promise_release_workflow_id,
    resource_workflow_id,
)
from service.platform import Platform
from tests.conftest import remote_files
from tests.integration.test_promise_release import host, hosted, installed, release  # noqa: F401  (host: a fixture)
from tests.integration.test_reconciliation import install
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource, runs
from tests.servers.promise_host import PromiseHost
from workflows.destination import DestinationWorkflow, WriteReport

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
    # Pipelines enough that one configure alone records more events than the threshold.
    configure = [pipeline("render"), pipeline("second"), pipeline("third")]
    await install(platform, git_remote, promise("canpromise", "Longlived", configure=configure))
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


async def test_a_destination_only_sent_write_reports_continues_as_new(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise("reported", "Reported", configure=[pipeline("render")]))
    await platform.apply(resource("Reported", "one", {"v": 1}))
    await platform.wait_condition("reported", "one", "default", "Reconciled", timeout=60)
    workflow_id = destination_workflow_id("worker-1")
    # Its own work done (checked, owners told of it), the Destination waits: it publishes when it next checks.
    await eventually(
        lambda: get(platform, "destination", "worker-1"),
        lambda d: bool(d["status"].get("nextCheckAt")),
        timeout=60,
        what="the Destination to wait for its next check",
    )
    before = await run_chain(platform.client, workflow_id)
    # What resource workflows send after each write; none of them is work for the Destination's own loop.
    handle = platform.client.get_workflow_handle(workflow_id)
    owner = resource_workflow_id("reported", "default", "one")
    sent = 0

    async def reported() -> list[list[EventType.ValueType]]:
        """Ten more reports, then the chain. Reports that arrive while the Destination checks its store (activities
        that take seconds under load) all land in that one run, which continues as new only after its check: so
        reports are sent until two runs have ended, not a fixed number that a slow check may swallow whole."""
        nonlocal sent
        for _ in range(CHANGES // 4):
            error = f"e{sent}" if sent % 2 else None
            await handle.signal(DestinationWorkflow.report_write, WriteReport(owner=owner, error=error))
            sent += 1
        return await run_chain(platform.client, workflow_id)

    chain = await eventually(
        reported,
        lambda c: len(c) >= len(before) + 2,
        timeout=60,
        what="the Destination's workflow to continue as new",
    )
    # Reports that arrive while the Destination does its own work (a check's activities) wait for it in that run, so
    # only the run it waits in now is bounded as tightly as an idle resource's.
    assert len(chain[-1]) <= RUN_EVENTS_BOUND, [len(r) for r in chain]
    dest = await eventually(
        lambda: get(platform, "destination", "worker-1"),
        lambda d: condition(d, "Ready").get("status") == "True",
        timeout=60,
        what="the Destination Ready in its new run",
    )
    assert dest["spec"]["stateStoreRef"]["name"] == "default"
    # The next change still goes through it: a new spec is configured and placed (Reconciled once written).
    await platform.apply(resource("Reported", "one", {"v": 2}))
    await eventually(
        lambda: get(platform, "reported", "one"),
        lambda o: runs(o, "render") == 2 and condition(o, "Reconciled").get("status") == "True",
        timeout=60,
        what="the changed resource reconciled",
    )


async def test_a_promise_release_only_reapplied_continues_as_new(platform: Platform, host: PromiseHost) -> None:  # noqa: F811
    host.routes["/promise"] = hosted("kept", "v1.0.0")
    doc = release("rel", f"{host.url}/promise")
    await platform.apply(doc)
    await eventually(
        lambda: platform.get("promiserelease", "rel"),
        lambda r: installed(r) is not None and installed(r)[0] == "True",
        what="installed",
    )
    workflow_id = promise_release_workflow_id("rel")
    before = await run_chain(platform.client, workflow_id)
    for _ in range(CHANGES):
        assert (await platform.apply(doc)).action == "unchanged"
    chain = await run_chain(platform.client, workflow_id)
    assert len(chain) >= len(before) + 2, [len(r) for r in chain]
    assert max(len(r) for r in chain) <= RUN_EVENTS_BOUND, [len(r) for r in chain]
    rel = await platform.get("promiserelease", "rel")
    assert installed(rel)[0] == "True" and rel["metadata"]["generation"] == 1
    host.routes["/promise"] = hosted("kept", "v1.1.0")
    assert (await platform.apply(release("rel", f"{host.url}/promise", version="v1.1.0"))).action == "configured"
    await eventually(
        lambda: platform.get("promise", "kept"),
        lambda p: p.get("metadata", {}).get("labels", {}).get("kratix.io/promise-version") == "v1.1.0",
        what="the next change to reach the Promise",
    )


async def test_a_run_continued_as_new_starts_with_its_memo(platform: Platform, git_remote: Path) -> None:
    """Until a new run's first task upserts its memo again, readers of visibility see the memo it started with: none,
    before, so the catalog read as empty (an apply then found no Promise serving its kind) and lists dropped objects."""
    await install(platform, git_remote, promise("cataloged", "Cataloged"))
    handle = platform.client.get_workflow_handle(CATALOG_WORKFLOW_ID)
    for i in range(SUGGEST_AFTER):  # each apply of a Destination is an update of the catalog's workflow
        await platform.apply(
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "Destination",
                "metadata": {"name": f"d{i}", "labels": {}},
                "spec": {"path": f"d{i}", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
            }
        )
    chain = await eventually(
        lambda: run_chain(platform.client, CATALOG_WORKFLOW_ID),
        lambda c: len(c) >= 2,
        timeout=60,
        what="the catalog's workflow to continue as new",
    )
    assert len(chain) >= 2
    started = await anext(aiter(handle.fetch_history_events()))
    memo = started.workflow_execution_started_event_attributes.memo.fields
    assert "catalog" in memo, "the new run started with no memo"
    assert b"d0" in memo["catalog"].data
