"""The tests' one wait helper: it returns what satisfied the check, and a wait that never succeeds fails, saying so."""

from __future__ import annotations

import itertools
import time

import pytest

from service.platform import NotFound
from tests.waiting import eventually, eventually_blocking


async def test_returns_the_first_value_that_passes_from_sync_or_async_reads() -> None:
    counter = itertools.count()

    async def read() -> int:
        return next(counter)

    assert await eventually(read, lambda n: n >= 3, timeout=5, interval=0.001) == 3
    assert await eventually(lambda: next(counter), lambda n: n >= 6, timeout=5, interval=0.001) == 6


async def test_a_deadline_fails_with_what_was_awaited_and_the_last_value_seen() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2s waiting for the answer; last seen: \{'n': 41\}"):
        await eventually(lambda: {"n": 41}, lambda o: o["n"] == 42, timeout=0.2, what="the answer")
    assert 0.2 <= time.monotonic() - started < 2  # the last pause is cut to the deadline, not a whole backoff step


async def test_not_found_is_not_yet_and_other_errors_fail_at_once() -> None:
    reads = iter([NotFound("promise/x not found"), NotFound("promise/x not found"), "there"])

    def read() -> str:
        value = next(reads)
        if isinstance(value, Exception):
            raise value
        return value

    assert await eventually(read, lambda v: v == "there", timeout=5, interval=0.001) == "there"
    with pytest.raises(AssertionError, match="last seen: NotFound"):
        await eventually(lambda: (_ for _ in ()).throw(NotFound("gone")), timeout=0.1)
    with pytest.raises(ZeroDivisionError):
        await eventually(lambda: 1 / 0, timeout=5)


def test_the_blocking_face_has_the_same_deadline_and_message() -> None:
    counter = itertools.count()
    assert eventually_blocking(lambda: next(counter), lambda n: n == 2, timeout=5, interval=0.001) == 2
    with pytest.raises(AssertionError, match="waiting for a port; last seen: ConnectionRefusedError"):
        eventually_blocking(
            lambda: (_ for _ in ()).throw(ConnectionRefusedError()), timeout=0.1, what="a port", ignoring=(OSError,)
        )
