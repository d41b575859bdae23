"""The web console's JSON views, under `/ui/api`: the overview, the requests list with its filters and pages, a
request's detail with its links, and the change feed as server-sent events. Each reads through Platform, as the REST
routes do, and each is authenticated and authorised as they are; everything the console changes goes through the REST
routes themselves (`/apply`, `/objects/...`), so the console has no way of its own to act."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.auth import Caller, Forbidden, authenticate, authorise
from domain import console
from domain.access import Principal, Target
from domain.kube.selectors import SelectorError, parse_label_selector
from domain.status import get_condition
from domain.names import LABEL_MAX, NAMESPACE_PATTERN, NAME_PATTERN, SUBDOMAIN_MAX
from service.change_feed import ChangeFeed, Ended, TooManyWatchers
from service.console_counts import Counted
from service.platform import Platform

PhaseName = Annotated[str | None, Query(pattern="^(" + "|".join(console.PHASES) + ")$")]
OptionalName = Annotated[str | None, Query(max_length=LABEL_MAX, pattern=NAME_PATTERN.pattern)]
OptionalNamespace = Annotated[str | None, Query(max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN.pattern)]
KindPath = Annotated[str, Path(max_length=LABEL_MAX, pattern=r"^[A-Za-z][A-Za-z0-9]*$")]
NamePath = Annotated[str, Path(max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN.pattern)]
Namespace = Annotated[str, Query(max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN.pattern)]
DestinationName = Annotated[str, Query(max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN.pattern)]
# A placement's path is only ever compared with the paths its request's placements name, never used as it comes.
PlacementPath = Annotated[str, Query(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$")]
# Server-sent events: a comment this often keeps proxies from closing a quiet stream; the stream ends after
# STREAM_MAX_S or the `timeout` asked (the browser opens another), so no connection is held forever.
KEEPALIVE_S = 15.0
STREAM_MAX_S = 600.0
_STORE_KINDS = ("GitStateStore", "BucketStateStore")


class BadFilter(ValueError):
    """A filter the console's routes refuse (answered 400 with the reason)."""


def _platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(_platform)]


def _may(caller: Principal, action: str, kind: str, namespace: str | None = None) -> bool:
    try:
        authorise(caller, action, Target.of_route(kind, None, namespace))  # type: ignore[arg-type]
    except Forbidden:
        return False
    return True


def _visible(caller: Principal, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if caller.sees((o.get("metadata") or {}).get("namespace"))]


