"""`?watch=true` on the Kubernetes list routes: a stream of WatchEvent JSON lines (`{"type", "object"}`), from the
API process's one change feed (service/change_feed.py), never from a poll of its own.

As the apiserver: with no resourceVersion (or "0") the watch starts with an ADDED event for every object there is
now; from a resourceVersion it sends what changed after it, or 410 Expired if that is older than the feed holds;
`allowWatchBookmarks=true` adds BOOKMARK events carrying the newest version while nothing changes; `timeoutSeconds`
ends the stream; `sendInitialEvents=true` (the watch-list protocol) sends the current objects and then a BOOKMARK
annotated `k8s.io/initial-events-end`. Which objects a caller sees, and the selectors, are the list route's.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from api.kube.errors import KubeError, bad_request
from api.kube.registry import KubeResource
from domain.kube.changes import Change, Gone, parse_resource_version
from service.change_feed import ChangeFeed, Ended, TooManyWatchers
from service.derived_watches import DERIVED_KINDS, derived_watch, key_of

# The apiserver ends a watch after --min-request-timeout (1800 s) to 2x that; clients watch again from where they were.
MAX_TIMEOUT_S = 1800
# How long a quiet watch waits before a BOOKMARK (the apiserver sends one about every minute; sooner here, as they are
# cheap and let a resuming client skip more).
BOOKMARK_INTERVAL_S = 10.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

Convert = Callable[[dict[str, Any]], dict[str, Any]]
Matches = Callable[[dict[str, Any]], bool]


def feed_of(request: Request) -> ChangeFeed:
    return request.app.state.change_feed


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true")


def _timeout(request: Request) -> float:
    text = request.query_params.get("timeoutSeconds")
    if text is None or text == "":
        return MAX_TIMEOUT_S
    if len(text) > 10 or not text.isdigit():
        raise bad_request(f"invalid timeoutSeconds {text[:20]!r}: not a non-negative integer")
    return float(min(int(text), MAX_TIMEOUT_S)) or MAX_TIMEOUT_S


def carried_by_feed(resource: KubeResource) -> bool:
    """The kinds with a workflow of their own (the feed's); ResourceBindings and PromiseRevisions are derived from the
    changes of the workflows holding them (service/derived_watches.py); Secrets, HealthRecords and the derived views
    change without one, so their watch sends the initial objects and bookmarks only."""
    return resource.ktx_kind in (
        "Promise",
        "PromiseRelease",
        "Destination",
        "GitStateStore",
        "BucketStateStore",
        "RolloutPlan",
    ) or bool(resource.promise)


def _of_resource(change: Change, resource: KubeResource) -> bool:
    if resource.promise:  # a Promise's API: its requests carry the Promise and the API's kind
        return change.promise == resource.promise and change.kind == resource.kind
    return change.kind == resource.ktx_kind


def _event(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _bookmark(resource: KubeResource, version: int, initial_end: bool = False) -> bytes:
    metadata: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    return _event("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata})


def too_old(exc: Gone) -> KubeError:
    """apimachinery's NewResourceExpired: 410, reason Expired."""
    return KubeError("Expired", str(exc), {}, code=410)


async def watch(
    request: Request,
    resource: KubeResource,
    current: Callable[[], Awaitable[list[dict[str, Any]]]],
    convert: Convert,
    matches: Matches,
    render: Convert | None = None,
) -> StreamingResponse:
    """The watch response. `current()` lists the objects the caller may see now (Platform.get's shape); `convert`
    turns one into what the caller is shown, and `matches` says whether the caller sees that (namespace, access,
    selectors), as the list route does; `render`, if given, is what each event carries of it (a Table)."""
    rendered = render or (lambda obj: obj)
    feed = feed_of(request)
    try:
        since = parse_resource_version(request.query_params.get("resourceVersion"))
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    timeout = _timeout(request)
    bookmarks = _flag(request, "allowWatchBookmarks")
    list_first = since is None or _flag(request, "sendInitialEvents")
    watch_list = _flag(request, "sendInitialEvents")
    try:
        # Subscribed before the initial list is read, so nothing that changes while it is read is missed.
        subscription = feed.subscribe(since)
    except Gone as exc:
        raise too_old(exc) from exc
    except TooManyWatchers as exc:
        raise KubeError("TooManyRequests", str(exc), {"retryAfterSeconds": 1}, code=429) from exc
    derives = resource.ktx_kind in DERIVED_KINDS
    try:
        # A derived kind's watch knows what there is even when it sends none of it, to tell a change from none.
        initial = await current() if list_first or derives else []
    except BaseException:
        feed.unsubscribe(subscription)
        raise
    carried = carried_by_feed(resource)
    derived = derived_watch(resource.ktx_kind, request.app.state.platform, initial) if derives else None
    if not list_first:
        initial = []

    async def events() -> AsyncIterator[bytes]:
        deadline = time.monotonic() + timeout
        # The objects this client was shown, by workflow, at the version shown: a change the initial events already
        # included is not sent again, and one that stops matching the selectors is DELETED for this client.
        seen: dict[str, int] = {}
        try:
            for obj in initial:
                out = convert(obj)
                if matches(out):
                    key = key_of(obj) if derived is not None else (obj.get("_ktx") or {}).get("workflowId", "")
                    seen[key] = _version(obj)
                    yield _event("ADDED", rendered(out))
            if watch_list:
                yield _bookmark(resource, subscription.since, initial_end=True)
            while (left := deadline - time.monotonic()) > 0:
                try:
                    change = await subscription.next(min(left, BOOKMARK_INTERVAL_S))
                except Ended:
                    return
                if change is None:
                    if bookmarks:
                        yield _bookmark(resource, feed.position)
                else:
                    if derived is not None:
                        owed = await derived.changes(change)
                    else:
                        owed = [change] if carried and _of_resource(change, resource) else []
                    for one in owed:
                        out = convert(one.object)
                        event = _event_for(one, out, matches(out), seen, list_first, rendered)
                        if event is not None:
                            yield event
            if bookmarks:
                yield _bookmark(resource, feed.position)
        finally:
            feed.unsubscribe(subscription)

    return StreamingResponse(events(), media_type="application/json")


def _event_for(
    change: Change, out: dict[str, Any], matched: bool, seen: dict[str, int], listed: bool, render: Convert
) -> bytes | None:
    """The event this client is owed for a change, given what it was shown; None if nothing.

    `listed`: the client's view began with this watch's initial events, so an object it was not shown is new to it."""
    key, shown_at = change.workflow_id, seen.get(change.workflow_id)
    if change.type != "DELETED" and shown_at is not None and shown_at >= change.resource_version:
        return None  # the initial events already showed this version
    if not matched or change.type == "DELETED":
        seen.pop(key, None)
        # An object the client was shown, or may hold from its own list, goes; one it never saw means nothing to it.
        if not matched and shown_at is None:
            return None
        return _event("DELETED", render(out))
    seen[key] = change.resource_version
    if shown_at is not None:
        return _event("MODIFIED", render(out))
    return _event("ADDED" if change.type == "ADDED" or listed else "MODIFIED", render(out))


def _version(obj: dict[str, Any]) -> int:
    # A derived kind's objects carry their holder's version in their metadata.
    text = str(
        (obj.get("_ktx") or {}).get("resourceVersion") or (obj.get("metadata") or {}).get("resourceVersion") or 0
    )
    return int(text) if text.isdigit() else 0
