"""Two teams on one Destination: team A's pipeline cannot write the state store's bookkeeping, and team A's delete
removes A's files only, never team B's, a third resource's or the repository's own.

Real parts throughout: a real Git remote (or the S3 server), Temporal, podman running the `behave` image, which
writes whatever its request's `spec.files` says (SPEC_FILES), so each request carries its own forgery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from service.platform import Platform
from domain.layout import aggregate_index_path, canary_files
from tests.conftest import push_by_hand, read_remote, remote_files
from tests.integration.test_destinations import destination, git_store, ready
from tests.integration.test_state_store_credentials import bucket_store, secret
from tests.kratix_documents import eventually, get, phases, pipeline, pipeline_entry, promise, resource
from tests.servers.s3_server import WRITER, objects

README = "state store\n"  # what the git_remote fixture seeds at the repository's root


def forging_promise(name: str, kind: str, selectors: dict[str, str] | None = None) -> dict[str, Any]:
    """Team A: its pipeline writes whatever the request asks for."""
    return promise(name, kind, configure=[pipeline("forge", backoff_limit=0, SPEC_FILES="files")], selectors=selectors)


def honest_promise(selectors: dict[str, str] | None = None) -> dict[str, Any]:
    """Team B (and the third resource): one ConfigMap named after the request."""
    return promise(
        "beta",
        "Beta",
        selectors=selectors,
        configure=[
            pipeline("honest", FILES={"beta-{name}.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}})
        ],
    )


def configmap(name: str) -> str:
    return f"kind: ConfigMap\nmetadata:\n  name: {name}\n"


async def reconciled(platform: Platform, kind: str, name: str) -> None:
    await platform.wait_condition(kind, name, "default", "Reconciled", timeout=120)


async def refused(platform: Platform, files: dict[str, str], reason: str) -> None:
    """Team A's request asks for `files`; its run fails, saying why, and nothing it asked for is written."""
    await platform.apply(resource("Alpha", "a", {"files": files}))
    obj = await eventually(
        lambda: get(platform, "alpha", "a"),
        lambda o: phases(o).get("forge") == "Failed" and reason in pipeline_entry(o, "forge")["message"],
        timeout=120,
        what=f"team A's run refused: {reason}",
    )
    assert "may not write" in pipeline_entry(obj, "forge")["message"] or "control character" in reason


def ledgers(paths: list[str], prefix: str) -> dict[str, str]:
    """{team: its state file} from a listing of the store."""
    found = {}
    for path in paths:
        if path.startswith(f"{prefix}.kratix/"):
            found["a" if "alpha-a" in path else "b" if "beta-bee" in path else "third"] = path
    return found


async def two_teams_on_a_flat_destination(
    platform: Platform, store: dict[str, Any], store_kind: str, listing: Callable[[], list[str]]
) -> dict[str, str]:
    """Team B's `bee`, a third resource and team A's `a` placed on Destination `flat` (filepath mode none)."""
    await platform.apply(store)
    await platform.apply(
        destination("flat", kind=store_kind, store=store["metadata"]["name"], filepath={"mode": "none"})
    )
    await ready(platform, "flat")
    await platform.apply(honest_promise())
    await platform.apply(forging_promise("alpha", "Alpha"))
    for name in ("beta", "alpha"):
        await platform.wait_condition("promise", name, "default", "Available", timeout=60)
    for name in ("bee", "third"):
        await platform.apply(resource("Beta", name))
        await reconciled(platform, "beta", name)
    await platform.apply(resource("Alpha", "a", {"files": {"alpha-a.yaml": configmap("a")}}))
    await reconciled(platform, "alpha", "a")
    found = ledgers(listing(), "flat/")
    assert sorted(found) == ["a", "b", "third"], found
    return found


def forged_ledger(own: list[str], victims: list[str]) -> str:
    return yaml.safe_dump({"files": own + victims})


# Each a path team A's output may not hold, and what its refusal says. `{a}`/`{b}`: A's and B's state file names.
FORGERIES = {
    ".kratix/{a}": ".kratix/ holds the state store's own records",  # its own state file, listing others' files
    ".kratix/{b}": ".kratix/ holds the state store's own records",  # team B's: B's next write or delete would obey it
    "sub/.kratix/{a}": ".kratix/ holds",  # a Destination at flat/sub would read it
    ".ktx/aggregated/flat/aggregated.yaml.index": ".ktx/ holds",
    ".git/config": ".git/ holds",
    "kratix-canary-configmap.yaml": "kratix-canary-configmap.yaml is the Destination's canary file",
    "evil\n12 wp other.yaml": "has a control character in its name",  # an extra line in a line-based record
}


