"""A Promise installed and a resource request fulfilled into a real Git state store, on a real Temporal server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from service.platform import NotFound, Platform
from domain.errors import InvalidDocument
from tests.conftest import ROOT, TEST_CONFIG, read_remote, remote_commits, remote_files
from tests.kratix_documents import condition
from tests.waiting import eventually
from worker.main import build_worker
from worker.settings import Settings

EXAMPLE = ROOT / "examples" / "promises" / "app-config"


def store_and_destination(remote: Path, labels: dict[str, str] | None = None) -> list[dict]:
    return [
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "GitStateStore",
            "metadata": {"name": "default"},
            "spec": {"url": str(remote), "branch": "main", "gitAuthor": {"name": "ktx", "email": "ktx@example.com"}},
        },
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Destination",
            "metadata": {"name": "local", "labels": labels or {"environment": "dev"}},
            "spec": {"path": "local", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
        },
    ]


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLE / name).read_text())


async def install(platform: Platform, remote: Path) -> None:
    for doc in store_and_destination(remote):
        await platform.apply(doc)
    assert (await platform.apply(example("promise.yaml"))).action == "created"
    await platform.wait_condition("promise", "app-config", "default", "Available", timeout=120)


async def test_promise_install_and_resource_configure_and_delete(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote)
    files = remote_files(git_remote)
    # Static dependencies and promise.configure output land at Kratix's paths.
    assert "local/dependencies/app-config/5058f/static/app-config-dependencies.yaml" in files
    assert "local/dependencies/app-config/setup/5058f/namespace.yaml" in files
    promise = await platform.get("promise", "app-config")
    assert promise["status"]["status"] == "Available"
    assert promise["status"]["message"] == "app-config system namespace rendered"

    applied = await platform.apply(example("resource-request.yaml"))
    assert (applied.kind, applied.action) == ("AppConfig", "created")
    obj = await platform.wait_condition("appconfig", "checkout", "default", "Reconciled", timeout=120)
    path = "local/resources/default/app-config/checkout/render/5058f/configmap.yaml"
    configmap = yaml.safe_load(read_remote(git_remote, path))
    assert configmap["data"] == {"team": "payments", "size": "medium", "replicas": "2", "logLevel": "info"}
    status = obj["status"]
    assert status["message"] == "Resource requested"
    assert status["replicas"] == 2
    assert status["observedGeneration"] == 1
    assert [p["phase"] for p in status["kratix"]["workflows"]["pipelines"]] == ["Succeeded"]
    placement = obj["_ktx"]["placements"][0]
    assert (placement["destination"], placement["path"]) == (
        "local",
        "local/resources/default/app-config/checkout/render/5058f",
    )
    assert len(placement["version_id"]) == 40

    # Re-applying the same document changes nothing and commits nothing.
    commits = remote_commits(git_remote)
    assert (await platform.apply(example("resource-request.yaml"))).action == "unchanged"

    # A spec change re-runs the pipeline and replaces the files.
    changed = example("resource-request.yaml")
    changed["spec"]["size"] = "large"
    assert (await platform.apply(changed)).action == "configured"
    # Reconciled alone is still true from generation 1: only observedGeneration 2 says the new run finished.
    await eventually(
        lambda: platform.get("appconfig", "checkout", "default"),
        lambda o: o["status"].get("observedGeneration") == 2 and condition(o, "Reconciled").get("status") == "True",
        timeout=120,
        what="checkout reconciled at generation 2",
    )
    assert yaml.safe_load(read_remote(git_remote, path))["data"]["replicas"] == "3"
    assert remote_commits(git_remote) == commits + 1

    listed = await platform.list("appconfigs", namespace="default")
    assert [o["metadata"]["name"] for o in listed] == ["checkout"]

    workflow_id = await platform.delete("appconfig", "checkout", "default")
    assert await platform.wait_deleted(workflow_id, timeout=120)
    assert not [f for f in remote_files(git_remote) if f.startswith("local/resources/default/app-config/checkout/")]
    with pytest.raises(NotFound):
        await platform.get("appconfig", "checkout", "default")


async def test_invalid_request_is_refused_with_field_and_reason(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote)
    bad = example("resource-request.yaml")
    bad["spec"] = {"size": "huge", "replicas": 9, "colour": "red"}
    with pytest.raises(InvalidDocument) as refused:
        await platform.apply(bad)
    fields = {e.field: e.reason for e in refused.value.errors}
    assert "Required value" in fields["spec.team"]
    assert "supported values" in fields["spec.size"]
    assert "less than or equal to 5" in fields["spec.replicas"]
    assert "not declared" in fields["spec.colour"]
    assert await platform.list("appconfig") == []


async def test_request_for_a_kind_no_promise_serves_is_not_found(platform: Platform) -> None:
    with pytest.raises(NotFound, match="no Promise serves kind"):
        await platform.apply(
            {"apiVersion": "example.ktx.io/v1alpha1", "kind": "Nope", "metadata": {"name": "x"}, "spec": {}}
        )


async def test_a_new_request_is_accepted_without_a_worker_and_later_changes_apply_in_order(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    await install(platform, git_remote)
    # The same platform, but its resources go to a task queue no worker polls yet.
    later = Platform(platform.client, f"{platform.task_queue}-later", platform.secrets)
    request = example("resource-request.yaml")
    assert (await later.apply(request)).action == "created"
    shown = await later.get("appconfig", "checkout", "default")
    assert request["spec"].items() <= shown["spec"].items() and shown["status"] == {}  # with the schema's defaults

    changed = {**request, "spec": {**request["spec"], "size": "large"}}
    update = asyncio.create_task(later.apply(changed))  # answered only once a worker runs the workflow
    settings = Settings(
        home=tmp_path / "later",
        temporal_namespace=platform.client.namespace,
        task_queue=later.task_queue,
        platform=TEST_CONFIG,
    )
    async with build_worker(platform.client, settings):
        assert (await update).action == "configured"
        # Reconciled may first be reached by a run of generation 1; only observedGeneration 2 is the change's run.
        obj = await eventually(
            lambda: later.get("appconfig", "checkout", "default"),
            lambda o: o["status"].get("observedGeneration") == 2 and condition(o, "Reconciled").get("status") == "True",
            timeout=120,
            what="checkout reconciled at generation 2",
        )
    assert obj["metadata"]["generation"] == 2 and obj["spec"]["size"] == "large"
    # Applied in order: what is on main is the later (large: 3 replicas) request, not the first one.
    path = "local/resources/default/app-config/checkout/render/5058f/configmap.yaml"
    assert yaml.safe_load(read_remote(git_remote, path))["data"]["replicas"] == "3"
