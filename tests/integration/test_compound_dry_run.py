"""A compound request's dry run on real parts (Temporal dev server, podman, git remotes): each component request its
pipeline emits (labelled kratix.io/parent-resource-name) gets a component DryRun, recursively; the summary nests
their diffs, `status.components` and `ComponentsSucceeded` report them as Kratix's compound preview does, `ktx
diff` includes their files per Destination, and nothing reaches a real Destination, the live components or a new
component request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.errors import NotFound
from service.platform import Platform
from tests.conftest import remote_files
from tests.integration.test_dry_run import DRY_RUN_LABELS, bare_remote, completed, dry_run, head, summary_of
from tests.integration.test_destinations import destination, git_store
from tests.kratix_documents import condition, eventually, get, git_store_and_destinations, pipeline, promise, resource

PARENT = {"kratix.io/parent-resource-name": "{name}", "kratix.io/parent-resource-namespace": "{namespace}"}


def component(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "test.ktx.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "{namespace}", "labels": PARENT},
        "spec": spec,
    }


def compound_promises() -> list[dict[str, Any]]:
    """backup, database and golden-path, in the order they install: golden-path asks for a Database (for the
    platform Destination), which asks for a Backup (for a worker)."""
    backup = promise(
        "backup",
        "Backup",
        selectors={"environment": "dev"},
        configure=[pipeline("schedule", FILES={"cron.yaml": {"kind": "Cron", "every": "{spec[every]}"}})],
    )
    files = {
        "db.yaml": {"kind": "Database", "name": "{name}", "size": "{spec[size]}"},
        "backup.yaml": component("Backup", "{name}-backup", {"every": "1h"}),
    }
    database = promise(
        "database",
        "Database",
        selectors={"environment": "dev"},
        properties={"size": {"type": "string", "enum": ["small", "large"]}},
        configure=[pipeline("provision", FILES=files)],
    )
    golden = promise(
        "golden-path",
        "GoldenPath",
        selectors={"environment": "platform"},
        configure=[
            pipeline("compose", FILES={"database.yaml": component("Database", "{name}-db", {"size": "{spec[size]}"})})
        ],
    )
    return [backup, database, golden]


async def install(platform: Platform, git_remote: Path, tmp_path: Path) -> Path:
    """golden-path asks for a Database, which asks for a Backup: two levels of components. The live Database is
    created by the real compound flow (the platform Destination); the Backup request only goes to a worker."""
    docs = git_store_and_destinations(
        git_remote, {"worker-1": {"environment": "dev"}, "platform": {"environment": "platform"}}
    )
    docs[-1]["metadata"]["annotations"] = {"ktx.io/platform-destination": "true"}
    for d in docs:
        await platform.apply(d)
    preview = bare_remote(tmp_path, "preview")
    await platform.apply(git_store(preview, "preview"))
    await platform.apply(destination("preview", DRY_RUN_LABELS, store="preview"))
    for p in compound_promises():
        await platform.apply(p)
        await platform.wait_condition("promise", p["metadata"]["name"], "default", "Available", timeout=60)
    await platform.apply(resource("GoldenPath", "shop", {"size": "small"}))
    await platform.wait_condition("goldenpath", "shop", "default", "Reconciled", timeout=90)
    await eventually(
        lambda: get(platform, "database", "shop-db"),
        lambda o: bool(condition(o, "Reconciled")) and condition(o, "Reconciled")["status"] == "True",
        timeout=90,
        what="the live component reconciled",
    )
    return preview


async def test_a_compound_dry_run_previews_its_components_recursively_and_reaches_nothing_real(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    preview = await install(platform, git_remote, tmp_path)
    committed = head(git_remote)
    live_db = await get(platform, "database", "shop-db")

    await platform.apply(dry_run("shop-large", "golden-path", "shop", {"size": "large"}))
    done = await completed(platform, "shop-large")
    assert condition(done, "Completed")["reason"] == "SummaryWritten"
    assert condition(done, "ComponentsSucceeded")["status"] == "True"
    assert condition(done, "ComponentsSucceeded")["reason"] == "AllComponentsSucceeded"
    [db] = done["status"]["components"]
    assert {k: db[k] for k in ("promise", "request", "namespace", "phase")} == {
        "promise": "database",
        "request": "shop-db",
        "namespace": "default",
        "phase": "Succeeded",
    }
    # The component DryRun is an object of its own, labelled with its parent, with its own component.
    child = await get(platform, "dryrun", db["dryRun"])
    assert child["metadata"]["labels"]["kratix.io/dry-run-parent"] == "shop-large"
    assert child["spec"]["resource"] == {"size": "large"}
    [backup] = child["status"]["components"]
    assert (backup["promise"], backup["request"], backup["phase"]) == ("backup", "shop-db-backup", "Succeeded")

    summary = summary_of(preview)
    assert "## Compound request: `golden-path` / `shop`" in summary
    assert "## Component request: `database` / `shop-db`" in summary
    assert "+  size: large" in summary and "-  size: small" in summary
    # The Backup has no live request: its file is added. Components' summaries have names of their own.
    assert "## ➕ Added: `cron.yaml`" in summary
    assert [f for f in remote_files(preview) if f.endswith(f"kratix-dry-run-summary-{db['dryRun']}.md")]

    # Nothing real: the real remote, the live component, and no Backup request created.
    assert head(git_remote) == committed
    assert (await get(platform, "database", "shop-db"))["spec"] == live_db["spec"] == {"size": "small"}
    assert await platform.list("backup") == []

    # Deleting the compound DryRun deletes its components and everything they wrote.
    assert await platform.wait_deleted(await platform.delete("dryrun", "shop-large"), timeout=120)
    for name in (db["dryRun"], backup["dryRun"]):
        with pytest.raises(NotFound):
            await platform.get("dryrun", name)
    assert not [f for f in remote_files(preview) if "kratix-dry-run" in f]


async def test_ktx_diff_of_a_compound_request_includes_its_components_and_a_refused_one_fails(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    await install(platform, git_remote, tmp_path)
    [diff] = await platform.diff(resource("GoldenPath", "shop", {"size": "large"}), 180)
    assert [(f["path"], f["change"], f["destinations"]) for f in diff["files"]] == [
        ("database.yaml", "modified", ["platform"])
    ]
    [db] = diff["components"]
    assert db["request"] == {"kind": "Database", "name": "shop-db", "namespace": "default", "promise": "database"}
    assert db["failed"] is None
    assert [(f["path"], f["change"], f["destinations"]) for f in db["files"]] == [("db.yaml", "modified", ["worker-1"])]
    assert "-size: small\n+size: large" in db["files"][0]["diff"]
    [backup] = db["components"]
    assert [(f["path"], f["change"], f["destinations"]) for f in backup["files"]] == [("cron.yaml", "added", [])]
    await eventually(lambda: platform.list("dryrun"), lambda items: items == [], what="the diff's DryRuns deleted")

    # A component request its Promise's API refuses fails that component, not the parent's own diff.
    [refused] = await platform.diff(resource("GoldenPath", "shop", {"size": "huge"}), 180)
    assert refused["failed"] is None and refused["files"]
    [bad] = refused["components"]
    assert "spec.size" in bad["failed"]["message"]
    assert bad["files"] == []

    # As a DryRun, the refused component is listed Failed and ComponentsSucceeded says so; Completed stays True.
    await platform.apply(dry_run("shop-huge", "golden-path", "shop", {"size": "huge"}))
    done = await completed(platform, "shop-huge")
    assert condition(done, "Completed")["status"] == "True"
    gate = condition(done, "ComponentsSucceeded")
    assert (gate["status"], gate["reason"]) == ("False", "ComponentDryRunFailed")
    assert gate["message"] == "Preview is incomplete; these components failed: database/shop-db"
    [failed] = done["status"]["components"]
    assert failed["phase"] == "Failed" and "spec.size" in failed["message"]
