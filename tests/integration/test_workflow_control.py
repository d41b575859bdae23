"""Kratix's workflow_control_test.go scenarios: suspend, resume from the suspended pipeline, retryAfter, gated
delete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from service.platform import Platform
from tests.conftest import remote_files
from tests.kratix_documents import (
    condition,
    eventually,
    get,
    git_store_and_destinations,
    phases,
    pipeline,
    pipeline_entry,
    promise,
    resource,
    runs,
)
from worker.main import WORKFLOWS

SUSPENDED = "kratix.io/workflow-suspended"


async def setup(platform: Platform, remote: Path, doc: dict) -> None:
    for d in git_store_and_destinations(remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(d)
    await platform.apply(doc)


async def test_suspend_resume_and_restart(platform: Platform, git_remote: Path, pipeline_images) -> None:
    doc = promise(
        "workflow-suspend",
        "Suspender",
        configure=[
            pipeline("pipe-0", FILES={"zero.yaml": {"stage": 0}}),
            pipeline(
                "pipe-1",
                GATE_LABEL="approved",
                FILES={"one.yaml": {"stage": 1}},
                CONTROL={"suspend": True, "message": "waiting for approval"},
            ),
            pipeline("pipe-2", FILES={"two.yaml": {"stage": 2}}),
        ],
    )
    await setup(platform, git_remote, doc)
    await platform.wait_condition("promise", "workflow-suspend", "default", "Available", timeout=60)
    await platform.apply(resource("Suspender", "one"))
    read = lambda: get(platform, "suspender", "one")  # noqa: E731
    obj = await eventually(read, lambda o: phases(o).get("pipe-1") == "Suspended", what="pipe-1 suspended")
    assert phases(obj) == {"pipe-0": "Succeeded", "pipe-1": "Suspended", "pipe-2": "Pending"}
    assert pipeline_entry(obj, "pipe-1")["message"] == "waiting for approval"
    assert obj["metadata"]["labels"][SUSPENDED] == "true"
    assert obj["status"]["kratix"]["workflows"]["suspendedGeneration"] == 1
    assert condition(obj, "Reconciled")["reason"] == "WorkflowSuspended"
    assert (runs(obj, "pipe-0"), runs(obj, "pipe-1"), runs(obj, "pipe-2")) == (1, 1, 0)
    # The suspended pipeline's outputs are discarded: nothing of pipe-1 was written.
    assert not [f for f in remote_files(git_remote) if "/pipe-1/" in f]

    # Removing the label resumes from the suspended pipeline, which suspends again.
    await platform.label("suspender", "one", remove=[SUSPENDED])
    obj = await eventually(read, lambda o: runs(o, "pipe-1") == 2 and phases(o).get("pipe-1") == "Suspended")
    assert (runs(obj, "pipe-0"), runs(obj, "pipe-2")) == (1, 0)

    # Manual reconciliation restarts from the first pipeline.
    await platform.reconcile("suspender", "one")
    obj = await eventually(read, lambda o: runs(o, "pipe-0") == 2 and phases(o).get("pipe-1") == "Suspended")
    assert "kratix.io/manual-reconciliation" not in obj["metadata"]["labels"]
    assert runs(obj, "pipe-2") == 0

    # Approve, then resume: the workflow completes and the suspension bookkeeping is gone.
    await platform.label("suspender", "one", set={"approved": "yes"})
    await platform.label("suspender", "one", remove=[SUSPENDED])
    obj = await eventually(read, lambda o: condition(o, "Reconciled").get("status") == "True", what="reconciled")
    assert phases(obj) == {"pipe-0": "Succeeded", "pipe-1": "Succeeded", "pipe-2": "Succeeded"}
    assert (runs(obj, "pipe-0"), runs(obj, "pipe-1"), runs(obj, "pipe-2")) == (2, 4, 1)
    assert "suspendedGeneration" not in obj["status"]["kratix"]["workflows"]
    assert "message" not in pipeline_entry(obj, "pipe-1")
    assert SUSPENDED not in obj["metadata"]["labels"]
    assert [f for f in remote_files(git_remote) if f.endswith("/pipe-1/5058f/one.yaml")]

    # The histories this produced (updates, timers, suspensions) replay deterministically on the current code.
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    for workflow_id in ("resource/workflow-suspend/default/one", "promise/workflow-suspend"):
        history = await platform.client.get_workflow_handle(workflow_id).fetch_history()
        await replayer.replay_workflow(history)


async def test_retry_after_retries_on_a_durable_timer(platform: Platform, git_remote: Path, pipeline_images) -> None:
    doc = promise(
        "workflow-retry",
        "Retrier",
        configure=[
            pipeline("pipe-0"),
            pipeline(
                "pipe-retry",
                GATE_LABEL="gate",
                CONTROL={"retryAfter": "1s", "message": "configmap workflow-retry-test not found"},
            ),
            pipeline("pipe-2"),
        ],
    )
    await setup(platform, git_remote, doc)
    await platform.wait_condition("promise", "workflow-retry", "default", "Available", timeout=60)
    await platform.apply(resource("Retrier", "one"))
    read = lambda: get(platform, "retrier", "one")  # noqa: E731
    obj = await eventually(
        read,
        lambda o: pipeline_entry(o, "pipe-retry").get("attempts", 0) >= 2 and phases(o)["pipe-retry"] == "Suspended",
        what="two retry attempts",
    )
    entry = pipeline_entry(obj, "pipe-retry")
    assert entry["message"] == "configmap workflow-retry-test not found"
    assert entry["nextRetryAt"] and obj["_ktx"]["schedule"]["retryAt"]
    assert runs(obj, "pipe-2") == 0 and runs(obj, "pipe-0") == 1

    await platform.label("retrier", "one", set={"gate": "open"})
    obj = await eventually(
        read, lambda o: condition(o, "Reconciled").get("status") == "True", what="reconciled after the gate opened"
    )
    entry = pipeline_entry(obj, "pipe-retry")
    assert entry["phase"] == "Succeeded" and "attempts" not in entry and "nextRetryAt" not in entry
    assert SUSPENDED not in obj["metadata"]["labels"]
    assert obj["_ktx"]["schedule"]["retryAt"] is None


async def test_suspended_delete_pipeline_gates_deletion(platform: Platform, git_remote: Path, pipeline_images) -> None:
    doc = promise(
        "gated",
        "Gated",
        configure=[pipeline("render", FILES={"app.yaml": {"app": "{name}"}})],
        delete=[
            pipeline(
                "teardown",
                GATE_LABEL="gate",
                CONTROL={"suspend": True},
                STATUS={"message": "waiting for delete gate configmap"},
            )
        ],
    )
    await setup(platform, git_remote, doc)
    await platform.wait_condition("promise", "gated", "default", "Available", timeout=60)
    await platform.apply(resource("Gated", "one"))
    await platform.wait_condition("gated", "one", "default", "Reconciled", timeout=60)
    app_file = "worker-1/resources/default/gated/one/render/5058f/app.yaml"
    assert app_file in remote_files(git_remote)

    workflow_id = await platform.delete("gated", "one")
    read = lambda: get(platform, "gated", "one")  # noqa: E731
    obj = await eventually(
        read, lambda o: condition(o, "DeleteWorkflowCompleted").get("reason") == "DeleteWorkflowSuspended"
    )
    assert phases(obj) == {"teardown": "Suspended"}  # only the delete pipeline is listed while deleting
    assert obj["status"]["message"] == "waiting for delete gate configmap"
    assert app_file in remote_files(git_remote)  # the resource's files stay while the delete is gated

    await platform.label("gated", "one", set={"gate": "open"})
    await platform.label("gated", "one", remove=[SUSPENDED])
    assert await platform.wait_deleted(workflow_id, timeout=60)
    assert app_file not in remote_files(git_remote)


async def test_promise_workflow_suspension_makes_the_promise_unavailable(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    doc = promise(
        "held",
        "Held",
        promise_configure=[pipeline("hold", GATE_LABEL="go", CONTROL={"suspend": True, "message": "hold"})],
    )
    await setup(platform, git_remote, doc)
    read = lambda: get(platform, "promise", "held")  # noqa: E731
    obj = await eventually(read, lambda o: phases(o).get("hold") == "Suspended", what="promise pipeline suspended")
    available = condition(obj, "Available")
    assert (available["status"], available["reason"]) == ("False", "WorkflowSuspended")
    assert obj["status"]["status"] == "Unavailable"
    await platform.label("promise", "held", set={"go": "yes"}, remove=[SUSPENDED])
    await platform.wait_condition("promise", "held", "default", "Available", timeout=60)


async def test_suspended_promise_delete_pipeline_gates_promise_deletion(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    doc = promise(
        "gated-promise",
        "GatedP",
        promise_configure=[pipeline("deps", FILES={"ns.yaml": {"kind": "Namespace"}})],
        promise_delete=[
            pipeline("promise-teardown", GATE_LABEL="gate", CONTROL={"suspend": True, "message": "waiting"})
        ],
    )
    await setup(platform, git_remote, doc)
    await platform.wait_condition("promise", "gated-promise", "default", "Available", timeout=60)
    assert [f for f in remote_files(git_remote) if "/gated-promise/" in f]
    workflow_id = await platform.delete("promise", "gated-promise")
    read = lambda: get(platform, "promise", "gated-promise")  # noqa: E731
    obj = await eventually(
        read, lambda o: condition(o, "DeleteWorkflowCompleted").get("reason") == "DeleteWorkflowSuspended"
    )
    assert phases(obj) == {"promise-teardown": "Suspended"}
    assert runs(obj, "promise-teardown", "delete") == 1
    assert [f for f in remote_files(git_remote) if "/gated-promise/" in f]  # dependencies stay while gated
    await platform.label("promise", "gated-promise", set={"gate": "open"}, remove=[SUSPENDED])
    assert await platform.wait_deleted(workflow_id, timeout=60)
    assert not [f for f in remote_files(git_remote) if "/gated-promise/" in f]


async def test_a_pause_landing_while_the_run_writes_its_output_shows_paused_once_the_run_ends(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    # The remote holds every push at a gate the test opens, so the pause lands while the run is writing.
    gate, waiting = tmp_path / "gate-open", tmp_path / "push-waiting"
    gate.touch()
    hook = git_remote / "hooks" / "pre-receive"
    # The gate gives up after 120 s (refusing the push), so a test that fails before opening it cannot hang its worker.
    hook.write_text(
        f"#!/bin/sh\ncat >/dev/null\ntouch {waiting}\nn=0\nwhile [ ! -e {gate} ]; do\n"
        f"  n=$((n + 1)); [ $n -gt 2400 ] && exit 1\n  sleep 0.05\ndone\n"
    )
    hook.chmod(0o755)
    for doc in git_store_and_destinations(git_remote, {"dev": {}}):
        await platform.apply(doc)
    await platform.apply(
        promise("gated", "Gated", configure=[pipeline("write", FILES={"cm.yaml": {"kind": "ConfigMap"}})])
    )
    await platform.wait_condition("promise", "gated", "default", "Available", timeout=60)
    await eventually(
        lambda: get(platform, "destination", "dev"), lambda o: condition(o, "Ready").get("status") == "True"
    )
    gate.unlink()
    waiting.unlink(missing_ok=True)
    await platform.apply(resource("Gated", "one"))
    await eventually(lambda: asyncio.to_thread(waiting.exists), bool, what="the output's push waiting at the gate")
    await platform.label("gated", "one", "default", set={"kratix.io/paused": "true"})
    gate.touch()
    finished = await eventually(
        lambda: get(platform, "gated", "one"),
        lambda o: condition(o, "ConfigureWorkflowCompleted").get("status") == "True",
        what="the run finished",
    )
    assert condition(finished, "Reconciled")["reason"] == "PausedReconciliation"
    assert any(f.endswith("gated/one/write/5058f/cm.yaml") for f in remote_files(git_remote))  # the run's work stands
