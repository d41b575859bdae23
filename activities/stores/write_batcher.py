"""One queue per store: concurrent writes wait while a batch is committed, then go out together in the next one.

Kratix commits and pushes once per WorkPlacement under a lock, which storms the remote; batching turns a thousand
concurrent writes into a handful of commits. Batches are also paced (Pacing): a batch starts at most once per
interval, so writes that trickle in (requests finishing their pipelines a few at a time) share a commit by design,
not by the luck of arriving during one. A write to an idle store, none started within the interval, goes at once.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, replace

from activities.stores.writes import StoreChange, check_paths
from domain.config import DEFAULT_STATE_STORE_COMMIT_INTERVAL_S

# A commit of this many changes is still a few seconds of git's work; a bigger backlog goes out in several.
DEFAULT_MAX_BATCH = 500


@dataclass(frozen=True)
class Pacing:
    """At most one batch starts per `interval_s` per store (so at most W / interval + 1 commits in W seconds), and a
    batch holds at most `max_batch` changes: one that fills starts without waiting out the interval."""

    interval_s: float = DEFAULT_STATE_STORE_COMMIT_INTERVAL_S
    max_batch: int = DEFAULT_MAX_BATCH


@dataclass
class WriteOutcome:
    version_id: str
    changed: bool
    error: str | None = None
    # Objects actually uploaded and deleted (Bucket stores; a Git commit counts as one change of the tree).
    uploaded: int = 0
    deleted: int = 0


class BatchingWriter:
    def __init__(self, pacing: Pacing = Pacing()) -> None:
        self.pacing = pacing
        self._pending: list[tuple[StoreChange, asyncio.Future[WriteOutcome]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._last_start: float | None = None  # the event loop's clock when the last batch started
        self.batches_committed = 0
        # Batches and permission checks share the clone (or client): one at a time.
        self._lock = threading.Lock()

    async def write(self, change: StoreChange) -> WriteOutcome:
        check_paths(change)
        future: asyncio.Future[WriteOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((change, future))
        if len(self._pending) >= self.pacing.max_batch:
            self._full.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _paced(self) -> None:
        """Until the interval since the last batch's start is over, or a full batch is waiting."""
        if self._last_start is None or len(self._pending) >= self.pacing.max_batch:
            return
        wait = self._last_start + self.pacing.interval_s - asyncio.get_running_loop().time()
        if wait <= 0:
            return
        self._full.clear()
        try:
            await asyncio.wait_for(self._full.wait(), wait)
        except TimeoutError:
            pass

    async def _drain(self) -> None:
        while self._pending:
            await self._paced()
            batch, self._pending = self._pending[: self.pacing.max_batch], self._pending[self.pacing.max_batch :]
            self._last_start = asyncio.get_running_loop().time()
            try:
                outcome = await asyncio.to_thread(self._locked, self._commit_batch, [change for change, _ in batch])
            except Exception as exc:  # every waiter learns why its write failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if outcome.changed:
                self.batches_committed += 1
            for change, future in batch:
                if not future.done():
                    # One change's refusal (a file another placement owns) is its own error; the batch committed.
                    own = (
                        replace(outcome, error="; ".join(change.conflicts)[:4096])
                        if change.conflicts and not outcome.error
                        else outcome
                    )
                    future.set_result(own)

    async def check(self) -> None:
        await asyncio.to_thread(self._locked, self.check_permissions)

    def _locked(self, call, *args):  # type: ignore[no-untyped-def]
        with self._lock:
            return call(*args)

    def _commit_batch(self, changes: list[StoreChange]) -> WriteOutcome:
        """Runs in a worker thread, one batch at a time per store."""
        raise NotImplementedError

    def check_permissions(self) -> None:
        """Prove the platform may write here without changing anything; raises with the store's reason."""
        raise NotImplementedError
