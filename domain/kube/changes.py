"""The change log behind Kubernetes watches, pure: what the API's change feed (service/change_feed.py) saw of the
objects' workflows, deduplicated, in a bounded ring, and what a watch resuming from a resourceVersion is owed.

An object's resourceVersion is its workflow's (workflows/publishing.py): microseconds of the workflow's clock, growing
with each change, so versions of different objects compare as times do. The feed asks visibility for everything above
`query_floor()`: a window below the newest version it holds, because visibility shows a change a moment after it is
made and two objects' changes can become visible out of order. Whatever the window brings twice is seen once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class Gone(LookupError):
    """A watch from a resourceVersion older than the ring holds: its changes are forgotten (Kubernetes' 410 Expired);
    the client lists again and watches from the list's version."""

    def __init__(self, since: int, oldest: int):
        self.since, self.oldest = since, oldest
        super().__init__(f"too old resource version: {since} ({oldest})")


@dataclass(frozen=True)
class Observed:
    """One object's workflow as visibility shows it now."""

    workflow_id: str
    resource_version: int
    # The workflow ended: its object was deleted (the object workflows end only then).
    closed: bool
    # The version the object was created at (its first published change); 0 if it predates resourceVersions.
    created: int
    object: dict[str, Any]
    kind: str = ""  # the KtxKind search attribute
    promise: str = ""  # the KtxPromise search attribute ("" for the platform's own kinds)


@dataclass(frozen=True)
class Change:
    type: EventType
    object: dict[str, Any]
    resource_version: int
    workflow_id: str = ""
    kind: str = ""
    promise: str = ""


@dataclass(frozen=True)
class Entry:
    seen: Observed
    # The first entry of this object since it was created: a watch from before its creation sees it ADDED.
    first: bool

    def change_for(self, since: int) -> Change:
        seen = self.seen
        if seen.closed:
            kind: EventType = "DELETED"
        elif self.first and seen.created > since:
            kind = "ADDED"
        else:
            kind = "MODIFIED"
        return Change(kind, seen.object, seen.resource_version, seen.workflow_id, seen.kind, seen.promise)


@dataclass
class ChangeLog:
    """The last `capacity` changes, oldest first; `floor` is the newest version forgotten (or where the log began):
    a watch from below it is Gone. Memory is bounded by the ring (and the per-object index, never larger)."""

    capacity: int
    window: int  # in resourceVersion units (microseconds)
    floor: int  # where the log began: a watch from before it cannot be served
    newest: int = field(init=False)
    _ring: deque[Entry] = field(init=False)
    # Per object in the ring: the newest (version, closed) held, for deduplication and for ADDED.
    _latest: dict[str, tuple[int, bool]] = field(init=False)

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.window < 0:
            raise ValueError("a change log holds at least one change, over a window of zero or more")
        self.newest = self.floor
        self._ring = deque()
        self._latest = {}

    def query_floor(self) -> int:
        """Ask visibility for versions above this: the window below the newest, never below what is forgotten."""
        return max(self.floor, self.newest - self.window)

    def admit(self, observed: list[Observed]) -> list[Entry]:
        """Take what one poll saw; returns the new entries, oldest version first (what to fan out)."""
        admitted = []
        for seen in sorted(observed, key=lambda o: (o.resource_version, o.closed)):
            if seen.resource_version <= self.floor:
                continue  # changed before the log began or was forgotten: no watch it could reach is served
            key = (seen.resource_version, seen.closed)
            held = self._latest.get(seen.workflow_id)
            if held is not None and key <= held:
                continue  # already seen, or older than what is held
            first = held is None or held[0] < seen.created or held[1]
            entry = Entry(seen, first)
            self._append(entry)
            admitted.append(entry)
        return admitted

    def _append(self, entry: Entry) -> None:
        seen = entry.seen
        self._latest[seen.workflow_id] = (seen.resource_version, seen.closed)
        self.newest = max(self.newest, seen.resource_version)
        self._ring.append(entry)
        while len(self._ring) > self.capacity:
            old = self._ring.popleft().seen
            self.floor = max(self.floor, old.resource_version)
            if self._latest.get(old.workflow_id) == (old.resource_version, old.closed):
                del self._latest[old.workflow_id]

    def since(self, since: int) -> list[Change]:
        """What a watch from `since` is owed now, in the order it was seen; Gone if some of it was forgotten."""
        if since < self.floor:
            raise Gone(since, self.floor)
        return [e.change_for(since) for e in self._ring if e.seen.resource_version > since]


def parse_resource_version(text: str | None) -> int | None:
    """A client's resourceVersion: None when unset or "0" (Kubernetes: any version, start with the current state)."""
    if text in (None, "", "0"):
        return None
    if not isinstance(text, str) or len(text) > 20 or not text.isdigit():
        raise ValueError(f"invalid resourceVersion {str(text)[:40]!r}: not a resourceVersion")
    return int(text)
