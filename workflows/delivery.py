"""Workflow-side delivery shared by Promise and resource workflows: run a pipeline, place its outputs, write stores.

A pipeline's output is kept (artifact reference and workload groups, never the bytes), so it can be placed again
without re-running the pipeline: when a Destination appears or is relabelled, when a store write failed, when a
Destination is re-synced to repair drift, or when a deleted Destination's files are cleaned up.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any, Callable

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.platform.catalog import CatalogActivities, ReadCatalogInput
    from activities.platform.config import ConfigActivities, ReadConfigInput
    from activities.platform.apply import PLATFORM_DESTINATION, AppliedRef, ApplyBackInput, PlatformApplyActivities
    from activities.pipelines.models import PipelineContext, PipelineRunResult, RunPipelineInput
    from activities.pipelines.activity import PipelineActivities
    from activities.stores.state_stores import StateStoreActivities, StoreTarget, WriteStateStoreInput
    from activities.stores.writes import GroupWrite
    from domain.catalog import Catalog
    from domain.config import PlatformConfig
    from domain.documents import Destination, Pipeline
    from domain.dry_run import DRY_RUN
    from domain.layout import (
        FilepathMode,
        Slot,
        group_slot,
        nested_dir,
        resource_nested_root,
        work_name,
        workplacement_name,
    )
    from domain.naming import pipeline_task_queue
    from domain.scheduling import WorkloadGroup, candidates, effective_selector, matches
    from workflows import options
    from workflows import patches
    from workflows.publishing import held_publishing


class Placement(BaseModel):
    """Where one workload group of one pipeline landed: which Destination, which store, which path, which version."""

    pipeline: str
    directory: str
    destination: str
    store_kind: str
    store_name: str
    mode: FilepathMode = "nestedByMetadata"
    path: str
    key: str = ""
    version_id: str = ""
    # The Destination's labels no longer match; Kratix keeps such placements (and keeps updating them).
    misplaced: bool = False
    # The last write (or removal) of this group failed with this error; it is retried.
    error: str | None = None
    removing: bool = False
    # On a platform Destination: the objects applied back into the platform from this group, and any refusals.
    applied: list[AppliedRef] = Field(default_factory=list)
    apply_errors: list[str] = Field(default_factory=list)

    @property
    def store_key(self) -> str:
        return f"{self.store_kind}/{self.store_name}"

    @property
    def slot(self) -> Slot:
        return Slot(mode=self.mode, path=self.path, key=self.key)

    @property
    def slot_id(self) -> tuple[str, str, str, str]:
        return (self.store_key, self.mode, self.path, self.key)


class PendingGroup(BaseModel):
    pipeline: str
    directory: str
    selector: dict[str, str] = Field(default_factory=dict)


class PipelineOutput(BaseModel):
    """What one pipeline produced, as Kratix's Work holds it, plus how its WorkPlacements are named and laid out."""

    pipeline: str
    groups: list[WorkloadGroup] = Field(default_factory=list)
    artifact: str | None = None
    inline: dict[str, str] = Field(default_factory=dict)
    # Promise-level output goes to every matching Destination; a resource's to one, kept once chosen.
    dependency: bool
    identifier: str
    namespace: str
    # nestedByMetadata directory of the group, under the Destination path, before the group id:
    # e.g. resources/ns/p/r/pipe
    nested_root: str

    @classmethod
    def of_resource(
        cls,
        promise: str,
        namespace: str,
        name: str,
        pipeline: str,
        groups: list[WorkloadGroup],
        artifact: str | None,
        inline: dict[str, str],
    ) -> "PipelineOutput":
        """A resource request's output, named and laid out as Kratix lays out request `name`'s Work."""
        return cls(
            pipeline=pipeline,
            groups=groups,
            artifact=artifact,
            inline=inline,
            dependency=False,
            identifier=f"{promise}-{name}-{pipeline}",
            namespace=namespace,
            nested_root=resource_nested_root(namespace, promise, name, pipeline),
        )


