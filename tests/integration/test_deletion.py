"""Deletion never hangs silently: failing delete pipelines retry visibly, --force always finishes, Promises take their
resources."""

from __future__ import annotations

from pathlib import Path

from service.platform import Platform
from tests.conftest import remote_files
from tests.kratix_documents import (
    condition,
    eventually,
    get,
    git_store_and_destinations,
    pipeline,
    promise,
    resource,
    runs,
)

RENDER = pipeline("render", FILES={"app.yaml": {"app": "{name}"}})


async def install(platform: Platform, remote: Path, doc: dict) -> None:
    for d in git_store_and_destinations(remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(d)
    await platform.apply(doc)
    await platform.wait_condition("promise", doc["metadata"]["name"], "default", "Available", timeout=60)


async def test_failing_delete_pipeline_retries_visibly_and_force_removes_everything(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(
        platform,
        git_remote,
        promise("stubborn", "Stubborn", configure=[RENDER], delete=[pipeline("teardown", FAIL="4")]),
    )
    await platform.apply(resource("Stubborn", "one"))
    await platform.wait_condition("stubborn", "one", "default", "Reconciled", timeout=60)
    files = [f for f in remote_files(git_remote) if "/stubborn/one/" in f]
    assert files

    workflow_id = await platform.delete("stubborn", "one")
    # The delete pipeline's own backoff (1 retry) and then the delete retry schedule both re-run it.
    obj = await eventually(
        lambda: get(platform, "stubborn", "one"),
        lambda o: runs(o, "teardown", "delete") >= 4,
        what="delete pipeline retried",
    )
    failed = condition(obj, "DeleteWorkflowCompleted")
    assert (failed["status"], failed["reason"]) == ("False", "DeleteWorkflowFailed")
    assert "exited with code 4" in failed["message"]
    assert any(e["reason"] == "Failed Pipeline" for e in obj["_ktx"]["events"])
    assert all(f in remote_files(git_remote) for f in files)  # nothing is removed while the delete pipeline fails

    await platform.delete("stubborn", "one", force=True)
    assert await platform.wait_deleted(workflow_id, timeout=60)
    assert not [f for f in remote_files(git_remote) if "/stubborn/one/" in f]


async def test_force_cancels_a_hung_delete_pipeline(platform: Platform, git_remote: Path, pipeline_images) -> None:
    await install(
        platform, git_remote, promise("hung", "Hung", configure=[RENDER], delete=[pipeline("teardown", SLEEP="600")])
    )
    await platform.apply(resource("Hung", "one"))
    await platform.wait_condition("hung", "one", "default", "Reconciled", timeout=60)
    workflow_id = await platform.delete("hung", "one")
    await eventually(
        lambda: get(platform, "hung", "one"),
        lambda o: runs(o, "teardown", "delete") == 1,
        what="delete pipeline started",
    )
    await platform.delete("hung", "one", force=True)
    assert await platform.wait_deleted(workflow_id, timeout=60)
    assert not [f for f in remote_files(git_remote) if "/hung/one/" in f]


async def test_deleting_a_promise_runs_its_delete_pipeline_then_deletes_its_resources(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    doc = promise(
        "owner",
        "Owned",
        configure=[RENDER],
        delete=[pipeline("resource-teardown")],
        promise_configure=[pipeline("deps", FILES={"crd.yaml": {"kind": "CRD"}})],
        promise_delete=[pipeline("promise-teardown")],
        selectors={"environment": "dev"},
    )
    await install(platform, git_remote, doc)
    for name in ("a", "b"):
        await platform.apply(resource("Owned", name))
    for name in ("a", "b"):
        await platform.wait_condition("owned", name, "default", "Reconciled", timeout=60)
    assert [f for f in remote_files(git_remote) if "owner" in f]

    workflow_id = await platform.delete("promise", "owner")
    assert await platform.wait_deleted(workflow_id, timeout=120)
    assert not [f for f in remote_files(git_remote) if "owner" in f]
    await eventually(
        lambda: platform.list("promise"), lambda items: items == [], what="no Promise listed"
    )  # visibility lags
    # Each delete pipeline ran (their container logs are kept on the worker).
    logs = {p.name.rsplit("-", 1)[0] for p in tmp_path.glob("ktx-home-*/logs/*")}
    assert {"promise-owner-promise-teardown", "default-a-resource-teardown", "default-b-resource-teardown"} <= logs
