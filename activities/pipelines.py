"""The pipeline activity: one Kratix Pipeline run by the configured runner (podman here, or a Kubernetes Job), then its
output stored as an artifact and its metadata files read."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import yaml
from temporalio import activity

from activities.artifacts import ArtifactStore
from activities.output_files import METADATA_MOUNT, UnfollowedLink, read_regular, resolve_in_tree
from activities.metrics import observe_pipeline
from activities.pipeline_models import ContainerRun, ContainersOutcome, PipelineRunResult, RunPipelineInput
from domain.actions import ACTIONS_FILE, parse_requested_actions
from domain.errors import FieldError, InvalidDocument
from domain.scheduling import SelectorSource, build_groups, parse_destination_selectors


def _read_yaml(metadata: Path, name: str) -> Any:
    path = metadata / name
    if path.is_symlink():
        try:
            path = metadata.joinpath(*resolve_in_tree(metadata, name, METADATA_MOUNT).parts)
        except UnfollowedLink as exc:
            raise InvalidDocument([FieldError(f"{METADATA_MOUNT / name}", str(exc))]) from exc
    elif not path.is_file():
        return None
    try:
        return yaml.safe_load(read_regular(path).decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        raise InvalidDocument([FieldError(f"/kratix/metadata/{path.name}", f"invalid YAML: {exc}")]) from exc


class PipelineRunner(Protocol):
    """Runs a pipeline's containers in order; reads `workspace`/input, leaves output/ and metadata/ filled there."""

    name: str

    async def run(self, input: RunPipelineInput, workspace: Path) -> ContainersOutcome: ...


class PipelineActivities:
    def __init__(self, runner: PipelineRunner, artifacts: ArtifactStore):
        self.runner = runner
        self.artifacts = artifacts

    @activity.defn
    async def run_pipeline(self, input: RunPipelineInput) -> PipelineRunResult:
        """A failed container is a result, not an exception: the workflow records which one failed and why."""
        workspace = Path(tempfile.mkdtemp(prefix="ktx-pipeline-"))
        started = time.monotonic()
        try:
            for directory in ("input", "output", "metadata"):
                (workspace / directory).mkdir()
            (workspace / "input" / "object.yaml").write_text(yaml.safe_dump(input.object, sort_keys=False))
            outcome = await self.runner.run(input, workspace)
            if outcome.succeeded:
                result = await asyncio.to_thread(self._collect, input, workspace / "output", workspace / "metadata",
                                                 outcome.containers)
            else:
                result = PipelineRunResult(succeeded=False, failed_container=outcome.failed_container, message=outcome.message,
                                           containers=outcome.containers)
            observe_pipeline(input.context.promise_name, input.context.workflow_type, input.context.action, self.runner.name,
                             result.succeeded, time.monotonic() - started)
            return result
        finally:
            await asyncio.to_thread(shutil.rmtree, workspace, True)

    def _collect(self, input: RunPipelineInput, output: Path, metadata: Path, runs: list[ContainerRun]) -> PipelineRunResult:
        try:
            status = _read_yaml(metadata, "status.yaml")
            control = _read_yaml(metadata, "workflow-control.yaml")
            selectors = _read_yaml(metadata, "destination-selectors.yaml") if input.context.action == "configure" else None
            entries = parse_destination_selectors(selectors)
            actions = parse_requested_actions(_read_yaml(metadata, ACTIONS_FILE)) if input.context.action == "configure" else []
        except InvalidDocument as exc:
            return PipelineRunResult(succeeded=False, message=str(exc), containers=runs)
        if input.context.action == "delete":
            return PipelineRunResult(succeeded=True, containers=runs, status=status, workflow_control=control)
        try:
            digest, files = self.artifacts.put_tree(output)
        except UnfollowedLink as exc:
            return PipelineRunResult(succeeded=False, message=str(exc), containers=runs)
        source = SelectorSource.PROMISE_WORKFLOW if input.context.workflow_type == "promise" else SelectorSource.RESOURCE_WORKFLOW
        groups = build_groups(files, entries, source, input.promise_selectors)
        return PipelineRunResult(
            succeeded=True, containers=runs, status=status, workflow_control=control, groups=groups, artifact=digest,
            actions=actions,
        )
