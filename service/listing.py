"""Lists of objects read from visibility, whole while their workflows continue as new.

A run that continues as new closes (ContinuedAsNew) and its successor starts with a newer start time. Visibility
orders running workflows newest start first and pages by position, so a successor started while a list is paged lands
on a page already read, and its predecessor is no longer Running: a list of running workflows alone loses the object.
A list therefore also reads the runs closed by continuing as new since it began (closed workflows come after every
running one, so they are read last) and keeps one run per workflow: the running one, else the latest closed.
"""

from __future__ import annotations

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


def listing_query(clauses: Iterable[str], began: datetime) -> str:
    """The running workflows the clauses select, and their runs that continued as new since `began` (less the lag)."""
    continued = f"{CONTINUED_AS_NEW} AND {closed_since(began - VISIBILITY_LAG)}"
    return " AND ".join([*clauses, f"({RUNNING} OR ({continued}))"])


async def current_runs(
    client: Client, clauses: Iterable[str], page_size: int = LIST_PAGE_SIZE
) -> list[WorkflowExecution]:
    """One run per workflow the clauses select that was running at some moment of the list, in visibility's order."""
    query = listing_query(clauses, datetime.now(timezone.utc))
    kept: dict[str, WorkflowExecution] = {}
    async for execution in client.list_workflows(query, page_size=page_size):
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
