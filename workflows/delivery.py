"""Workflow-side steps shared by Promise and resource workflows: run a pipeline, place outputs, write stores."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any, Callable

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.catalog import CatalogActivities, ReadCatalogInput
    from activities.platform_apply import PLATFORM_DESTINATION, AppliedRef, ApplyBackInput, PlatformApplyActivities
    from activities.pipelines import PipelineActivities, PipelineContext, PipelineRunResult, RunPipelineInput
    from activities.state_stores import DirectoryWrite, StateStoreActivities, StoreTarget, WriteStateStoreInput
    from domain.catalog import Catalog
    from domain.documents import GitStateStore, Pipeline
    from domain.naming import pipeline_task_queue
    from domain.scheduling import WorkloadGroup, effective_selector, place_dependency_group, place_resource_group
    from workflows import options


class Placement(BaseModel):
    """Where one workload group of one pipeline landed: which Destination, which store, which directory, which commit."""

    pipeline: str
    directory: str
    destination: str
    store_kind: str
    store_name: str
    path: str
    version_id: str = ""
    # On a platform Destination: the objects applied back into the platform from this group, and any refusals.
    applied: list[AppliedRef] = Field(default_factory=list)
    apply_errors: list[str] = Field(default_factory=list)

    @property
    def store_key(self) -> str:
        return f"{self.store_kind}/{self.store_name}"


class PendingGroup(BaseModel):
    pipeline: str
    directory: str
    selector: dict[str, str] = Field(default_factory=dict)


class PlannedWrite(BaseModel):
    placement: Placement
    write: DirectoryWrite


def iso(moment: datetime | None) -> str | None:
    """Kubernetes' timestamp format, as status fields carry it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def now_iso() -> str:
    return iso(workflow.now()) or ""


async def read_catalog() -> Catalog:
    return await workflow.execute_activity_method(
        CatalogActivities.read_catalog,
        ReadCatalogInput(),
        start_to_close_timeout=options.READ_TIMEOUT,
        retry_policy=options.READ_RETRY,
    )


async def run_pipeline(run_id: str, pipeline: Pipeline, obj: dict[str, Any], context: PipelineContext,
                       promise_selectors: dict[str, str]) -> PipelineRunResult:
    return await workflow.execute_activity_method(
        PipelineActivities.run_pipeline,
        RunPipelineInput(run_id=run_id, pipeline=pipeline, object=obj, context=context, promise_selectors=promise_selectors),
        task_queue=pipeline_task_queue(workflow.info().task_queue),
        start_to_close_timeout=options.PIPELINE_TIMEOUT,
        heartbeat_timeout=options.PIPELINE_HEARTBEAT,
        retry_policy=options.PIPELINE_RETRY,
    )


def store_target(catalog: Catalog, kind: str, name: str) -> StoreTarget | None:
    store = catalog.state_store(kind, name)
    if store is None:
        return None
    if isinstance(store, GitStateStore):
        return StoreTarget(kind="GitStateStore", name=name, git=store.spec)
    return StoreTarget(kind="BucketStateStore", name=name, bucket=store.spec)


def plan_resource_groups(
    catalog: Catalog,
    pipeline: str,
    groups: list[WorkloadGroup],
    artifact: str | None,
    previous: list[Placement],
    path_for: Callable[[str, str], str],
    rng: random.Random,
) -> tuple[list[PlannedWrite], list[PendingGroup]]:
    """One Destination per group, kept from the previous run when it still exists (sticky placement)."""
    views = catalog.destination_views()
    planned: list[PlannedWrite] = []
    pending: list[PendingGroup] = []
    for group in groups:
        selector = effective_selector(group.selectors)
        sticky = next((p.destination for p in previous if (p.pipeline, p.directory) == (pipeline, group.directory)
                       and p.destination in catalog.destinations), None)
        chosen = place_resource_group(views, selector, sticky, rng)
        if chosen is None:
            pending.append(PendingGroup(pipeline=pipeline, directory=group.directory, selector=selector))
            continue
        planned.append(_planned(catalog, pipeline, group, artifact, chosen, path_for))
    return planned, pending


def plan_dependency_groups(
    catalog: Catalog, pipeline: str, groups: list[WorkloadGroup], artifact: str | None, path_for: Callable[[str, str], str]
) -> tuple[list[PlannedWrite], list[PendingGroup]]:
    """Promise-level groups go to every matching Destination."""
    views = catalog.destination_views()
    planned: list[PlannedWrite] = []
    pending: list[PendingGroup] = []
    for group in groups:
        selector = effective_selector(group.selectors)
        targets = place_dependency_group(views, selector)
        if not targets:
            pending.append(PendingGroup(pipeline=pipeline, directory=group.directory, selector=selector))
        planned += [_planned(catalog, pipeline, group, artifact, name, path_for) for name in targets]
    return planned, pending


