"""The embedded stack's Temporal database gives disk space back: with the pragmas `ktx up` starts the dev server with
(cli/stack.py), the file shrinks once closed runs are deleted, as retention deletes them. Without auto_vacuum the same
deletes only move pages to SQLite's free list and the file keeps its high-water mark, which is what the control run
shows, so the first assertion can fail."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.testing import WorkflowEnvironment

from cli.stack import TEMPORAL_SQLITE_PRAGMAS, sqlite_pragma_args
from tests.conftest import temporal_cli
from tests.waiting import eventually

RUNS = 40
# Each run's input: big enough that the runs' histories are most of the file, small enough for a payload.
PAYLOAD = "x" * 200_000


def pages(db: Path) -> tuple[int, int, int]:
    """The file's pages, how many of them are free, and their size, read beside the running server (WAL allows it)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        count = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    return count, free, size


async def fill_and_delete(env: WorkflowEnvironment, db: Path) -> tuple[int, int]:
    """RUNS closed runs of PAYLOAD each, then each deleted: the page count at its peak, and how many pages the
    payloads fill."""
    client = env.client
    ids = [f"space-{uuid.uuid4().hex[:8]}" for _ in range(RUNS)]
    handles = [await client.start_workflow("NoWorker", PAYLOAD, id=i, task_queue="none") for i in ids]
    await asyncio.gather(*(h.terminate("filled") for h in handles))
    peak, _, page_size = pages(db)
    for workflow_id in ids:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )
    return peak, RUNS * len(PAYLOAD) // page_size


@pytest.mark.parametrize("auto_vacuum", [True, False], ids=["stack-pragmas", "control-without-auto-vacuum"])
async def test_deleted_runs_give_their_space_back(tmp_path: Path, auto_vacuum: bool) -> None:
    pragmas = tuple(p for p in TEMPORAL_SQLITE_PRAGMAS if auto_vacuum or not p.startswith("auto_vacuum"))
    db = tmp_path / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=str(db),
        dev_server_extra_args=[*sqlite_pragma_args(pragmas), "--log-level", "error"],
    )
    try:
        peak, payload_pages = await fill_and_delete(env, db)
        assert peak > payload_pages, f"the runs did not reach the file: {peak} pages for {payload_pages} of payload"
        if auto_vacuum:
            # The payloads' pages leave the file itself.
            await eventually(lambda: pages(db)[0], lambda n: n < peak - payload_pages // 2, 60, "the file to shrink")
        else:
            # They are freed, yet the file stays as large as it was.
            await eventually(lambda: pages(db)[1], lambda n: n > payload_pages // 2, 60, "the runs' pages to be freed")
            assert pages(db)[0] >= peak
    finally:
        await env.shutdown()
