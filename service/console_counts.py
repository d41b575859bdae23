"""The overview's counts of resource requests per Promise and phase, kept by the API process for whoever reads them.

Visibility cannot group a count by a custom search attribute (Temporal's GROUP BY takes ExecutionStatus only), so the
table costs one count per Promise and phase: 7 x P queries, which took seconds at 2,000 requests on a busy machine,
for every overview read, and the page reads the overview again after every burst of changes. Here each set of
namespaces asked for (every namespace, or a team's) keeps its last table; while someone reads it, it is counted
again after the change feed reports a change of a request or a Promise, at most once every REFRESH_S. An overview is
then answered at once, at most about REFRESH_S plus one counting behind the change feed (the page shows when it was
counted, and whether a counting is still due: a page that read a table with one due reads it again, since the counting
that follows brings no change of its own to wake it). A table nobody read for KEEP_S is dropped, so the process counts
only what is being looked at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.console import PHASES
from service.change_feed import ChangeFeed, Ended
from service.platform import Platform

log = logging.getLogger(__name__)

REFRESH_S = 2.0
KEEP_S = 60.0
# Distinct namespace sets kept (each team token's set is one): the least recently read is dropped beyond this.
MAX_SETS = 64

Key = tuple[str, ...] | None


@dataclass(frozen=True)
class Counted:
    counts: dict[str, dict[str, int]]  # Promise -> phase -> requests
    counted_at: float  # seconds since the epoch, when the counting began

    @property
    def stamp(self) -> str:
        """When it was counted, as Kubernetes writes times (RFC 3339, seconds, UTC)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.counted_at))


@dataclass
class _Entry:
    read_at: float
    counted: Counted | None = None
    dirty: bool = False
    counting: asyncio.Task[Counted] | None = field(default=None, repr=False)


class OverviewCounts:
    def __init__(
        self,
        platform: Platform,
        feed: ChangeFeed,
        *,
        refresh_s: float = REFRESH_S,
        keep_s: float = KEEP_S,
        max_sets: int = MAX_SETS,
        clock: Callable[[], float] = time.time,
    ):
        self.platform = platform
        self.feed = feed
        self.refresh_s = refresh_s
        self.keep_s = keep_s
        self.max_sets = max_sets
        self.clock = clock
        self._entries: dict[Key, _Entry] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="ktx-overview-counts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        pending = [t for t in (task, *(e.counting for e in self._entries.values())) if t is not None]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._entries.clear()

    async def get(self, namespaces: list[str] | None) -> Counted:
        """The table for these namespaces (None: every one): the kept one, or counted now if there is none yet."""
        key = _key(namespaces)
        entry = self._entries.pop(key, None) or _Entry(read_at=0.0)
        self._entries[key] = entry  # re-inserted: the dict's order is the order of the last reads
        entry.read_at = self.clock()
        while len(self._entries) > self.max_sets:
            self._drop(next(iter(self._entries)))
        if entry.counted is not None:
            return entry.counted
        return await asyncio.shield(self._counting(key, entry))

    def due(self, namespaces: list[str] | None) -> bool:
        """Whether the table for these namespaces has a change not yet counted (or is being counted): what `get`
        gave is then behind the change feed."""
        entry = self._entries.get(_key(namespaces))
        return entry is None or entry.dirty or entry.counting is not None

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key)
        if entry.counting is not None:
            entry.counting.cancel()

    def _counting(self, key: Key, entry: _Entry) -> asyncio.Task[Counted]:
        """The counting of this entry in flight, or a new one: readers at once share one."""
        if entry.counting is None:
            entry.dirty = False
            entry.counting = asyncio.create_task(self._count(key, entry))
        return entry.counting

    async def _count(self, key: Key, entry: _Entry) -> Counted:
        try:
            began = self.clock()
            namespaces = None if key is None else list(key)
            promises = [p["metadata"]["name"] for p in await self.platform.list("Promise")]
            pairs = [(p, phase) for p in promises for phase in PHASES]
            found = await asyncio.gather(*[self.platform.count_resources(p, namespaces, ph) for p, ph in pairs])
            counts: dict[str, dict[str, int]] = {p: {} for p in promises}
            for (p, phase), n in zip(pairs, found):
                counts[p][phase] = n
            entry.counted = Counted(counts, began)
            return entry.counted
        except Exception:
            # Temporal down or slow: counted again at the next refresh, not at the next change (there may be none).
            entry.dirty = True
            raise
        finally:
            entry.counting = None

    def _refresh(self) -> None:
        """Counts again each changed table read within KEEP_S (once its counting in flight, if any, is done); drops
        the others."""
        now = self.clock()
        for key in [k for k, e in self._entries.items() if now - e.read_at > self.keep_s]:
            self._drop(key)
        for key, entry in self._entries.items():
            if entry.dirty and entry.counting is None and entry.counted is not None:
                task = self._counting(key, entry)
                task.add_done_callback(_log_failure)

    def _changed(self) -> None:
        for entry in self._entries.values():
            entry.dirty = True

    async def _follow(self) -> None:
        """Marks the tables changed as the change feed reports requests and Promises changing, and counts them again
        at most every REFRESH_S."""
        loop = asyncio.get_running_loop()
        while True:
            watcher = self.feed.subscribe(None, client=False)
            due = loop.time() + self.refresh_s
            try:
                while True:
                    change = await watcher.next(max(0.0, due - loop.time()))
                    if change is not None and (change.promise or change.kind == "Promise"):
                        self._changed()
                    if loop.time() >= due:
                        self._refresh()
                        due = loop.time() + self.refresh_s
            except Ended:
                # Dropped as too slow, or the feed stopped: what was missed is unknown, so everything changed.
                self._changed()
            finally:
                self.feed.unsubscribe(watcher)


def _key(namespaces: list[str] | None) -> Key:
    return None if namespaces is None else tuple(sorted(set(namespaces)))


def _log_failure(task: asyncio.Task[Counted]) -> None:
    if not task.cancelled() and task.exception() is not None:
        # Temporal down or slow: the table kept stays (its time says how old it is); the next refresh tries again.
        log.warning("the overview's counts could not be refreshed: %s", task.exception())
