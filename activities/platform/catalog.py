"""Reads the platform catalog, Promise snapshots and object lists from Temporal itself (memo and visibility)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.catalog import Catalog
from domain.naming import CATALOG_WORKFLOW_ID, promise_workflow_id
from domain.promise_api import PromiseSnapshot
from domain.requirements import RequiredPromiseState
from domain.revisions import REVISION_QUERY, RevisionView
from domain.visibility import equals
from activities.platform.search_attributes import KIND, PROMISE, REQUIRES

CATALOG_MEMO_KEY = "catalog"
SNAPSHOT_MEMO_KEY = "snapshot"


class ReadCatalogInput(BaseModel):
    include_apis: bool = False


class ListResourcesInput(BaseModel):
    promise: str


class ListResourcesResult(BaseModel):
    workflow_ids: list[str] = Field(default_factory=list)


class ReadRequiredInput(BaseModel):
    names: list[str]


class ReadRequiredResult(BaseModel):
    found: dict[str, RequiredPromiseState] = Field(default_factory=dict)


class ListDependentsInput(BaseModel):
    promise: str


class ReadPromiseInput(BaseModel):
    name: str
    # A PromiseRevision's version (or `latest`) to read that revision, with its API's schema; None for the live
    # Promise's snapshot in its memo, which needs no worker.
    version: str | None = None


class ReadPromiseResult(BaseModel):
    snapshot: PromiseSnapshot | None = None


async def fetch_catalog(client: Client) -> Catalog:
    try:
        description = await client.get_workflow_handle(CATALOG_WORKFLOW_ID).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Catalog()
        raise
    return await description.memo_value(CATALOG_MEMO_KEY, default=Catalog(), type_hint=Catalog)


async def _running_promise(client: Client, name: str) -> WorkflowExecutionDescription | None:
    """The Promise's workflow as the server describes it (no worker involved), or None when it is not running."""
    try:
        description = await client.get_workflow_handle(promise_workflow_id(name)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description if description.status == WorkflowExecutionStatus.RUNNING else None


async def fetch_promise_snapshot(client: Client, name: str) -> PromiseSnapshot | None:
    description = await _running_promise(client, name)
    if description is None:
        return None
    return await description.memo_value(SNAPSHOT_MEMO_KEY, default=None, type_hint=PromiseSnapshot)


async def fetch_revision(client: Client, name: str, version: str) -> RevisionView | None:
    """One PromiseRevision, asked of its Promise's workflow (revisions' specs are too large for the memo)."""
    try:
        handle = client.get_workflow_handle(promise_workflow_id(name))
        return await handle.query(REVISION_QUERY, version, result_type=RevisionView)  # type: ignore[return-value]
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    except WorkflowQueryFailedError:
        return None  # the workflow has ended (the Promise was deleted) or fails to answer


# Revisions kept per worker: a rollout's requests read the same one or two.
_REVISIONS_KEPT = 32


class CatalogActivities:
    def __init__(self, client: Client):
        self.client = client
        # A revision as of one published state of its Promise (run, resourceVersion): a query is answered by the
        # Promise's workflow one at a time (about 20 ms each), so the hundreds of requests a rollout re-binds at once
        # share one query instead of queueing past their workflow tasks' timeout. Any change the Promise publishes
        # bumps its resourceVersion, so a kept revision is never one the Promise has changed since.
        self._revisions: dict[tuple[str, str, str, str], asyncio.Future[RevisionView | None]] = {}

    async def _revision(self, name: str, version: str) -> RevisionView | None:
        description = await _running_promise(self.client, name)
        if description is None:
            return None
        published = await description.memo_value("resourceVersion", default="")
        key = (name, version, description.run_id or "", str(published))
        kept = self._revisions.get(key)
        if kept is None or (kept.done() and (kept.cancelled() or kept.exception() is not None)):
            kept = asyncio.get_running_loop().create_future()
            self._revisions[key] = kept
            while len(self._revisions) > _REVISIONS_KEPT:
                del self._revisions[next(iter(self._revisions))]
            try:
                kept.set_result(await fetch_revision(self.client, name, version))
            except asyncio.CancelledError:
                kept.cancel()  # the activity that fetched was cancelled: the next reader fetches again
                raise
            except Exception as exc:
                kept.set_exception(exc)
                raise
        return await asyncio.shield(kept)

    @activity.defn
    async def read_catalog(self, input: ReadCatalogInput) -> Catalog:
        catalog = await fetch_catalog(self.client)
        if not input.include_apis:
            catalog.apis = {}  # schemas can be large; placement only needs destinations and stores
        return catalog

    @activity.defn
    async def read_promise(self, input: ReadPromiseInput) -> ReadPromiseResult:
        if input.version is not None:
            revision = await self._revision(input.name, input.version)
            return ReadPromiseResult(snapshot=revision.snapshot if revision else None)
        return ReadPromiseResult(snapshot=await fetch_promise_snapshot(self.client, input.name))

    @activity.defn
    async def list_promise_resources(self, input: ListResourcesInput) -> ListResourcesResult:
        query = f'{equals(PROMISE.name, input.promise)} AND {KIND.name} != "Promise" AND ExecutionStatus = "Running"'
        ids = [w.id async for w in self.client.list_workflows(query)]
        return ListResourcesResult(workflow_ids=sorted(ids))

    @activity.defn
    async def read_required_promises(self, input: ReadRequiredInput) -> ReadRequiredResult:
        found: dict[str, RequiredPromiseState] = {}
        for name in input.names:
            snapshot = await fetch_promise_snapshot(self.client, name)
            if snapshot is not None:
                found[name] = RequiredPromiseState(name=name, available=snapshot.available, versions=snapshot.versions)
        return ReadRequiredResult(found=found)

    @activity.defn
    async def list_dependent_promises(self, input: ListDependentsInput) -> ListResourcesResult:
        """Promises whose `requiredPromises` name this one."""
        query = (
            f'{equals(KIND.name, "Promise")} AND {equals(REQUIRES.name, input.promise)} AND ExecutionStatus = "Running"'
        )
        return ListResourcesResult(workflow_ids=sorted([w.id async for w in self.client.list_workflows(query)]))
