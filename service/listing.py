"""Lists of objects read from visibility, whole while their workflows continue as new.

A run that continues as new closes (ContinuedAsNew) and its successor starts with a newer start time. Visibility
orders running workflows newest start first and pages by position, so a successor started while a list is paged lands
on a page already read, and its predecessor is no longer Running: a list of running workflows alone loses the object.
A list therefore also reads the runs closed by continuing as new since it began (closed workflows come after every
running one, so they are read last) and keeps one run per workflow: the running one, else the latest closed.

A list paged across calls (the console's) keeps when its first page was read in its page token, so every page reads
the same query, and when the page that reached the closed runs was read: a run closed after that was read while it
ran, on an earlier page, and is not shown again.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from typing import Iterable

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from domain.visibility import CONTINUED_AS_NEW, RUNNING, closed_since

# What a list reads per visibility call (the SDK's own default).
LIST_PAGE_SIZE = 1000
# Visibility records a run's close and its successor's start a moment after they happen, and not always together: a
# successor can become visible on an already-read page after the list began, for a predecessor closed this long
# before it.
VISIBILITY_LAG = timedelta(seconds=5)
# A paged list's own part of its page token: when it began and when it reached the closed runs (0: not yet), in
# microseconds since the epoch; visibility's token follows.
_MARK = struct.Struct(">qq")


def listing_query(clauses: Iterable[str], began: datetime) -> str:
    """The running workflows the clauses select, and their runs that continued as new since `began` (less the lag)."""
    continued = f"{CONTINUED_AS_NEW} AND {closed_since(began - VISIBILITY_LAG)}"
    return " AND ".join([*clauses, f"({RUNNING} OR ({continued}))"])


async def current_runs(
    client: Client, clauses: Iterable[str], page_size: int = LIST_PAGE_SIZE
) -> list[WorkflowExecution]:
    """One run per workflow the clauses select that was running at some moment of the list, in visibility's order."""
    query = listing_query(clauses, datetime.now(timezone.utc))
    return _one_per_workflow([e async for e in client.list_workflows(query, page_size=page_size)])


async def current_page(
    client: Client, clauses: Iterable[str], page_size: int, page_token: bytes | None
) -> tuple[list[WorkflowExecution], bytes | None]:
    """One page of such a list, paged across calls, and the token of the next page (None after the last): every run
    of the clauses that was running when its page was read is on some page; one that continued as new between two
    pages (its successor started after the first page) is on at least one, possibly more."""
    began, reached = (datetime.now(timezone.utc), None) if page_token is None else _unmarked(page_token)
    position = page_token[_MARK.size :] if page_token else None
    pages = client.list_workflows(listing_query(clauses, began), page_size=page_size, next_page_token=position)
    await pages.fetch_next_page()
    if reached is None and any(e.status != WorkflowExecutionStatus.RUNNING for e in pages.current_page):
        reached = datetime.now(timezone.utc)
    unseen = [e for e in pages.current_page if not (reached and e.close_time and e.close_time > reached)]
    following = pages.next_page_token
    return _one_per_workflow(unseen), _marked(began, reached) + following if following else None


def _marked(began: datetime, reached: datetime | None) -> bytes:
    return _MARK.pack(_micros(began), _micros(reached) if reached else 0)


def _unmarked(token: bytes) -> tuple[datetime, datetime | None]:
    began, reached = _MARK.unpack(token[: _MARK.size])
    return _at(began), _at(reached) if reached else None


def _micros(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


def _at(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, timezone.utc)


def _one_per_workflow(executions: list[WorkflowExecution]) -> list[WorkflowExecution]:
    """In first-seen order, each workflow's running run, else its latest closed one."""
    kept: dict[str, WorkflowExecution] = {}
    for execution in executions:
        held = kept.get(execution.id)
        if held is None or _later(execution, held):
            kept[execution.id] = execution
    return list(kept.values())


def _later(run: WorkflowExecution, than: WorkflowExecution) -> bool:
    if than.status == WorkflowExecutionStatus.RUNNING:
        return False
    if run.status == WorkflowExecutionStatus.RUNNING:
        return True
    return (run.close_time or run.start_time) > (than.close_time or than.start_time)
