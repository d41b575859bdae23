"""Scheduling onto Destinations, as Kratix does it and where it hurts: unplaced groups land when a Destination
appears, relabels flag misplaced output instead of moving it, dependencies spread, readiness is a real write,
drift is repaired, cleanup removes what was placed, and a refused push shows in status until it succeeds."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from service.platform import Platform
from domain.layout import canary_files
from tests.conftest import read_remote, remote_commits, remote_files
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource, runs
from tests.servers.git_servers import GitDaemon, refuse_pushes

KRATIX = "platform.kratix.io/v1alpha1"


def git_store(remote: Path, name: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": KRATIX,
        "kind": "GitStateStore",
        "metadata": {"name": name},
        "spec": {"url": str(remote), "branch": "main", **spec},
    }


def destination(
    name: str, labels: dict[str, str] | None = None, store: str = "default", kind: str = "GitStateStore", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": KRATIX,
        "kind": "Destination",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"path": name, "stateStoreRef": {"kind": kind, "name": store}, **spec},
    }


def writes_configmap() -> dict[str, Any]:
    return pipeline("write", FILES={"cm.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}})


async def ready(platform: Platform, name: str) -> dict[str, Any]:
    return await eventually(
        lambda: platform.get("destination", name),
        lambda d: condition(d, "Ready").get("status") == "True",
        what=f"Destination {name} Ready",
    )


async def install(platform: Platform, git_remote: Path, name: str, kind: str, configure: dict[str, Any]) -> None:
    """A Git store, Destination `dev` (Ready) and an Available Promise whose one pipeline is `configure`."""
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await ready(platform, "dev")
    await platform.apply(promise(name, kind, configure=[configure]))
    await platform.wait_condition("promise", name, "default", "Available", timeout=60)


async def test_readiness_is_a_real_write_of_the_canary_files(platform: Platform, git_remote: Path) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev", {"env": "dev"}))
    dest = await ready(platform, "dev")
    assert condition(dest, "Ready")["reason"] == "TestDocumentsWritten"
    # The writer commits the canaries byte for byte as Kratix marshals them (pinned in the layout unit tests).
    for path, content in canary_files("dev").items():
        assert read_remote(git_remote, path) == content
    store = await eventually(
        lambda: platform.get("gitstatestore", "default"), lambda s: s["status"].get("status") == "Ready"
    )
    assert condition(store, "Ready")["message"] == "State store is ready"
    # Other filepath modes put both canaries directly under the Destination path; disabling them removes them.
    await platform.apply(destination("flat", filepath={"mode": "none"}))
    await ready(platform, "flat")
    assert "flat/kratix-canary-configmap.yaml" in remote_files(git_remote)
    await platform.apply(destination("dev", {"env": "dev"}, initWorkloads={"enabled": False}))
    await eventually(
        lambda: platform.get("destination", "dev"), lambda d: condition(d, "Ready").get("reason") == "DestinationReady"
    )
    assert not [f for f in remote_files(git_remote) if f.startswith("dev/")]


async def test_an_aggregated_destination_holds_exactly_what_kratix_writes(platform: Platform, git_remote: Path) -> None:
    """Kratix's aggregatedYAML: every WorkPlacement's files, WorkPlacements by name, joined by "\\n---\\n" as they
    are; nothing else under the Destination path (ktx's index of the blocks lives outside it)."""
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("agg", filepath={"mode": "aggregatedYAML"}))
    await ready(platform, "agg")
    await platform.apply(promise("app", "App", configure=[writes_configmap()]))
    await platform.wait_condition("promise", "app", "default", "Available", timeout=60)
    for name in ("two", "one"):
        await platform.apply(resource("App", name))
        await platform.wait_condition("app", name, "default", "Reconciled", timeout=60)
    one, two = ("kind: ConfigMap\nmetadata:\n  name: one\n", "kind: ConfigMap\nmetadata:\n  name: two\n")
    assert read_remote(git_remote, "agg/aggregated.yaml") == f"{one}\n---\n{two}"
    assert sorted(f for f in remote_files(git_remote) if f.startswith("agg/")) == [
        "agg/aggregated.yaml",
        "agg/kratix-canary-configmap.yaml",
        "agg/kratix-canary-namespace.yaml",
    ]
    # Kratix labels every request with its Promise and records the revision it was reconciled with.
    request = await platform.get("app", "one")
    assert request["metadata"]["labels"] == {"kratix.io/promise-name": "app"}
    assert (request["status"]["promiseVersion"], request["status"]["resourceBindingVersion"]) == ("not-set", "latest")

    await platform.delete("app", "one")
    await eventually(
        lambda: read_remote(git_remote, "agg/aggregated.yaml"),
        lambda text: text == two,
        what="the aggregate without one's block",
    )