class PlannedWrite(BaseModel):
    placement: Placement
    write: GroupWrite


class DeliveryPlan(BaseModel):
    placements: list[Placement] = Field(default_factory=list)
    writes: list[PlannedWrite] = Field(default_factory=list)
    removals: list[Placement] = Field(default_factory=list)
    pending: list[PendingGroup] = Field(default_factory=list)


def iso(moment: datetime | None) -> str | None:
    """Kubernetes' timestamp format, as status fields carry it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def now_iso() -> str:
    return iso(workflow.now()) or ""


async def read(activity: Callable[..., Any], arg: BaseModel, *, remote: bool = False) -> Any:
    """One read of Temporal's own state (catalog, memos, visibility) by an activity of
    `activities/platform/catalog.py`. A local activity holds its workflow task's slot while it runs, so a read that
    another workflow answers (a query, answered in a slot of the same worker) is `remote`: as local ones, as many of
    them at once as the worker has slots left none to answer in."""
    if not remote and patches.patched(patches.LOCAL_READS):
        with held_publishing():
            return await workflow.execute_local_activity_method(
                activity, arg, start_to_close_timeout=options.READ_TIMEOUT, retry_policy=options.READ_RETRY
            )
    return await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=options.READ_TIMEOUT, retry_policy=options.READ_RETRY
    )


async def read_catalog() -> Catalog:
    return await read(CatalogActivities.read_catalog, ReadCatalogInput())


async def read_platform_config() -> PlatformConfig:
    """The worker's platform configuration, through a local activity so a changed setting never breaks replay."""
    with held_publishing():
        return await workflow.execute_local_activity_method(
            ConfigActivities.read_platform_config, ReadConfigInput(), start_to_close_timeout=options.LOCAL_TIMEOUT
        )


async def run_pipeline(
    run_id: str,
    pipeline: Pipeline,
    obj: dict[str, Any],
    context: PipelineContext,
    promise_selectors: dict[str, str],
    timeout_s: float,
) -> PipelineRunResult:
    """The runner stops the containers at `timeout_s`; the activity may take a little longer to report it."""
    timeout = options.PIPELINE_TIMEOUT
    if patches.patched(patches.PIPELINE_DEADLINE):
        timeout = timedelta(seconds=timeout_s) + options.PIPELINE_REPORT_GRACE
    return await workflow.execute_activity_method(
        PipelineActivities.run_pipeline,
        RunPipelineInput(
            run_id=run_id,
            pipeline=pipeline,
            object=obj,
            context=context,
            promise_selectors=promise_selectors,
            timeout_s=timeout_s,
        ),
        task_queue=pipeline_task_queue(workflow.info().task_queue),
        start_to_close_timeout=timeout,
        heartbeat_timeout=options.PIPELINE_HEARTBEAT,
        retry_policy=options.PIPELINE_RETRY,
    )


def store_target(catalog: Catalog, kind: str, name: str) -> StoreTarget | None:
    store = catalog.state_store(kind, name)
    return StoreTarget.of(store) if store is not None else None


def _placement(output: PipelineOutput, directory: str, dest: Destination) -> Placement:
    spec = dest.spec
    wp = workplacement_name(work_name(output.identifier), dest.metadata.name, directory)
    slot = group_slot(
        spec.filepath.mode,
        spec.path,
        nested_dir(spec.path, output.nested_root, directory),
        output.namespace,
        wp,
        spec.filepath.filename,
    )
    return Placement(
        pipeline=output.pipeline,
        directory=directory,
        destination=dest.metadata.name,
        store_kind=spec.state_store_ref.kind,
        store_name=spec.state_store_ref.name,
        mode=slot.mode,
        path=slot.path,
        key=slot.key,
    )


