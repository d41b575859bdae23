"""resourceVersion, optimistic concurrency, deletionTimestamp and the API's change feed, on a real Temporal dev server
and worker: the versions come from the workflows, a stale one is refused by the workflow itself (so of two writers
only one wins), and the one feed sees each object created, changed and deleted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from domain.errors import StaleResourceVersion
from domain.kube.changes import Change, Gone
from domain.labels import PAUSED
from service.change_feed import ChangeFeed, Ended, Subscription
from service.platform import Platform
from tests.integration.test_api_auth import OTHER, OWN, PLATFORM_TOKEN, TEAM_TOKEN, as_, write_tokens
from tests.integration.test_health_metrics import api_for
from tests.kratix_documents import condition, eventually, git_store_and_destinations, promise, resource

KIND = "Gadget"


def version(obj: dict[str, Any]) -> int:
    return int(obj["_ktx"]["resourceVersion"])


async def drain(subscription: Subscription, into: list[Change]) -> list[Change]:
    """Whatever the feed has handed this watcher so far (never waits for more than a moment)."""
    try:
        while (change := await subscription.next(0.01)) is not None:
            into.append(change)
    except Ended:
        pass
    return into


def events_of(changes: list[Change], name: str) -> list[str]:
    return [c.type for c in changes if c.object.get("metadata", {}).get("name") == name and c.kind == KIND]


async def reconciled(platform: Platform, name: str) -> dict[str, Any]:
    return await eventually(
        lambda: platform.get(KIND, name),
        lambda o: condition(o, "Reconciled").get("status") == "True",
        what=f"{name} reconciled",
    )


@pytest.fixture
async def feed(platform: Platform):
    feed = ChangeFeed(platform, poll_interval_s=0.1)
    await feed.start()
    yield feed
    await feed.stop()


async def test_versions_grow_and_a_stale_one_is_refused_by_the_workflow(platform: Platform, git_remote: Path) -> None:
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    await platform.apply(promise("gadgets", KIND))
    await platform.wait_condition("promise", "gadgets", "default", "Available", timeout=90)
    await platform.apply(resource(KIND, "one", {"size": 1}))
    first = await reconciled(platform, "one")
    assert version(first) > 0
    assert version(await platform.get("promise", "gadgets")) > 0
    # Catalog kinds show their workflow's status beside its version.
    dev = await eventually(
        lambda: platform.get("destination", "dev"), lambda d: condition(d, "Ready").get("status") == "True"
    )
    assert version(dev) > 0
    store = await platform.get("gitstatestore", "default")
    assert version(store) > 0 and store["status"]["status"] == "Ready"
    # A version is a precondition, never part of the stored document.
    read = {**resource(KIND, "one", {"size": 2}), "metadata": {**first["metadata"]}}
    read["metadata"]["resourceVersion"] = first["_ktx"]["resourceVersion"]
    assert (await platform.apply(read)).action == "configured"
    second = await platform.get(KIND, "one")
    assert version(second) > version(first)
    assert "resourceVersion" not in second["metadata"]
    with pytest.raises(StaleResourceVersion):
        await platform.apply(read)  # the version it was read at is gone
    assert (await platform.get(KIND, "one"))["spec"] == {"size": 2}

    # Two writers who read the same version: the workflow's validator lets exactly one through.
    current = await platform.get(KIND, "one")
    writes = []
    for size in (3, 4):
        doc = {**resource(KIND, "one", {"size": size}), "metadata": dict(current["metadata"])}
        doc["metadata"]["resourceVersion"] = current["_ktx"]["resourceVersion"]
        writes.append(platform.apply(doc))
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert sum(isinstance(r, StaleResourceVersion) for r in results) == 1, results
    # A precondition on an object that does not exist is not a create.
    missing = resource(KIND, "never")
    missing["metadata"]["resourceVersion"] = "12345"
    with pytest.raises(Exception, match="not found"):
        await platform.apply(missing)


async def test_the_feed_sees_an_object_added_modified_terminating_and_deleted(
    platform: Platform, feed: ChangeFeed, git_remote: Path
) -> None:
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    await platform.apply(promise("gadgets", KIND))
    await platform.wait_condition("promise", "gadgets", "default", "Available", timeout=90)
    watcher = feed.subscribe(None)
    seen: list[Change] = []
    await platform.apply(resource(KIND, "two"))
    await reconciled(platform, "two")
    await eventually(lambda: drain(watcher, seen), lambda c: "ADDED" in events_of(c, "two"), what="ADDED")
    await platform.label(KIND, "two", set={"team": "blue"})
    await eventually(lambda: drain(watcher, seen), lambda c: "MODIFIED" in events_of(c, "two"), what="MODIFIED")
    assert events_of(seen, "two")[0] == "ADDED"
    assert seen[-1].object["metadata"]["labels"]["team"] == "blue"

    # Paused, a delete waits: the object shows the time its delete was asked for until it is unpaused.
    await platform.label(KIND, "two", set={PAUSED: "true"})
    await platform.delete(KIND, "two")
    deleting = await platform.get(KIND, "two")
    assert deleting["metadata"]["deletionTimestamp"]
    await eventually(
        lambda: drain(watcher, seen),
        lambda c: any(x.object["metadata"].get("deletionTimestamp") for x in c if x.kind == KIND),
        what="a change showing the deletionTimestamp",
    )
    await platform.label(KIND, "two", remove=[PAUSED])
    await eventually(lambda: drain(watcher, seen), lambda c: "DELETED" in events_of(c, "two"), what="DELETED")
    deleted = [c for c in seen if c.type == "DELETED" and c.kind == KIND]
    assert deleted[0].object["metadata"]["name"] == "two"
    versions = [c.resource_version for c in seen if c.kind == KIND]
    assert versions == sorted(versions)

    # A watch resuming from a version it saw gets what came after; one from before the feed began is Gone.
    resumed = feed.subscribe(versions[0])
    assert [c.resource_version for c in await drain(resumed, []) if c.kind == KIND] == versions[1:]
    with pytest.raises(Gone):
        feed.subscribe(1)
    feed.unsubscribe(watcher)
    feed.unsubscribe(resumed)


async def test_a_watcher_too_far_behind_is_dropped_and_watchers_are_bounded(platform: Platform) -> None:
    feed = ChangeFeed(platform, poll_interval_s=0.1, queue_size=2, max_watchers=2)
    # The process's own follower (the overview's counts) takes none of the clients' slots.
    feed.subscribe(None, client=False)
    slow = feed.subscribe(None)
    feed.subscribe(None)
    with pytest.raises(Exception, match="at most 2 watches"):
        feed.subscribe(None)
    await feed.start()
    try:
        for name in ("a", "b", "c"):
            await platform.apply(
                {
                    "apiVersion": "platform.kratix.io/v1alpha1",
                    "kind": "Promise",
                    "metadata": {"name": name},
                    "spec": {},
                }
            )
        await eventually(lambda: feed.watchers, lambda n: n == 0, what="every watcher dropped, 2 changes behind")
        got = await drain(slow, [])
        assert len(got) == 2  # what it had queued, then the end
    finally:
        await feed.stop()


async def test_team_tokens_watch_only_their_namespaces(platform: Platform, tmp_path: Path, git_remote: Path) -> None:
    """Through the Kubernetes watch route of the app as deployed (a tokens file): a team's watch, in its namespace or
    across all, shows its own objects and their changes only; another team's namespace is refused."""
    for doc in [
        *git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}),
        promise("gadgets", KIND),
        resource(KIND, "mine", namespace=OWN),
        resource(KIND, "theirs", namespace=OTHER),
    ]:
        await platform.apply(doc)
    for namespace, name in ((OWN, "mine"), (OTHER, "theirs")):
        await eventually(lambda: platform.get(KIND, name, namespace), what=f"{name} published")
    tokens = write_tokens(tmp_path / "tokens.yaml")
    async with api_for(platform, tmp_path / "api", api_host="0.0.0.0", api_tokens_file=tokens) as (_, http):
        base = "/apis/test.ktx.io/v1"

        async def watched(path: str, token: str) -> tuple[int, list[dict[str, Any]]]:
            # The in-process transport hands the body over once the stream ends: a short timeoutSeconds ends it.
            response = await http.get(path, params={"watch": "true", "timeoutSeconds": "3"}, headers=as_(token))
            lines = response.text.splitlines() if response.status_code == 200 else []
            return response.status_code, [json.loads(line) for line in lines]

        for step, path in enumerate((f"{base}/namespaces/{OWN}/gadgets", f"{base}/gadgets")):
            watching = asyncio.create_task(watched(path, TEAM_TOKEN))
            await platform.label(KIND, "theirs", OTHER, set={"step": str(step)})
            await platform.label(KIND, "mine", OWN, set={"step": str(step)})
            code, events = await watching
            assert code == 200, events
            names = {(e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in events}
            assert names == {(OWN, "mine")}, events
            assert events[-1]["object"]["metadata"]["labels"]["step"] == str(step), events
        code, _ = await watched(f"{base}/namespaces/{OTHER}/gadgets", TEAM_TOKEN)
        assert code == 403
        code, events = await watched(f"{base}/gadgets", PLATFORM_TOKEN)
        assert code == 200
        assert {e["object"]["metadata"]["name"] for e in events} == {"mine", "theirs"}