async def test_a_store_that_cannot_be_written_makes_its_destinations_not_ready(
    platform: Platform, tmp_path: Path
) -> None:
    await platform.apply(git_store(tmp_path / "missing.git"))
    await platform.apply(destination("dev"))
    dest = await eventually(
        lambda: platform.get("destination", "dev"),
        lambda d: condition(d, "Ready").get("reason") == "StateStoreNotReady",
        what="not ready",
    )
    assert "GitStateStore/default" in condition(dest, "Ready")["message"]
    store = await platform.get("gitstatestore", "default")
    assert (
        store["status"]["status"] == "NotReady" and condition(store, "Ready")["reason"] == "ErrorValidatingPermissions"
    )
    # The repository appears: the store's retry finds it, and tells its Destination to check again.
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(tmp_path / "missing.git")], check=True)
    await ready(platform, "dev")


async def test_an_unplaced_group_waits_visibly_and_lands_when_a_destination_matches(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev", {"env": "dev"}))
    await platform.apply(promise("placed", "Placed", configure=[writes_configmap()], selectors={"env": "prod"}))
    await platform.wait_condition("promise", "placed", "default", "Available", timeout=60)
    await platform.apply(resource("Placed", "one"))
    waiting = await eventually(
        lambda: get(platform, "placed", "one"),
        lambda o: condition(o, "WorksSucceeded").get("reason") == "WorksPending",
        what="pending",
    )
    assert waiting["_ktx"]["pending"] == [{"pipeline": "write", "directory": ".", "selector": {"env": "prod"}}]
    assert not [f for f in remote_files(git_remote) if "placed" in f]
    # A relabelled Destination is a scheduling event: the waiting group lands there, without re-running the pipeline.
    await platform.apply(destination("dev", {"env": "prod"}))
    placed = await eventually(
        lambda: get(platform, "placed", "one"), lambda o: condition(o, "WorksSucceeded").get("status") == "True"
    )
    assert "name: one" in read_remote(git_remote, "dev/resources/default/placed/one/write/5058f/cm.yaml")
    assert runs(placed, "write") == 1
    [where] = placed["_ktx"]["placements"]
    assert (where["destination"], where["path"]) == ("dev", "dev/resources/default/placed/one/write/5058f") and where[
        "version_id"
    ]


async def test_relabels_flag_misplaced_output_and_dependencies_spread(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev", {"env": "dev"}))
    deps = promise("deps", selectors={"env": "dev"})
    deps["spec"]["dependencies"] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "deps-system"}}]
    await platform.apply(deps)
    await platform.apply(promise("sticky", "Sticky", configure=[writes_configmap()], selectors={"env": "dev"}))
    await platform.wait_condition("promise", "sticky", "default", "Available", timeout=60)
    await platform.apply(resource("Sticky", "one"))
    await eventually(
        lambda: get(platform, "sticky", "one"), lambda o: condition(o, "WorksSucceeded").get("status") == "True"
    )
    assert "deps-system" in read_remote(git_remote, "dev/dependencies/deps/5058f/static/deps-dependencies.yaml")
    # A second matching Destination: dependencies spread to it; the resource stays where it is (sticky).
    await platform.apply(destination("dev2", {"env": "dev"}))
    await eventually(
        lambda: _files(git_remote), lambda f: "dev2/dependencies/deps/5058f/static/deps-dependencies.yaml" in f
    )
    # The first Destination stops matching: its output is kept and flagged misplaced, not moved or deleted.
    await platform.apply(destination("dev", {"env": "staging"}))
    misplaced = await eventually(
        lambda: get(platform, "sticky", "one"),
        lambda o: condition(o, "WorksSucceeded").get("reason") == "DestinationSelectorMismatch",
    )
    assert [p["misplaced"] for p in misplaced["_ktx"]["placements"]] == [True]
    assert "dev/resources/default/sticky/one/write/5058f/cm.yaml" in remote_files(git_remote)
    assert not [f for f in remote_files(git_remote) if f.startswith("dev2/resources/default/sticky")]
    promise_obj = await eventually(
        lambda: get(platform, "promise", "deps"), lambda o: any(p["misplaced"] for p in o["_ktx"]["placements"])
    )
    assert {p["destination"]: p["misplaced"] for p in promise_obj["_ktx"]["placements"]} == {"dev": True, "dev2": False}


