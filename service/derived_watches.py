"""Watches of the kinds other workflows hold: ResourceBindings (in their requests' memos) and PromiseRevisions (in
their Promises'). No workflow of their own publishes a resourceVersion for them, so a watch derives their changes
from the change feed's changes of the objects that hold them (service/change_feed.py), at those objects' versions.

Each watch keeps what it has shown (seeded from the objects there are when it starts), so a request whose status
changes and whose binding does not is no event, and a revision is fetched (a query of its Promise's workflow) only
when it is new or its `latest` changed. Bindings held by a Promise for a request not made yet are not watched: they
show up when their request adopts them.
"""

from __future__ import annotations

from typing import Any, Protocol

from activities.platform.catalog import fetch_revision
from domain.kube.changes import Change
from domain.revisions import revision_name
from service.platform import Platform


class DerivedWatch(Protocol):
    async def changes(self, change: Change) -> list[Change]: ...


def key_of(obj: dict[str, Any]) -> str:
    """What a derived object is known by in a watch: namespace/name (they have no workflow of their own)."""
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"


def _at(document: dict[str, Any], version: int) -> dict[str, Any]:
    return {**document, "metadata": {**(document.get("metadata") or {}), "resourceVersion": str(version)}}


def _content(document: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in (document.get("metadata") or {}).items() if k != "resourceVersion"}
    return {**document, "metadata": metadata}


class BindingWatch:
    kind = "ResourceBinding"

    def __init__(self, current: list[dict[str, Any]]):
        self.shown = {key_of(b): _content(b) for b in current}

    async def changes(self, change: Change) -> list[Change]:
        binding = (change.object.get("_ktx") or {}).get("binding")
        if not change.promise or not isinstance(binding, dict) or not isinstance(binding.get("metadata"), dict):
            return []
        document = _at(binding, change.resource_version)
        key = key_of(document)
        if change.type == "DELETED":  # the request is gone, and its binding with it
            self.shown.pop(key, None)
            return [Change("DELETED", document, change.resource_version, key, self.kind)]
        content = _content(document)
        if self.shown.get(key) == content:
            return []
        kind = "MODIFIED" if key in self.shown else "ADDED"
        self.shown[key] = content
        return [Change(kind, document, change.resource_version, key, self.kind)]


class RevisionWatch:
    kind = "PromiseRevision"

    def __init__(self, platform: Platform, current: list[dict[str, Any]]):
        self.platform = platform
        # Each revision shown: its Promise, whether it was the latest, the document.
        self.shown: dict[str, tuple[str, bool, dict[str, Any]]] = {
            key_of(r): (
                str(((r.get("spec") or {}).get("promiseRef") or {}).get("name") or ""),
                bool((r.get("status") or {}).get("latest")),
                r,
            )
            for r in current
        }

    async def changes(self, change: Change) -> list[Change]:
        revisions = (change.object.get("_ktx") or {}).get("revisions")
        promise = str((change.object.get("metadata") or {}).get("name") or "")
        if change.kind != "Promise" or not promise or not isinstance(revisions, list):
            return []
        now: dict[str, tuple[str, bool]] = {}
        if change.type != "DELETED":
            for entry in revisions:
                if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                    now[f"/{revision_name(promise, entry['version'])}"] = (entry["version"], bool(entry.get("latest")))
        found = []
        for key, (owner, _, document) in list(self.shown.items()):
            if owner == promise and key not in now:
                del self.shown[key]
                found.append(
                    Change("DELETED", _at(document, change.resource_version), change.resource_version, key, self.kind)
                )
        for key, (version, latest) in now.items():
            held = self.shown.get(key)
            if held is not None and held[1] == latest:
                continue
            view = await fetch_revision(self.platform.client, promise, version)
            if view is None:
                continue  # gone again since: the next change of its Promise says so
            self.shown[key] = (promise, latest, view.document)
            kind = "MODIFIED" if held is not None else "ADDED"
            found.append(
                Change(kind, _at(view.document, change.resource_version), change.resource_version, key, self.kind)
            )
        return found


DERIVED_KINDS = (BindingWatch.kind, RevisionWatch.kind)


def derived_watch(kind: str, platform: Platform, current: list[dict[str, Any]]) -> DerivedWatch:
    """The derivation for one of DERIVED_KINDS, knowing the objects there are now."""
    return BindingWatch(current) if kind == BindingWatch.kind else RevisionWatch(platform, current)