def _planned(catalog: Catalog, pipeline: str, group: WorkloadGroup, artifact: str | None, destination: str,
             path_for: Callable[[str, str], str]) -> PlannedWrite:
    dest = catalog.destinations[destination]
    path = path_for(dest.spec.path, group.directory)
    placement = Placement(
        pipeline=pipeline,
        directory=group.directory,
        destination=destination,
        store_kind=dest.spec.state_store_ref.kind,
        store_name=dest.spec.state_store_ref.name,
        path=path,
    )
    return PlannedWrite(placement=placement, write=DirectoryWrite(path=path, artifact=artifact, files=group.files))


async def write_placements(catalog: Catalog, planned: list[PlannedWrite], previous: list[Placement], message: str,
                           owner_labels: dict[str, str] | None = None) -> list[Placement]:
    """Write every planned directory and remove the previous ones no longer planned; one activity per store, in parallel.

    Groups placed on a platform Destination are then applied back into the platform, and objects applied from
    previous groups that are gone are deleted.
    """
    written = await _write_stores(catalog, planned, previous, message)
    return await _apply_to_platform(catalog, written, planned, previous, owner_labels or {})


def _is_platform(catalog: Catalog, destination: str) -> bool:
    dest = catalog.destinations.get(destination)
    return dest is not None and dest.metadata.annotations.get(PLATFORM_DESTINATION) == "true"


async def _apply_to_platform(catalog: Catalog, written: list[Placement], planned: list[PlannedWrite], previous: list[Placement],
                             labels: dict[str, str]) -> list[Placement]:
    def key(p: Placement) -> tuple[str, str]:
        return (p.store_key, p.path)

    writes = {key(p.placement): p.write for p in planned}
    before = {key(p): p.applied for p in previous if p.applied}
    calls: dict[tuple[str, str], ApplyBackInput] = {}
    for placement in written:
        if _is_platform(catalog, placement.destination):
            calls[key(placement)] = ApplyBackInput(labels=labels, write=writes[key(placement)], previous=before.get(key(placement), []))
    for gone, refs in before.items():
        calls.setdefault(gone, ApplyBackInput(labels=labels, previous=refs))
    if not calls:
        return written
    keys = list(calls)
    results = await asyncio.gather(*[
        workflow.execute_activity_method(
            PlatformApplyActivities.apply_to_platform, calls[k],
            start_to_close_timeout=options.READ_TIMEOUT, retry_policy=options.READ_RETRY,
        )
        for k in keys
    ])
    outcome = dict(zip(keys, results))
    return [p.model_copy(update={"applied": outcome[key(p)].applied, "apply_errors": outcome[key(p)].errors})
            if key(p) in outcome else p for p in written]


async def _write_stores(catalog: Catalog, planned: list[PlannedWrite], previous: list[Placement], message: str) -> list[Placement]:
    by_store: dict[str, WriteStateStoreInput] = {}
    placements = [p.placement for p in planned]
    kept_paths = {(p.store_key, p.path) for p in placements}

    def request(kind: str, name: str) -> WriteStateStoreInput | None:
        key = f"{kind}/{name}"
        if key not in by_store:
            target = store_target(catalog, kind, name)
            if target is None:
                return None  # the store was removed from the platform: nothing left to write to
            by_store[key] = WriteStateStoreInput(store=target, message=message)
        return by_store[key]

    for item in planned:
        req = request(item.placement.store_kind, item.placement.store_name)
        if req is not None:
            req.replace.append(item.write)
    for old in previous:
        if (old.store_key, old.path) not in kept_paths:
            req = request(old.store_kind, old.store_name)
            if req is not None and old.path not in req.delete:
                req.delete.append(old.path)
    keys = sorted(by_store)
    results = await asyncio.gather(*[
        workflow.execute_activity_method(
            StateStoreActivities.write_state_store,
            by_store[key],
            start_to_close_timeout=options.STATE_STORE_TIMEOUT,
            retry_policy=options.STATE_STORE_RETRY,
        )
        for key in keys
    ])
    versions = {key: result.version_id for key, result in zip(keys, results)}
    return [p.model_copy(update={"version_id": versions.get(p.store_key, "")}) for p in placements]


def replace_placements(current: list[Placement], previous: list[Placement], written: list[Placement]) -> list[Placement]:
    """The placements after a write: the ones it superseded or removed go, the ones it wrote come in."""
    dropped = {(p.store_key, p.path) for p in previous}
    return [p for p in current if (p.store_key, p.path) not in dropped] + written