async def test_a_pipeline_cannot_forge_bookkeeping_and_a_delete_removes_only_its_own_files(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    found = await two_teams_on_a_flat_destination(
        platform, git_store(git_remote), "GitStateStore", lambda: remote_files(git_remote)
    )
    before = {path: read_remote(git_remote, path) for path in remote_files(git_remote) if path != found["a"]}
    victims = [
        "README.md",
        "../README.md",
        "flat/../README.md",
        "/README.md",
        "flat/beta-bee.yaml",
        "flat/beta-third.yaml",
        found["b"],
        found["third"],
        "flat/kratix-canary-configmap.yaml",
        ".git/config",
    ]
    names = {"a": found["a"].rsplit("/", 1)[1], "b": found["b"].rsplit("/", 1)[1]}
    for path, reason in FORGERIES.items():
        await refused(
            platform,
            {"alpha-a.yaml": configmap("a"), path.format(**names): forged_ledger(["flat/alpha-a.yaml"], victims)},
            reason,
        )
        # A refused run writes nothing: every other file is as it was, A's state file still lists only A's file.
        assert {p: read_remote(git_remote, p) for p in remote_files(git_remote) if p != found["a"]} == before, path
        assert read_remote(git_remote, found["a"]) == "files:\n- flat/alpha-a.yaml\n"

    assert await platform.wait_deleted(await platform.delete("alpha", "a"), timeout=60)
    left = remote_files(git_remote)
    assert "flat/alpha-a.yaml" not in left and found["a"] not in left
    assert {p: read_remote(git_remote, p) for p in left} == {
        p: c for p, c in before.items() if p != "flat/alpha-a.yaml"
    }
    assert read_remote(git_remote, "README.md") == README
    # Team B's state file was never touched: B's delete removes B's file, and the third resource's stays.
    assert await platform.wait_deleted(await platform.delete("beta", "bee"), timeout=60)
    left = remote_files(git_remote)
    assert "flat/beta-bee.yaml" not in left and "flat/beta-third.yaml" in left and "README.md" in left


async def test_a_state_file_forged_in_the_repository_still_reaches_only_its_own_files(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    """A state file forged before pipelines were refused `.kratix/`, or edited by hand: team A's delete reads it,
    and removes only what lies under A's Destination, is not bookkeeping, and no other placement lists."""
    found = await two_teams_on_a_flat_destination(
        platform, git_store(git_remote), "GitStateStore", lambda: remote_files(git_remote)
    )
    push_by_hand(git_remote, tmp_path / "other-dest", "elsewhere.yaml", configmap("elsewhere"), "a file outside flat/")
    before = {path: read_remote(git_remote, path) for path in remote_files(git_remote) if path != found["a"]}
    victims = [
        "README.md",
        "../README.md",
        "flat/../README.md",
        "/README.md",
        "elsewhere.yaml",
        "flat/beta-bee.yaml",
        "flat/beta-third.yaml",
        found["b"],
        found["third"],
        "flat/kratix-canary-namespace.yaml",
        ".git/config",
        aggregate_index_path("flat/aggregated.yaml"),
        "./flat/beta-bee.yaml",
        "flat//beta-bee.yaml",
    ]
    push_by_hand(git_remote, tmp_path / "forger", found["a"], forged_ledger(["flat/alpha-a.yaml"], victims), "forged")

    assert await platform.wait_deleted(await platform.delete("alpha", "a"), timeout=60)
    left = remote_files(git_remote)
    assert "flat/alpha-a.yaml" not in left and found["a"] not in left
    assert {p: read_remote(git_remote, p) for p in left} == {
        p: c for p, c in before.items() if p != "flat/alpha-a.yaml"
    }


async def test_aggregated_content_cannot_claim_another_teams_block(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """aggregatedYAML: team A's content imitates separators and Kratix-era source markers naming B's block, and a
    second Destination at the store's root (filepath mode none) would let A's output land on the aggregate's index."""
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("agg", {"mode": "agg"}, filepath={"mode": "aggregatedYAML"}))
    await platform.apply(destination("root", {"mode": "root"}, path=".", filepath={"mode": "none"}))
    for name in ("agg", "root"):
        await ready(platform, name)
    await platform.apply(honest_promise({"mode": "agg"}))
    await platform.apply(forging_promise("alpha", "Alpha", {"mode": "agg"}))
    await platform.apply(forging_promise("gamma", "Gamma", {"mode": "root"}))
    for name in ("beta", "alpha", "gamma"):
        await platform.wait_condition("promise", name, "default", "Available", timeout=60)
    await platform.apply(resource("Beta", "bee"))
    await reconciled(platform, "beta", "bee")
    bee = read_remote(git_remote, "agg/aggregated.yaml")
    index_path = aggregate_index_path("agg/aggregated.yaml")
    index = read_remote(git_remote, index_path)
    owner = index.split()[1]
    forged = (
        f"{configmap('a')}# ktx.io/source: {owner} beta-bee.yaml\n---\n{configmap('smuggled')}"
        f"\n---\n# ktx.io/source: {owner} beta-bee.yaml\n{configmap('bee-replaced')}"
    )
    await platform.apply(resource("Alpha", "a", {"files": {"a.yaml": forged}}))
    await reconciled(platform, "alpha", "a")
    assert read_remote(git_remote, "agg/aggregated.yaml") in (f"{forged}\n---\n{bee}", f"{bee}\n---\n{forged}")

    # Through the root Destination, team C's output would land on the index, or write an index line by its name.
    for path, reason in ((index_path, ".ktx/ holds"), (f"x\n{len(bee)} {owner} beta-bee.yaml", "control character")):
        await platform.apply(resource("Gamma", "c", {"files": {path: f"{len(forged)} {owner} beta-bee.yaml\n"}}))
        obj = await eventually(
            lambda: get(platform, "gamma", "c"),
            lambda o: phases(o).get("forge") == "Failed" and reason in pipeline_entry(o, "forge")["message"],
            timeout=120,
            what=f"team C's run refused: {reason}",
        )
        assert phases(obj)["forge"] == "Failed"
    assert read_remote(git_remote, index_path).count(owner) == 1

    assert await platform.wait_deleted(await platform.delete("alpha", "a"), timeout=60)
    assert read_remote(git_remote, "agg/aggregated.yaml") == bee
    assert await platform.wait_deleted(await platform.delete("beta", "bee"), timeout=60)
    left = remote_files(git_remote)
    assert "agg/aggregated.yaml" not in left and index_path not in left
    assert sorted(p for p in left if p.startswith("agg/")) == sorted(canary_files("agg", "aggregatedYAML"))


async def test_a_bucket_destination_keeps_other_teams_objects_through_a_forged_delete(
    platform: Platform, s3_server, s3_bucket: str, pipeline_images
) -> None:
    """The same two teams on a BucketStateStore: its writer lists and reads state files its own way."""
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="README.md", Body=README.encode())
    client.put_object(Bucket=s3_bucket, Key="fleet/README.md", Body=README.encode())
    await platform.apply(secret("s3-creds", accessKeyID=WRITER[0], secretAccessKey=WRITER[1]))
    store = bucket_store(s3_server.endpoint, s3_bucket)

    def listing() -> list[str]:
        return [key.removeprefix("fleet/") for key in objects(client, s3_bucket, "fleet/")]

    found = await two_teams_on_a_flat_destination(platform, store, "BucketStateStore", listing)
    names = {"a": found["a"].rsplit("/", 1)[1], "b": found["b"].rsplit("/", 1)[1]}
    victims = [
        "README.md",
        "../README.md",
        "flat/beta-bee.yaml",
        "flat/beta-third.yaml",
        found["b"],
        found["third"],
        "flat/kratix-canary-configmap.yaml",
    ]
    await refused(platform, {".kratix/{b}".format(**names): forged_ledger([], victims)}, ".kratix/ holds")
    # And one forged in the bucket itself.
    client.put_object(
        Bucket=s3_bucket, Key=f"fleet/{found['a']}", Body=forged_ledger(["flat/alpha-a.yaml"], victims).encode()
    )
    before = {k: v for k, v in objects(client, s3_bucket).items() if k != f"fleet/{found['a']}"}

    assert await platform.wait_deleted(await platform.delete("alpha", "a"), timeout=60)
    after = objects(client, s3_bucket)
    assert "fleet/flat/alpha-a.yaml" not in after and f"fleet/{found['a']}" not in after
    assert after == {k: v for k, v in before.items() if k != "fleet/flat/alpha-a.yaml"}


async def test_a_name_another_placement_owns_is_not_written_over_until_it_lets_go(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """In the shared flat directory the first placement to write a name owns it: team A's output of B's file name is
    its write's error, shown in status, and B's bytes stay; once B lets go, A's retried write lands."""
    await two_teams_on_a_flat_destination(
        platform, git_store(git_remote), "GitStateStore", lambda: remote_files(git_remote)
    )
    owned = read_remote(git_remote, "flat/beta-bee.yaml")
    await platform.apply(
        resource("Alpha", "a", {"files": {"alpha-a.yaml": configmap("a"), "beta-bee.yaml": configmap("stolen")}})
    )
    obj = await eventually(
        lambda: get(platform, "alpha", "a"),
        lambda o: any(
            "beta-bee.yaml belongs to another placement" in (p.get("error") or "") for p in o["_ktx"]["placements"]
        ),
        timeout=120,
        what="team A's write refused for B's file name",
    )
    assert read_remote(git_remote, "flat/beta-bee.yaml") == owned
    assert read_remote(git_remote, "flat/alpha-a.yaml") == configmap("a"), "the rest of A's output is written"
    assert "flat/beta-bee.yaml" not in read_remote(git_remote, ledgers(remote_files(git_remote), "flat/")["a"])
    assert obj["_ktx"]["placements"]

    assert await platform.wait_deleted(await platform.delete("beta", "bee"), timeout=60)
    await eventually(
        lambda: (
            read_remote(git_remote, "flat/beta-bee.yaml") if "flat/beta-bee.yaml" in remote_files(git_remote) else ""
        ),
        lambda text: text == configmap("stolen"),
        timeout=120,
        what="A's retried write of the name B let go",
    )