async def _files(remote: Path) -> list[str]:
    return remote_files(remote)


async def test_drift_is_repaired_by_a_destination_resync(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await platform.apply(promise("drift", "Drift", configure=[writes_configmap()]))
    await platform.wait_condition("promise", "drift", "default", "Available", timeout=60)
    for name in ("one", "two"):
        await platform.apply(resource("Drift", name))
    for name in ("one", "two"):
        await eventually(
            lambda: get(platform, "drift", name), lambda o: condition(o, "WorksSucceeded").get("status") == "True"
        )
    await ready(platform, "dev")
    # Someone deletes a resource's files and the canary by hand (a Kratix user would have lost them for good).
    clone = tmp_path / "vandal"
    subprocess.run(["git", "clone", "-q", str(git_remote), str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(
        [*git, "rm", "-q", "-r", "dev/resources/default/drift/one", "dev/resources/kratix-canary-configmap.yaml"],
        check=True,
    )
    subprocess.run([*git, "commit", "-q", "-m", "oops"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
    before = remote_commits(git_remote)
    await platform.reconcile("destination", "dev")
    await eventually(
        lambda: _files(git_remote),
        lambda f: (
            "dev/resources/default/drift/one/write/5058f/cm.yaml" in f
            and "dev/resources/kratix-canary-configmap.yaml" in f
        ),
        what="files restored",
    )
    assert remote_commits(git_remote) - before <= 3  # batched, and the untouched resource made no commit of its own
    assert runs(await get(platform, "drift", "one"), "write") == 1


async def test_deleting_a_destination_with_cleanup_all_removes_its_files(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("keep", {"env": "a"}))
    await platform.apply(destination("wipe", {"env": "b"}, cleanup="all"))
    deps = promise("spread")
    deps["spec"]["dependencies"] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spread"}}]
    await platform.apply(deps)
    await eventually(
        lambda: _files(git_remote),
        lambda f: (
            {
                "keep/dependencies/spread/5058f/static/spread-dependencies.yaml",
                "wipe/dependencies/spread/5058f/static/spread-dependencies.yaml",
            }
            <= set(f)
        ),
    )
    await ready(platform, "keep")
    await platform.delete("destination", "keep")  # cleanup: none (the default) leaves files in place
    await platform.delete("destination", "wipe")
    await eventually(
        lambda: _files(git_remote), lambda f: not [x for x in f if x.startswith("wipe/")], what="wipe/ emptied"
    )
    assert "keep/dependencies/spread/5058f/static/spread-dependencies.yaml" in remote_files(git_remote)
    obj = await eventually(lambda: get(platform, "promise", "spread"), lambda o: not o["_ktx"]["placements"])
    assert obj["_ktx"]["placements"] == []


async def test_a_refused_push_shows_in_status_and_is_retried_until_it_lands(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await ready(platform, "dev")
    await platform.apply(promise("guarded", "Guarded", configure=[writes_configmap()]))
    await platform.wait_condition("promise", "guarded", "default", "Available", timeout=60)
    refuse_pushes(git_remote, "policy: changes need review")
    await platform.apply(resource("Guarded", "one"))
    failing = await eventually(
        lambda: get(platform, "guarded", "one"),
        lambda o: condition(o, "WorksSucceeded").get("reason") == "WorksFailing",
        what="WorksFailing",
    )
    assert "policy: changes need review" in condition(failing, "WorksSucceeded")["message"]
    dest = await eventually(
        lambda: platform.get("destination", "dev"),
        lambda d: condition(d, "WritesSucceeded").get("status") == "False",
        what="Destination shows it",
    )
    assert "policy: changes need review" in condition(dest, "WritesSucceeded")["message"]
    (git_remote / "hooks" / "pre-receive").unlink()
    await eventually(
        lambda: get(platform, "guarded", "one"),
        lambda o: condition(o, "WorksSucceeded").get("status") == "True",
        what="delivered after the refusal is lifted",
    )
    assert "name: one" in read_remote(git_remote, "dev/resources/default/guarded/one/write/5058f/cm.yaml")
    await eventually(
        lambda: platform.get("destination", "dev"), lambda d: condition(d, "WritesSucceeded").get("status") == "True"
    )


async def test_an_unreachable_remote_shows_in_status_and_writes_converge_when_it_returns(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    daemon = GitDaemon(git_remote.parent)
    with daemon:
        await platform.apply(
            git_store(git_remote, name="remote") | {"spec": {"url": daemon.url(git_remote.name), "branch": "main"}}
        )
        await platform.apply(destination("dev", store="remote"))
        await ready(platform, "dev")
        await platform.apply(promise("outage", "Outage", configure=[writes_configmap()]))
        await platform.wait_condition("promise", "outage", "default", "Available", timeout=60)
    # The server is down: the pipeline's output is kept, and the write fails visibly.
    await platform.apply(resource("Outage", "one"))
    failing = await eventually(
        lambda: get(platform, "outage", "one"),
        lambda o: condition(o, "WorksSucceeded").get("reason") == "WorksFailing",
        what="WorksFailing",
    )
    assert "outage/one" not in str(remote_files(git_remote)) and failing["_ktx"]["schedule"]["deliveryRetryAt"]
    with GitDaemon(git_remote.parent, port=daemon.port):
        await eventually(
            lambda: get(platform, "outage", "one"),
            lambda o: condition(o, "WorksSucceeded").get("status") == "True",
            what="converged after the outage",
        )
    assert "name: one" in read_remote(git_remote, "dev/resources/default/outage/one/write/5058f/cm.yaml")
    assert runs(await get(platform, "outage", "one"), "write") == 1  # delivered again, not re-run


async def test_the_state_store_reconciliation_interval_restores_drift_on_its_own(
    platform_factory, git_remote: Path, tmp_path: Path
) -> None:
    platform = await platform_factory(state_store_reconciliation_interval_s=1)
    await platform.apply(git_store(git_remote))
    deps = promise("periodic")
    deps["spec"]["dependencies"] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "periodic"}}]
    await platform.apply(deps)
    await platform.apply(destination("dev"))
    path = "dev/dependencies/periodic/5058f/static/periodic-dependencies.yaml"
    await eventually(lambda: _files(git_remote), lambda f: path in f)
    clone = tmp_path / "editor"
    subprocess.run(["git", "clone", "-q", str(git_remote), str(clone)], check=True)
    (clone / path).write_text("edited: by hand\n")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-q", "-am", "hand edit"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
    await eventually(
        lambda: _files(git_remote), lambda f: "periodic" in read_remote(git_remote, path), what="edit undone"
    )
    dest = await eventually(lambda: platform.get("destination", "dev"), lambda d: "lastResyncTime" in d["status"])
    assert any(e["reason"] == "Resynced" for e in dest["_ktx"]["events"])