def plan_output(
    catalog: Catalog,
    output: PipelineOutput,
    previous: list[Placement],
    rng: random.Random,
    rewrite: Callable[[Placement], bool],
    dry_run: bool | None = None,
) -> DeliveryPlan:
    """Kratix's scheduler for one Work: existing placements stay (flagged misplaced when their Destination no longer
    matches), unplaced groups get a Destination, dependency groups spread to every new match.

    Only new placements, moved slots, failed ones and those `rewrite` selects are written: a Destination change
    never rewrites what already sits where it belongs. Placements on Destinations that no longer exist are dropped
    without touching their files (Kratix leaves them), unless that Destination was deleted with `cleanup: all`.

    `dry_run` splits the Destinations as Kratix's scheduler does: False, a real output never goes to one labelled
    `kratix.io/dry-run: "true"`; True, a DryRun's output goes only there. None (histories from before) sees all.
    """
    views = catalog.destination_views()
    if dry_run is not None:
        views = [d for d in views if is_dry_run_destination(d.labels) == dry_run]
    view = {d.name: d for d in views}
    plan = DeliveryPlan()
    live_dirs = {g.directory for g in output.groups}
    for p in previous:
        if p.removing or p.directory not in live_dirs:
            plan.removals.append(p)
    for group in output.groups:
        selector = effective_selector(group.selectors)
        existing = [p for p in previous if p.directory == group.directory and not p.removing]
        kept = [p for p in existing if p.destination in catalog.destinations]
        if not output.dependency:
            kept = kept[:1]
        plan.removals += [p for p in existing if p not in kept]
        matching = candidates(views, selector)
        if output.dependency:
            targets = [d.name for d in matching if d.name not in {p.destination for p in kept}]
        elif kept:
            targets = []
        else:
            targets = [rng.choice(matching).name] if matching else []
        if not kept and not targets:
            plan.pending.append(PendingGroup(pipeline=output.pipeline, directory=group.directory, selector=selector))
            continue
        for old in kept:
            fresh = _placement(output, group.directory, catalog.destinations[old.destination])
            current = old.model_copy(update={"misplaced": not matches(view[old.destination], selector)})
            if fresh.slot_id != old.slot_id:  # the Destination's path changed: move the files
                plan.removals.append(old)
                current = current.model_copy(
                    update={"mode": fresh.mode, "path": fresh.path, "key": fresh.key, "version_id": ""}
                )
            plan.placements.append(current)
            if fresh.slot_id != old.slot_id or old.error or rewrite(old):
                plan.writes.append(_write(output, group, current))
        for name in targets:
            placed = _placement(output, group.directory, catalog.destinations[name])
            plan.placements.append(placed)
            plan.writes.append(_write(output, group, placed))
    plan.removals = [p for p in plan.removals if catalog.holds_files_for(p.destination)]
    return plan


def is_dry_run_destination(labels: dict[str, str]) -> bool:
    return labels.get(DRY_RUN) == "true"


def _write(output: PipelineOutput, group: WorkloadGroup, placement: Placement) -> PlannedWrite:
    write = GroupWrite(slot=placement.slot, artifact=output.artifact, files=group.files, inline=output.inline)
    return PlannedWrite(placement=placement, write=write)


def plan_removal(catalog: Catalog, placements: list[Placement]) -> DeliveryPlan:
    return DeliveryPlan(removals=[p for p in placements if catalog.holds_files_for(p.destination)])


