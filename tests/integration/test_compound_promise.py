"""A compound Promise with the platform as a Destination: no GitOps agent on the platform, and the tree is visible."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.platform import NotFound, Platform
from tests.conftest import remote_files
from tests.kratix_documents import eventually, get, git_store_and_destinations, pipeline, promise, resource


async def test_compound_promise_requests_its_components_through_the_platform_destination(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    docs = git_store_and_destinations(
        git_remote, {"worker-1": {"environment": "dev"}, "platform": {"environment": "platform"}}
    )
    docs[-1]["metadata"]["annotations"] = {"ktx.io/platform-destination": "true"}
    for d in docs:
        await platform.apply(d)
    database = promise(
        "database",
        "Database",
        selectors={"environment": "dev"},
        configure=[
            pipeline("provision", FILES={"db.yaml": {"kind": "Database", "name": "{name}", "size": "{spec[size]}"}})
        ],
    )
    child = {
        "apiVersion": "test.ktx.io/v1",
        "kind": "Database",
        "metadata": {"name": "{name}-db", "namespace": "{namespace}"},
        "spec": {"size": "{spec[size]}"},
    }
    golden = promise(
        "golden-path",
        "GoldenPath",
        selectors={"environment": "platform"},
        required=[{"name": "database"}],
        configure=[pipeline("compose", FILES={"database.yaml": child})],
    )
    await platform.apply(database)
    await platform.apply(golden)
    await platform.wait_condition("promise", "golden-path", "default", "Available", timeout=60)

    await platform.apply(resource("GoldenPath", "shop", {"size": "small"}))
    await platform.wait_condition("goldenpath", "shop", "default", "Reconciled", timeout=60)
    db = await eventually(
        lambda: get(platform, "database", "shop-db"),
        lambda o: o["status"].get("message") == "Resource requested",
        what="the component resource fulfilled",
    )
    assert db["metadata"]["labels"] == {
        "kratix.io/promise-name": "database",
        "kratix.io/component-of-promise-name": "golden-path",
        "kratix.io/component-of-resource-name": "shop",
        "kratix.io/component-of-resource-namespace": "default",
    }
    files = remote_files(git_remote)
    assert "platform/resources/default/golden-path/shop/compose/5058f/database.yaml" in files
    assert "worker-1/resources/default/database/shop-db/provision/5058f/db.yaml" in files
    tree = await platform.tree("goldenpath", "shop")
    assert [(c["kind"], c["name"], c["status"]) for c in tree["children"]] == [("Database", "shop-db", "Reconciled")]

    # An update flows through to the component; deleting the parent deletes the component and its files.
    await platform.apply(resource("GoldenPath", "shop", {"size": "large"}))
    await eventually(lambda: get(platform, "database", "shop-db"), lambda o: o["spec"] == {"size": "large"})
    assert await platform.wait_deleted(await platform.delete("goldenpath", "shop"), timeout=60)
    await eventually(lambda: platform.list("database"), lambda items: items == [], what="component deleted")
    with pytest.raises(NotFound):
        await platform.get("database", "shop-db")
    await eventually(
        lambda: remote_files(git_remote), lambda fs: not [f for f in fs if "shop" in f], what="component files removed"
    )
