"""One change feed per API process: it alone polls Temporal visibility for the objects that changed, keeps the recent
changes in a bounded ring (domain/kube/changes.py) and hands them to every watch, so a hundred watchers cost one
poll, not a hundred.

Each poll asks only for the workflows whose resourceVersion (the KtxResourceVersion search attribute) is above a
window below the newest version seen, riding out visibility's lag; a closed workflow is its object's deletion. A
watcher's queue is bounded: one that falls that far behind is dropped (its watch ends, and the client watches again
from the last version it saw), so a slow client cannot grow the process's memory. The number of clients' watchers
is bounded too; the process's own followers (the overview's counts) take none of those slots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from activities.platform.search_attributes import RESOURCE_VERSION
from domain.config import DEFAULT_MAX_WATCHERS
from domain.kube.changes import Change, ChangeLog, Entry, Gone
from domain.visibility import greater_than
from service.platform import Platform

__all__ = ["Change", "ChangeFeed", "Ended", "Gone", "Subscription", "TooManyWatchers"]

log = logging.getLogger(__name__)

# A status change reaches a watcher within about one poll interval plus visibility's lag.
POLL_INTERVAL_S = 0.5
# Visibility shows a change a moment after its workflow task completes; changes that become visible up to this late
# (behind a newer one) are still delivered.
VISIBILITY_WINDOW_S = 3.0
# Changes held for watches resuming from an older version (Kubernetes' watch cache holds about as many per kind); a
# change is one object as Platform.get shows it, so this bounds the ring's memory at about capacity x object size.
RING_CAPACITY = 1024
# Changes queued for one watcher before it is dropped as too slow.
WATCHER_QUEUE = 256
_RETRY_CAP_S = 5.0


class TooManyWatchers(RuntimeError):
    """Every watcher slot of this API process is taken (the API answers 429)."""


class Ended(Exception):
    """The watch is over: its watcher fell too far behind, or the API is stopping."""


class Subscription:
    """One watcher's view of the feed: the changes since its version, then each new one as it is seen."""

    def __init__(self, since: int, backlog: list[Change], queue_size: int, client: bool = True):
        self.since = since
        self.client = client
        self._backlog = deque(backlog)
        self._queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=queue_size)
        self.ended = False

    def offer(self, change: Change) -> bool:
        """False if the watcher is too far behind to take it: it is dropped."""
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self.ended = True
            return False
        return True

    def end(self) -> None:
        self.ended = True
        # Wakes a watcher waiting for its next change, so it sees the end at once.
        try:
            self._queue.put_nowait(_END)
        except asyncio.QueueFull:
            pass

    async def next(self, timeout: float) -> Change | None:
        """The next change; None if none came within `timeout` (every change seen so far was handed over)."""
        if self._backlog:
            return self._backlog.popleft()
        if self.ended and self._queue.empty():
            raise Ended()
        try:
            change = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if change is _END:
            raise Ended()
        return change


_END = Change("MODIFIED", {}, 0)


class ChangeFeed:
    def __init__(
        self,
        platform: Platform,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        window_s: float = VISIBILITY_WINDOW_S,
        capacity: int = RING_CAPACITY,
        max_watchers: int = DEFAULT_MAX_WATCHERS,
        queue_size: int = WATCHER_QUEUE,
        clock: Callable[[], float] = time.time,
    ):
        self.platform = platform
        self.poll_interval_s = poll_interval_s
        self.max_watchers = max_watchers
        self.queue_size = queue_size
        # The log begins now: a watch from an older version than the process has seen cannot be served (410).
        # Versions are the workflows' clock (Temporal's); this process's clock stands in for it at the start only.
        self.log = ChangeLog(capacity=capacity, window=int(window_s * 1_000_000), floor=int(clock() * 1_000_000))
        self._watchers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    @property
    def position(self) -> int:
        """The newest version seen: a watch from here misses nothing seen after (a list's resourceVersion)."""
        return self.log.newest

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ktx-change-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for watcher in list(self._watchers):
            watcher.end()
        self._watchers.clear()

    def subscribe(self, since: int | None, *, client: bool = True) -> Subscription:
        """A watch from `since` (None: from now). Raises Gone if `since` is older than the ring holds.

        `client=False`: a follower of this process's own, which takes no client's slot: the limit bounds what clients
        hold open, and a full API must neither stop the process following its own changes nor be filled by it."""
        if client and sum(w.client for w in self._watchers) >= self.max_watchers:
            raise TooManyWatchers(f"this API process serves at most {self.max_watchers} watches at once")
        start = self.position if since is None else since
        watcher = Subscription(start, self.log.since(start), self.queue_size, client)
        self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Subscription) -> None:
        self._watchers.discard(watcher)

    async def poll(self) -> int:
        """One look at visibility; returns how many changes it found."""
        query = greater_than(RESOURCE_VERSION.name, self.log.query_floor())
        executions = [e async for e in self.platform.client.list_workflows(query)]
        observed = [o for o in await asyncio.gather(*[self.platform.observed(e) for e in executions]) if o]
        entries = self.log.admit(observed)
        self.polls += 1
        for entry in entries:
            self._fan_out(entry)
        return len(entries)

    def _fan_out(self, entry: Entry) -> None:
        for watcher in list(self._watchers):
            if not watcher.offer(entry.change_for(watcher.since)):
                log.warning("dropped a watcher %d changes behind", self.queue_size)
                self._watchers.discard(watcher)

    async def _run(self) -> None:
        failures = 0
        while self._task is not None:
            try:
                await self.poll()
                failures = 0
                delay = self.poll_interval_s
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Temporal down or a bad record: the feed goes on, watches wait
                failures += 1
                delay = min(self.poll_interval_s * 2**failures, _RETRY_CAP_S)
                log.exception("the change feed could not poll visibility; retrying in %.1fs", delay)
            await asyncio.sleep(delay)
