"""Credentialed state stores end to end: a private Git server behind Basic auth and an S3 server with access keys,
credentials applied as Secrets and resolved by reference, every filepath mode, and no secret value in any history."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from temporalio.client import Client

from service.platform import Platform
from tests.conftest import read_remote, remote_files
from tests.integration.test_destinations import KRATIX, destination, writes_configmap
from tests.kratix_documents import condition, eventually, get, promise, resource
from tests.servers.git_servers import GitHttpServer, bare_repo
from tests.servers.s3_server import WRITER, objects

TOKEN = "ghp-very-secret-token-1234"


def secret(name: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }


def bucket_store(endpoint: str, bucket: str) -> dict[str, Any]:
    """BucketStateStore `bucket` at path `fleet`, with the access keys of Secret `s3-creds`."""
    return {
        "apiVersion": KRATIX,
        "kind": "BucketStateStore",
        "metadata": {"name": "bucket"},
        "spec": {
            "endpoint": endpoint,
            "bucketName": bucket,
            "insecure": True,
            "path": "fleet",
            "authMethod": "accessKey",
            "secretRef": {"name": "s3-creds", "namespace": "default"},
        },
    }


async def histories_mention(client: Client, text: str) -> list[str]:
    found = []
    async for execution in client.list_workflows():
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        if text.encode() in history.to_json().encode() or text in history.to_json():
            found.append(execution.id)
    return found


async def test_git_basic_auth_and_every_filepath_mode(platform: Platform, tmp_path: Path, pipeline_images) -> None:
    base = tmp_path / "srv"
    base.mkdir()
    remote = bare_repo(base, "fleet.git")
    with GitHttpServer(base, "platform-bot", TOKEN) as server:
        store = {
            "apiVersion": KRATIX,
            "kind": "GitStateStore",
            "metadata": {"name": "private"},
            "spec": {
                "url": server.url("fleet.git"),
                "branch": "main",
                "authMethod": "basicAuth",
                "secretRef": {"name": "git-creds", "namespace": "default"},
            },
        }
        await platform.apply(store)
        await platform.apply(
            destination("agg", store="private", filepath={"mode": "aggregatedYAML", "filename": "all.yaml"})
        )
        # strictMatchLabels: only work that asks for `mode: flat` lands here.
        await platform.apply(
            destination("flat", {"mode": "flat"}, store="private", filepath={"mode": "none"}, strictMatchLabels=True)
        )
        dest = await eventually(
            lambda: platform.get("destination", "agg"),
            lambda d: condition(d, "Ready").get("reason") == "StateStoreNotReady",
            what="no Secret yet",
        )
        assert "Secret git-creds not found in namespace default" in condition(dest, "Ready")["message"]
        applied = await platform.apply(secret("git-creds", username="platform-bot", password=TOKEN))
        assert (applied.kind, applied.action) == ("Secret", "created")
        for name in ("agg", "flat"):
            await eventually(
                lambda: platform.get("destination", name), lambda d: condition(d, "Ready").get("status") == "True"
            )
        shown = await platform.get("secret", "git-creds")
        assert shown["keys"] == ["password", "username"] and TOKEN not in str(shown)

        await platform.apply(promise("modes", "Modes", configure=[writes_configmap()]))
        await platform.wait_condition("promise", "modes", "default", "Available", timeout=60)
        # Two resources go to the aggregated Destination, one to the flat one (resource selectors pick it).
        flat = writes_configmap()
        flat["spec"]["containers"][0]["env"].append({"name": "SELECTORS", "value": "- matchLabels: {mode: flat}\n"})
        await platform.apply(promise("flatmodes", "FlatModes", configure=[flat]))
        await platform.wait_condition("promise", "flatmodes", "default", "Available", timeout=60)
        await platform.apply(
            destination(
                "agg", {"mode": "agg"}, store="private", filepath={"mode": "aggregatedYAML", "filename": "all.yaml"}
            )
        )
        for kind, name in (("Modes", "one"), ("Modes", "two"), ("FlatModes", "three")):
            await platform.apply(resource(kind, name))
        for kind, name in (("modes", "one"), ("modes", "two"), ("flatmodes", "three")):
            obj = await eventually(
                lambda: get(platform, kind, name), lambda o: condition(o, "WorksSucceeded").get("status") == "True"
            )
        aggregate = read_remote(remote, "agg/all.yaml")
        assert "name: one" in aggregate and "name: two" in aggregate and "name: three" not in aggregate
        assert read_remote(remote, "flat/cm.yaml").count("name: three") == 1
        [where] = obj["_ktx"]["placements"]
        assert where["key"].startswith("flat/.kratix/default-flatmodes-three-write-") and where["key"].endswith(
            ".flat-5058f.yaml"
        )
        assert read_remote(remote, where["key"]) == "files:\n- flat/cm.yaml\n"
        await platform.wait_deleted(await platform.delete("modes", "one"), timeout=60)
        await platform.wait_deleted(await platform.delete("flatmodes", "three"), timeout=60)
        aggregate = read_remote(remote, "agg/all.yaml")
        assert "name: one" not in aggregate and "name: two" in aggregate
        assert not [f for f in remote_files(remote) if f.startswith("flat/") and "canary" not in f]
    assert await histories_mention(platform.client, TOKEN) == []
    assert await histories_mention(platform.client, base64.b64encode(f"platform-bot:{TOKEN}".encode()).decode()) == []


async def test_bucket_state_store_with_access_keys(
    platform: Platform, s3_server, s3_bucket: str, pipeline_images
) -> None:
    await platform.apply(secret("s3-creds", accessKeyID=WRITER[0], secretAccessKey=WRITER[1]))
    await platform.apply(bucket_store(s3_server.endpoint, s3_bucket))
    await platform.apply(destination("edge", kind="BucketStateStore", store="bucket"))
    await eventually(
        lambda: platform.get("destination", "edge"), lambda d: condition(d, "Ready").get("status") == "True"
    )
    store = await platform.get("bucketstatestore", "bucket")
    assert store["status"]["status"] == "Ready"
    await platform.apply(promise("objects", "Objects", configure=[writes_configmap()]))
    await platform.wait_condition("promise", "objects", "default", "Available", timeout=60)
    await platform.apply(resource("Objects", "one"))
    await eventually(
        lambda: get(platform, "objects", "one"), lambda o: condition(o, "WorksSucceeded").get("status") == "True"
    )
    stored = objects(s3_server.client(), s3_bucket)
    assert b"name: one" in stored["fleet/edge/resources/default/objects/one/write/5058f/cm.yaml"]
    assert "fleet/edge/dependencies/kratix-canary-namespace.yaml" in stored
    await platform.wait_deleted(await platform.delete("objects", "one"), timeout=60)
    assert not [k for k in objects(s3_server.client(), s3_bucket) if "/resources/default/objects/" in k]
    assert await histories_mention(platform.client, WRITER[1]) == []
