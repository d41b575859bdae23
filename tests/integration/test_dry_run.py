"""Kratix's DryRun on real parts (Temporal dev server, podman, git remotes): Kratix's system test 1.5, the summary
against a live request, and each thing a dry run must not reach: a real Destination's remote, an off-platform
action's server, the live request's status and resourceVersion, the Promise's status."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from domain.errors import Conflict, InvalidDocument, NotFound
from service.platform import Platform
from tests.conftest import push_by_hand, read_remote, remote_files
from tests.integration.test_actions import SLACK_TOKEN, secret
from tests.integration.test_destinations import destination, git_store, ready
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource
from tests.servers.saas import FakeSlack

KRATIX = "platform.kratix.io/v1alpha1"
DRY_RUN_LABELS = {"kratix.io/dry-run": "true"}


def dry_run(name: str, promise_name: str, live: str, spec: dict[str, Any], namespace: str = "default") -> dict:
    return {
        "apiVersion": KRATIX,
        "kind": "DryRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"promiseRef": {"name": promise_name}, "resourceRequestRef": {"name": live}, "resource": spec},
    }


def bare_remote(tmp_path: Path, name: str) -> Path:
    remote = tmp_path / f"{name}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    push_by_hand(remote, tmp_path / f"{name}-seed", "README.md", f"{name}\n", "init")
    return remote


def summary_of(remote: Path) -> str:
    [path] = [f for f in remote_files(remote) if f.endswith("/kratix-dry-run-summary.md")]
    return read_remote(remote, path)


def head(remote: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), "rev-parse", "main"], check=True, capture_output=True, text=True
    ).stdout.strip()


async def completed(platform: Platform, name: str) -> dict[str, Any]:
    return await eventually(
        lambda: get(platform, "dryrun", name),
        lambda o: bool(condition(o, "Completed")),
        timeout=120,
        what=f"DryRun {name} Completed",
    )


async def test_kratix_system_test_1_5_dry_run_feature_flag(platform: Platform, tmp_path: Path, pipeline_images) -> None:
    """dry_run_feature_flag_test.go: a dry-run Destination, a Promise whose pipeline writes a ConfigMap, a DryRun
    against a request that does not exist; Completed=True, and everything it wrote is on the dry-run Destination."""
    preview = bare_remote(tmp_path, "preview")
    await platform.apply(git_store(preview, "preview"))
    await platform.apply(destination("dry-run-flag-test", DRY_RUN_LABELS, store="preview"))
    await ready(platform, "dry-run-flag-test")
    files = {
        "cm.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "{name}"},
            "data": {"value": "{spec[value]}", "dryRun": "{env[KRATIX_DRY_RUN]}"},
        }
    }
    await platform.apply(promise("dryrunflag", "DryRunFlag", configure=[pipeline("write", FILES=files)]))
    await platform.wait_condition("promise", "dryrunflag", "default", "Available", timeout=60)

    await platform.apply(dry_run("flag-preview", "dryrunflag", "does-not-exist", {"value": "preview"}))
    obj = await completed(platform, "flag-preview")
    done = condition(obj, "Completed")
    assert (done["status"], done["reason"]) == ("True", "SummaryWritten")
    assert done["message"] == "Dry run completed; summary written to output repository"

    summary = summary_of(preview)
    assert summary.startswith(
        "# Kratix Dry Run Summary\n\n## Pipeline: `write`\n\n**1 added · 0 modified · 0 removed**"
    )
    # The container saw KRATIX_DRY_RUN=true and the live request's name, with the proposed spec.
    assert "## ➕ Added: `cm.yaml`" in summary and "dryRun: 'true'" in summary and "name: does-not-exist" in summary
    written = [f for f in remote_files(preview) if f.endswith("/cm.yaml")]
    assert len(written) == 1 and "/dryrunflag/kratix-dry-run-flag-preview-" in written[0]
    assert obj["_ktx"]["dryRun"]["files"][0]["change"] == "added"
    assert await platform.list("dryruns", namespace="default") and not await platform.list("dryruns", namespace="x")

    # Applied again unchanged, it runs no more; changed, it is refused; deleted, what it wrote goes.
    assert (
        await platform.apply(dry_run("flag-preview", "dryrunflag", "does-not-exist", {"value": "preview"}))
    ).action == "unchanged"
    with pytest.raises(Conflict):
        await platform.apply(dry_run("flag-preview", "dryrunflag", "does-not-exist", {"value": "other"}))
    with pytest.raises(Conflict):  # nor is it labelled (a label would reach no workflow of its own)
        await platform.label("dryrun", "flag-preview", set={"team": "a"})
    await platform.wait_deleted(await platform.delete("dryrun", "flag-preview"), timeout=60)
    assert not [f for f in remote_files(preview) if "kratix-dry-run" in f]
    with pytest.raises(NotFound):
        await platform.get("dryrun", "flag-preview")


async def test_a_dry_run_diffs_against_the_live_request_and_reaches_nothing_real(
    platform_factory, tmp_path: Path, pipeline_images
) -> None:
    real, preview = bare_remote(tmp_path, "real"), bare_remote(tmp_path, "preview")
    with FakeSlack(SLACK_TOKEN) as slack:
        platform = await platform_factory(settings={"slack_api_url": slack.api_url})
        await platform.apply(git_store(real, "real"))
        await platform.apply(git_store(preview, "preview"))
        await platform.apply(destination("dev", store="real"))
        await platform.apply(secret("slack", token=SLACK_TOKEN))
        files = {
            "cm.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}, "data": {"size": "{spec[size]}"}},
            "team.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}-team"}, "data": {"team": "{spec[team]}"}},
        }
        announce = {
            "apiVersion": KRATIX,
            "kind": "Pipeline",
            "metadata": {"name": "announce"},
            "spec": {
                "actions": [
                    {
                        "name": "hello",
                        "slack": {"secretRef": {"name": "slack"}, "channel": "#payments", "text": "${spec.size}"},
                    }
                ]
            },
        }
        await platform.apply(promise("app", "App", configure=[pipeline("render", FILES=files), announce]))
        await platform.wait_condition("promise", "app", "default", "Available", timeout=60)
        await platform.apply(resource("App", "shop", {"size": "small", "team": "payments"}))
        await platform.wait_condition("app", "shop", "default", "Reconciled", timeout=120)
        sent = len(slack.messages())
        assert sent == 1

        # Real output never goes to a dry-run Destination, even one every selector matches.
        await platform.apply(destination("preview", DRY_RUN_LABELS, store="preview"))
        await ready(platform, "preview")
        live = await get(platform, "app", "shop")
        promise_before = await get(platform, "promise", "app")
        real_head = head(real)

        await platform.apply(dry_run("bigger", "app", "shop", {"size": "large", "team": "payments"}))
        obj = await completed(platform, "bigger")
        assert condition(obj, "Completed")["status"] == "True"

        summary = summary_of(preview)
        assert "## Pipeline: `render`\n\n**0 added · 1 modified · 0 removed**" in summary
        assert "--- a/cm.yaml\n+++ b/cm.yaml\n" in summary and "-  size: small\n+  size: large\n" in summary
        assert "team.yaml" not in summary  # unchanged files are not listed
        assert "- `announce`: hello (slack)" in summary  # would run, did not
        assert obj["_ktx"]["dryRun"]["wouldRun"] == [{"pipeline": "announce", "name": "hello", "provider": "slack"}]

        # Nothing reached: the real remote, Slack, the live request, the Promise.
        assert head(real) == real_head
        assert len(slack.messages()) == sent
        after = await get(platform, "app", "shop")
        assert after["_ktx"]["resourceVersion"] == live["_ktx"]["resourceVersion"]
        assert after["status"] == live["status"] and after["spec"] == {"size": "small", "team": "payments"}
        assert (await get(platform, "promise", "app"))["status"] == promise_before["status"]
        assert not [f for f in remote_files(preview) if "/shop/" in f]

        # The live request reconciles again: its output stays off the dry-run Destination.
        await platform.reconcile("app", "shop")
        await eventually(
            lambda: get(platform, "app", "shop"),
            lambda o: (
                o["_ktx"]["resourceVersion"] != live["_ktx"]["resourceVersion"]
                and condition(o, "Reconciled").get("status") == "True"
            ),
            what="shop reconciled again",
        )
        assert not [f for f in remote_files(preview) if "/default/app/shop/" in f]

        # ktx diff of a request, then of a changed Promise: each bound request through the changed pipelines.
        [request_diff] = await platform.diff(resource("App", "shop", {"size": "large", "team": "payments"}), 120)
        assert [(f["pipeline"], f["path"], f["change"], f["destinations"]) for f in request_diff["files"]] == [
            ("render", "cm.yaml", "modified", ["dev"])
        ]
        assert "-  size: small\n+  size: large\n" in request_diff["files"][0]["diff"]
        await platform.apply(resource("App", "cart", {"size": "small", "team": "web"}))
        await platform.wait_condition("app", "cart", "default", "Reconciled", timeout=120)
        files["extra.yaml"] = {"kind": "ConfigMap", "metadata": {"name": "{name}-extra"}}
        changed = promise("app", "App", configure=[pipeline("render", FILES=files)])
        diffs = await platform.diff(changed, 120)
        assert [d["request"]["name"] for d in diffs] == ["cart", "shop"]
        assert all([(f["path"], f["change"]) for f in d["files"]] == [("extra.yaml", "added")] for d in diffs)
        assert [d["request"]["name"] for d in await platform.diff(changed, 120, limit=1)] == ["cart"]
        assert len(slack.messages()) == sent + 1  # cart's own run announced; no diff did
        # Each diff's DryRun goes, and with it anything it wrote to the dry-run Destination.
        await eventually(
            lambda: platform.list("dryruns"),
            lambda found: [d["metadata"]["name"] for d in found] == ["bigger"],
            what="no diff's DryRun left",
        )
        assert not [f for f in remote_files(preview) if "/ktx-diff-" in f or "kratix-dry-run-ktx-diff" in f]


async def test_a_failing_pipeline_fails_the_dry_run_and_bad_dry_runs_are_refused(
    platform: Platform, tmp_path: Path, pipeline_images
) -> None:
    preview = bare_remote(tmp_path, "preview")
    await platform.apply(git_store(preview, "preview"))
    await platform.apply(destination("preview", DRY_RUN_LABELS, store="preview"))
    await platform.apply(
        promise(
            "flaky",
            "Flaky",
            configure=[pipeline("boom", backoff_limit=0, FAIL="3")],
            properties={"size": {"type": "string"}},
        )
    )
    await platform.wait_condition("promise", "flaky", "default", "Available", timeout=60)
    await platform.apply(dry_run("fails", "flaky", "x", {"size": "s"}))
    obj = await completed(platform, "fails")
    done = condition(obj, "Completed")
    assert (done["status"], done["reason"]) == ("False", "PipelineFailed")
    assert not [f for f in remote_files(preview) if "kratix-dry-run" in f]

    with pytest.raises(NotFound):
        await platform.apply(dry_run("nope", "no-such-promise", "x", {}))
    with pytest.raises(InvalidDocument) as refused:
        await platform.apply(dry_run("typed", "flaky", "x", {"size": 3}))
    assert refused.value.errors[0].field == "spec.resource.size"
    bad = dry_run("Bad_Name", "flaky", "x", {})
    with pytest.raises(InvalidDocument):
        await platform.apply(bad)


async def test_without_a_dry_run_destination_it_waits_and_diff_needs_none(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await ready(platform, "dev")  # its canary files committed, before the remote's head is taken
    files = {"cm.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}, "data": {"v": "{spec[v]}"}}}
    await platform.apply(promise("waits", "Waits", configure=[pipeline("render", FILES=files)]))
    await platform.wait_condition("promise", "waits", "default", "Available", timeout=60)
    committed = head(git_remote)
    # No live request: every file is added, and nothing goes to the only (real) Destination.
    [diff] = await platform.diff(resource("Waits", "new-one", {"v": "1"}), 120)
    assert [(f["path"], f["change"], f["destinations"]) for f in diff["files"]] == [("cm.yaml", "added", [])]
    await platform.apply(dry_run("pending", "waits", "new-one", {"v": "1"}))
    waiting = await eventually(
        lambda: get(platform, "dryrun", "pending"),
        lambda o: "waiting for a Destination" in o["status"].get("message", ""),
        what="the DryRun waiting for a dry-run Destination",
    )
    assert not condition(waiting, "Completed") and head(git_remote) == committed
    preview = bare_remote(tmp_path, "preview")
    await platform.apply(git_store(preview, "preview"))
    await platform.apply(destination("preview", DRY_RUN_LABELS, store="preview"))
    done = await completed(platform, "pending")
    assert condition(done, "Completed")["reason"] == "SummaryWritten" and "message" not in done["status"]
    assert "**1 added · 0 modified · 0 removed**" in summary_of(preview)
    assert head(git_remote) == committed