def _store_summary(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    ready = get_condition(status, "Ready") or {}
    # A Destination's last write's result is its WritesSucceeded condition (a store has none: it is written to only
    # through Destinations).
    written = get_condition(status, "WritesSucceeded") or {}
    return {
        "kind": obj.get("kind", ""),
        "name": (obj.get("metadata") or {}).get("name", ""),
        "labels": (obj.get("metadata") or {}).get("labels") or {},
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "message": str(ready.get("message", ""))[:500],
        "lastWrite": {k: written.get(k) for k in ("status", "reason", "message", "lastTransitionTime") if k in written},
        "lastResync": status.get("lastResyncTime", ""),
        "objects": (obj.get("_ktx") or {}).get("objects"),
        "spec": obj.get("spec") or {},
        "events": ((obj.get("_ktx") or {}).get("events") or [])[-console.RECENT_MAX :],
    }


def _namespaces(caller: Principal) -> list[str] | None:
    """The namespaces a caller's lists are narrowed to (None: every one), as `Principal.sees` says."""
    return None if caller.role == "platform" else list(caller.namespaces)


# A page token: `v` and Temporal's own next-page token with this process's MAC over it (base64url), or `o` and an
# offset into a label-filtered list. Temporal answers a forged token with an internal error after retries, so only
# tokens this process gave are passed on; another API process's (a replica's) are refused as not this list's.
PAGE_TOKEN_MAX = 4096
_MAC_BYTES = 16


def _page_key(request: Request) -> bytes:
    return request.app.state.console_page_key


def _sealed(key: bytes, token: bytes) -> str:
    mac = hmac.new(key, token, hashlib.sha256).digest()[:_MAC_BYTES]
    return "v" + base64.urlsafe_b64encode(mac + token).decode()


def _visibility_token(key: bytes, page: str | None) -> bytes | None:
    if page is None:
        return None
    refused = BadFilter("page: not a page token of this list (start again from the first page)")
    if not page.startswith("v"):
        raise refused
    try:
        sealed = base64.urlsafe_b64decode(page[1:])
    except (ValueError, binascii.Error):
        raise refused from None
    mac, token = sealed[:_MAC_BYTES], sealed[_MAC_BYTES:]
    if not hmac.compare_digest(mac, hmac.new(key, token, hashlib.sha256).digest()[:_MAC_BYTES]):
        raise refused
    return token


def _offset_token(page: str | None) -> int:
    if page is None:
        return 0
    if not page.startswith("o") or not page[1:].isdigit() or len(page) > 8:
        raise BadFilter("page: not a page token of this list (start again from the first page)")
    return int(page[1:])


def routes() -> APIRouter:
    ui = APIRouter(prefix="/ui/api", dependencies=[Depends(authenticate)], include_in_schema=False)

    @ui.get("/session")
    async def session(request: Request, caller: Caller) -> dict[str, Any]:
        """Who the console acts as: it shows the token's name and role, never the token."""
        settings = request.app.state.settings
        return {
            "name": caller.name,
            "role": caller.role,
            "namespaces": caller.namespaces,
            "temporalNamespace": settings.temporal_namespace,
            "temporalUi": settings.temporal_ui_url,
        }

    @ui.get("/overview")
    async def overview(request: Request, platform: PlatformDep, caller: Caller) -> dict[str, Any]:
        """Counts by visibility (one count per Promise and phase, no memo read, kept by service/console_counts.py
        and counted again as things change: `countedAt` says when), the newest failures (one page), and the recent
        events of the objects the change feed saw change since this API process started."""
        namespaces = _namespaces(caller)
        counts_store = request.app.state.overview_counts

        async def counted_or_none() -> Counted | None:
            return await counts_store.get(namespaces) if _may(caller, "list", "Promise") else None

        store_kinds = [kind for kind in ("Destination", *_STORE_KINDS) if _may(caller, "list", kind)]
        # Each part its own reads, so all at once.
        counted, (failed, _, _), stores = await asyncio.gather(
            counted_or_none(),
            platform.resources_page(None, namespaces, "Failed", console.PAGE_DEFAULT),
            platform.catalog_objects(store_kinds),
        )
        counts = counted.counts if counted else {}
        feed: ChangeFeed = request.app.state.change_feed
        recent = [c.object for c in console.latest_changes(feed.log.since(feed.log.floor)) if c.promise]
        return {
            "counts": counts,
            "countedAt": counted.stamp if counted else None,
            "countsDue": counted is not None and counts_store.due(namespaces),
            "promises": list(counts),
            "stores": [_store_summary(store) for kind in store_kinds for store in stores[kind]],
            "failures": console.recent_failures(_visible(caller, failed)),
            "events": console.recent_events(_visible(caller, recent)),
        }

    @ui.get("/requests")
    async def requests(
        request: Request,
        platform: PlatformDep,
        caller: Caller,
        promise: OptionalName = None,
        namespace: OptionalNamespace = None,
        phase: PhaseName = None,
        label: Annotated[str | None, Query(max_length=4096)] = None,
        page: Annotated[str | None, Query(max_length=PAGE_TOKEN_MAX, pattern=r"^[A-Za-z0-9_=-]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=console.PAGE_MAX)] = console.PAGE_DEFAULT,
    ) -> dict[str, Any]:
        """A page of the resource requests the caller may read, newest first, and the `next` page's token. Promise,
        namespace and phase are applied by visibility and a page reads only its own memos; a label selector
        (kubectl's grammar) is applied here, over every request the other filters leave."""
        # The refusal `GET /objects/<kind>?namespace=` gives, for requests of any Promise (a team's rules cover every
        # Promise API alike).
        authorise(caller, "list", Target(promise or "resource requests", None, namespace, False))
        namespaces = [namespace] if namespace else _namespaces(caller)
        try:
            requirements = parse_label_selector(label) if label else []
        except SelectorError as exc:
            raise BadFilter(f"label: {exc}") from None
        if requirements:
            offset = _offset_token(page)
            found = await platform.resources(promise, namespaces, phase)
            rows = console.filter_rows([console.request_row(o) for o in found], requirements)
            rows.sort(key=lambda r: (r["promise"], r["namespace"], r["name"]))
            more = offset + limit < len(rows)
            return {
                "items": rows[offset : offset + limit],
                "total": len(rows),
                "next": f"o{offset + limit}" if more else None,
            }
        key = _page_key(request)
        found, token, total = await platform.resources_page(
            promise, namespaces, phase, limit, _visibility_token(key, page)
        )
        return {
            "items": [console.request_row(o) for o in found],
            "total": total,
            "next": _sealed(key, token) if token else None,
        }

    @ui.get("/promises/{name}/versions")
    async def promise_versions(name: NamePath, platform: PlatformDep, caller: Caller) -> dict[str, Any]:
        """A Promise's PromiseRevisions, each with how many of its requests (every one the caller may read, not a
        page) were last reconciled at that version: one visibility count per revision (KtxPromiseVersion), no memo
        read. `elsewhere` is the rest: not reconciled yet, at a deleted revision's version, or not published since
        the worker began recording versions."""
        authorise(caller, "list", Target.of_route("PromiseRevision", None, None))
        authorise(caller, "list", Target(name, None, None, False))
        namespaces = _namespaces(caller)
        revisions = await platform.list("PromiseRevision", promise=name)
        versions = [str((r.get("spec") or {}).get("version", "")) for r in revisions]
        total, *counted = await asyncio.gather(
            platform.count_resources(name, namespaces),
            *[platform.count_resources(name, namespaces, version=v) for v in versions],
        )
        per_version = dict(zip(versions, counted))
        return {
            "revisions": console.revision_rows(revisions, per_version),
            "elsewhere": max(0, total - sum(counted)),
            "total": total,
        }

    @ui.get("/requests/{kind}/{name}")
    async def request_detail(
        request: Request,
        kind: KindPath,
        name: NamePath,
        platform: PlatformDep,
        caller: Caller,
        namespace: Namespace = "default",
    ) -> dict[str, Any]:
        """One request as `GET /objects/...` gives it, with what the console links to: the workflow in the Temporal
        UI and each placement's commit when its store's URL names a web host."""
        authorise(caller, "get", Target.of_route(kind, name, namespace))
        obj = await platform.get(kind, name, namespace)
        catalog = await platform.catalog()
        commits = {}
        for placement in (obj.get("_ktx") or {}).get("placements") or []:
            store = catalog.git_state_stores.get(placement.get("store_name", ""))
            if placement.get("store_kind") == "GitStateStore" and store is not None:
                link = console.commit_link(store.spec.url, placement.get("version_id", ""))
                if link:
                    commits[placement["version_id"]] = link
        settings = request.app.state.settings
        workflow_id = (obj.get("_ktx") or {}).get("workflowId", "")
        return {
            "object": obj,
            "row": console.request_row(obj),
            "failure": console.failing_container(obj),
            "links": {
                "temporal": console.temporal_ui_link(
                    settings.temporal_ui_url, settings.temporal_namespace, workflow_id
                ),
                "commits": commits,
            },
        }

    @ui.get("/requests/{kind}/{name}/files")
    async def placement_files(
        request: Request,
        kind: KindPath,
        name: NamePath,
        platform: PlatformDep,
        caller: Caller,
        destination: DestinationName,
        path: PlacementPath,
        namespace: Namespace = "default",
    ) -> dict[str, Any]:
        """The files one placement of a request wrote (a Git store's commit, a bucket's objects), as
        `Platform.placement_files` reads them: whoever may read the request may read what it placed, and nothing else
        (no other request's, no Destination's other files)."""
        authorise(caller, "get", Target.of_route(kind, name, namespace))
        cache = request.app.state.settings.git_cache_dir
        return await platform.placement_files(kind, name, namespace, destination, path, cache)

    @ui.get("/changes")
    async def changes(
        request: Request, caller: Caller, timeout: Annotated[float, Query(ge=1, le=STREAM_MAX_S)] = STREAM_MAX_S
    ) -> Response:
        """The API's one change feed as server-sent events: `change` events naming what changed (kind, Promise,
        namespace, name, phase, resourceVersion), only for objects the caller may read. The page then re-reads the
        one view it shows: no object is polled."""
        feed: ChangeFeed = request.app.state.change_feed
        try:
            watcher = feed.subscribe(None)
        except TooManyWatchers as exc:
            # As the Kubernetes watches say it (api/kube/watch.py): try again shortly.
            message = {"message": str(exc), "document": None, "errors": []}
            return JSONResponse(status_code=429, content=message, headers={"Retry-After": "5"})

        async def stream() -> AsyncIterator[bytes]:
            loop = asyncio.get_running_loop()
            ends = loop.time() + timeout
            try:
                yield b"retry: 2000\n\n"
                while loop.time() < ends:
                    change = await watcher.next(min(KEEPALIVE_S, max(0.0, ends - loop.time())))
                    if change is None:
                        yield b": keepalive\n\n"
                        continue
                    meta = change.object.get("metadata") or {}
                    # What `GET /objects/<kind>` would refuse this caller is not announced either (a team hears
                    # nothing of Destinations, stores or other namespaces).
                    if not caller.sees(meta.get("namespace")) or not _may(
                        caller, "get", change.kind, meta.get("namespace")
                    ):
                        continue
                    event = {
                        "type": change.type,
                        "kind": change.kind,
                        "promise": change.promise,
                        "namespace": meta.get("namespace") or "",
                        "name": meta.get("name", ""),
                        "phase": console.phase_of(change.object) if change.promise else "",
                        "resourceVersion": str(change.resource_version),
                    }
                    yield f"event: change\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
            except Ended:
                return
            finally:
                feed.unsubscribe(watcher)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return ui