async def deliver(
    catalog: Catalog, plans: list[DeliveryPlan], message: str, owner_labels: dict[str, str]
) -> list[Placement]:
    """Carry out plans: one write activity per store, in parallel, then apply-back on platform Destinations.

    Returns the placements after delivery, with each write's version or error; a removal that failed stays as a
    `removing` placement so the next delivery retries it.
    """
    writes = [w for plan in plans for w in plan.writes]
    removals = [p for plan in plans for p in plan.removals]
    outcomes = await _write_stores(catalog, writes, removals, message)
    written_ids = {w.placement.slot_id for w in writes}
    placements: list[Placement] = []
    for plan in plans:
        for p in plan.placements:
            if p.slot_id in written_ids and p.store_key in outcomes:
                version, error = outcomes[p.store_key]
                # An unchanged bucket write has no new version: the placement keeps the one it had.
                p = p.model_copy(
                    update={"version_id": (version or p.version_id) if error is None else p.version_id, "error": error}
                )
            placements.append(p)
    for old in removals:
        error = outcomes.get(old.store_key, ("", None))[1]
        if error is not None and old.slot_id not in written_ids:
            placements.append(old.model_copy(update={"removing": True, "error": error}))
    return await _apply_to_platform(catalog, placements, writes, removals, owner_labels)


def _is_platform(catalog: Catalog, destination: str) -> bool:
    dest = catalog.destinations.get(destination)
    return dest is not None and dest.metadata.annotations.get(PLATFORM_DESTINATION) == "true"


async def _apply_to_platform(
    catalog: Catalog,
    placements: list[Placement],
    writes: list[PlannedWrite],
    removals: list[Placement],
    labels: dict[str, str],
) -> list[Placement]:
    written = {w.placement.slot_id: w.write for w in writes}
    before = {p.slot_id: p.applied for p in removals if p.applied}
    calls: dict[tuple[str, str, str, str], ApplyBackInput] = {}
    for placement in placements:
        if placement.slot_id in written and placement.error is None and _is_platform(catalog, placement.destination):
            calls[placement.slot_id] = ApplyBackInput(
                labels=labels,
                write=written[placement.slot_id],
                previous=before.pop(placement.slot_id, placement.applied),
            )
    for gone, refs in before.items():
        calls.setdefault(gone, ApplyBackInput(labels=labels, previous=refs))
    if not calls:
        return placements
    keys = list(calls)
    results = await asyncio.gather(
        *[
            workflow.execute_activity_method(
                PlatformApplyActivities.apply_to_platform,
                calls[k],
                start_to_close_timeout=options.READ_TIMEOUT,
                retry_policy=options.READ_RETRY,
            )
            for k in keys
        ]
    )
    outcome = dict(zip(keys, results))
    return [
        p.model_copy(update={"applied": outcome[p.slot_id].applied, "apply_errors": outcome[p.slot_id].errors})
        if p.slot_id in outcome
        else p
        for p in placements
    ]


async def _write_stores(
    catalog: Catalog, writes: list[PlannedWrite], removals: list[Placement], message: str
) -> dict[str, tuple[str, str | None]]:
    """{store key: (version id, error)} for every store written."""
    by_store: dict[str, WriteStateStoreInput] = {}
    missing: dict[str, tuple[str, str | None]] = {}

    def request(kind: str, name: str) -> WriteStateStoreInput | None:
        key = f"{kind}/{name}"
        if key not in by_store:
            target = store_target(catalog, kind, name)
            if target is None:
                missing[key] = ("", f"{kind} {name!r} does not exist")
                return None
            by_store[key] = WriteStateStoreInput(store=target, message=message)
        return by_store[key]

    written = {w.placement.slot_id for w in writes}
    for old in removals:
        req = request(old.store_kind, old.store_name)
        # A slot that is also rewritten in this batch is replaced wholesale; removing it first would be redundant.
        if req is not None and old.slot_id not in written and old.slot not in req.remove:
            req.remove.append(old.slot)
    for item in writes:
        req = request(item.placement.store_kind, item.placement.store_name)
        if req is not None:
            req.replace.append(item.write)
    keys = sorted(by_store)
    results = await asyncio.gather(
        *[
            workflow.execute_activity_method(
                StateStoreActivities.write_state_store,
                by_store[key],
                start_to_close_timeout=options.STATE_STORE_TIMEOUT,
                retry_policy=options.STATE_STORE_RETRY,
            )
            for key in keys
        ]
    )
    return {**missing, **{key: (result.version_id, result.error) for key, result in zip(keys, results)}}
