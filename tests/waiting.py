"""The one way tests (and bench/) wait for something: poll with a small backoff until a check holds or a
deadline passes.

A wait without a deadline turns a regression into a hung CI job, and a bare sleep turns it into a flaky one (or hides
it). Every wait goes through `eventually` (async) or `eventually_blocking` (for sync fixtures and servers starting in
a thread); on timeout both fail with what was awaited and the last value seen, so the failure says how far it got.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable, Iterator

from service.platform import NotFound

# How long past the wait's deadline a read still in flight may take: a slow read that answers is a value, one that never
# answers fails the wait.
READ_GRACE_S = 30.0
# An object applied a moment ago may not be listed yet: a read that says "not found" is a value to wait past.
DEFAULT_IGNORED: tuple[type[BaseException], ...] = (NotFound,)


class _Poll:
    """Deadline and backoff shared by both faces; `pauses()` gives the only sleeps a test waits with."""

    def __init__(self, timeout: float, what: str, interval: float, max_interval: float):
        self.deadline = time.monotonic() + timeout
        self.timeout, self.what = timeout, what
        self.delay, self.max_interval = interval, max(interval, max_interval)
        self.last: Any = "nothing (no read finished)"

    def pauses(self) -> Iterator[float]:
        """How long to sleep before each read: none before the first, then the backoff, each cut to the deadline so
        the last read lands on it; once the deadline has passed (after at least one read), the wait fails."""
        yield 0.0
        while (remaining := self.deadline - time.monotonic()) > 0:
            yield min(self.delay, remaining)
            self.delay = min(self.delay * 2, self.max_interval)
        last = repr(self.last) if isinstance(self.last, BaseException) else self.last
        raise AssertionError(f"timed out after {self.timeout:g}s waiting for {self.what}; last seen: {last}")


async def eventually(
    read: Callable[[], Awaitable[Any] | Any],
    check: Callable[[Any], bool] = bool,
    timeout: float = 90,
    what: str = "condition",
    *,
    interval: float = 0.05,
    max_interval: float = 0.5,
    ignoring: tuple[type[BaseException], ...] = DEFAULT_IGNORED,
) -> Any:
    """Re-read (memos are a few ms each) until `check(value)` holds and return that value; `read` may be sync or async.
    Exceptions in `ignoring` count as "not yet" (and are reported as the last value); any other propagates at once."""
    poll = _Poll(timeout, what, interval, max_interval)
    for pause in poll.pauses():
        await asyncio.sleep(pause)
        try:
            value = read()
            if inspect.isawaitable(value):
                # A read that hangs (an update no worker can take) fails the wait too, not the test's 15 minutes.
                try:
                    value = await asyncio.wait_for(value, max(0.0, poll.deadline - time.monotonic()) + READ_GRACE_S)
                except TimeoutError as exc:
                    if time.monotonic() < poll.deadline:
                        raise  # the read's own timeout, not the wait's
                    raise AssertionError(
                        f"timed out after {poll.timeout:g}s waiting for {what}: a read did not answer "
                        f"{READ_GRACE_S:g}s past the deadline; last seen: {poll.last}"
                    ) from exc
            if check(value):
                return value
            poll.last = value
        except ignoring as exc:
            poll.last = exc
    raise AssertionError("unreachable: pauses() ends by failing the wait")


def eventually_blocking(
    read: Callable[[], Any],
    check: Callable[[Any], bool] = bool,
    timeout: float = 90,
    what: str = "condition",
    *,
    interval: float = 0.05,
    max_interval: float = 0.5,
    ignoring: tuple[type[BaseException], ...] = DEFAULT_IGNORED,
) -> Any:
    """`eventually` for code that cannot await (sync fixtures, servers started in a thread, bench timings)."""
    poll = _Poll(timeout, what, interval, max_interval)
    for pause in poll.pauses():
        time.sleep(pause)
        try:
            value = read()
            if check(value):
                return value
            poll.last = value
        except ignoring as exc:
            poll.last = exc
    raise AssertionError("unreachable: pauses() ends by failing the wait")
