"""The pipeline activity: one Kratix Pipeline run by the configured runner (podman here, or a Kubernetes Job), then its
output stored as an artifact and its metadata files read."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from temporalio import activity

from activities.artifacts.store import ArtifactStore
from activities.artifacts.output_files import (
    METADATA_MOUNT,
    OUTPUT_MOUNT,
    OverLimit,
    UnfollowedLink,
    read_regular,
    resolve_in_tree,
)
from activities.metrics import observe_pipeline
from activities.pipelines.models import ContainerRun, ContainersOutcome, PipelineRunResult, RunPipelineInput
from activities.pipelines.workspaces import Workspaces
from domain.actions import ACTIONS_FILE, parse_requested_actions
from domain.errors import FieldError, InvalidDocument
from domain.kube_yaml import marshal
from domain.layout import reserved_output_path
from domain.parsing import MalformedInput, load_metadata
from domain.scheduling import SelectorSource, build_groups, parse_destination_selectors
from domain.status import STATUS_MAX_BYTES, check_status_file
from domain.workflow_control import parse_workflow_control


# Everything a pipeline leaves is bounded before it becomes the activity's result, a Temporal payload of at most 2 MB
# (the server rejects a larger one and the object's workflow would lose the run), and before the object's workflow
# keeps it in its state (one payload too, beside a document of up to 1 MiB).
# - Metadata files, as written: status.yaml up to the status limit (256 KiB, domain/status.py); the control and
#   selector files hold a few lines (16 and 64 KiB); actions.yaml a few requests (64 KiB).
METADATA_MAX_BYTES = {
    "status.yaml": STATUS_MAX_BYTES,
    "workflow-control.yaml": 16 * 1024,
    "destination-selectors.yaml": 64 * 1024,
    ACTIONS_FILE: 64 * 1024,
}
# - Output: the file list travels in the result, the workflow's state and each state-store write's input. 5,000 files
#   and 128 KiB of names is over twice the 2,000-file output the large-output test delivers; Kratix keeps a whole
#   output in one Work object, at most 1.5 MB in etcd.
MAX_OUTPUT_FILES = 5_000
MAX_OUTPUT_NAME_BYTES = 128 * 1024
# - A failure's reason is shown in status and events: the first 4 KiB say what went wrong.
MAX_MESSAGE = 4096
# - What a runner could not apply, one line a field: 64 lines is more than a Pipeline naming every ignored field
#   has, 512 characters more than any one needs.
MAX_NOTES, MAX_NOTE = 64, 512
# - And the whole result, whatever the above missed, stays at half a payload.
MAX_RESULT_BYTES = 1024 * 1024


def _read_metadata(metadata: Path, name: str) -> Any:
    """One metadata file read within its bounds, as the API reads a request; InvalidDocument naming the file."""
    field = f"{METADATA_MOUNT / name}"
    path = metadata / name
    if path.is_symlink():
        try:
            path = metadata.joinpath(*resolve_in_tree(metadata, name, METADATA_MOUNT).parts)
        except UnfollowedLink as exc:
            raise InvalidDocument([FieldError(field, str(exc))]) from exc
    elif not path.is_file():
        return None
    try:
        return load_metadata(read_regular(path, METADATA_MAX_BYTES[name]).decode("utf-8", errors="replace"))
    except OverLimit as exc:
        raise InvalidDocument([FieldError(field, str(exc))]) from exc
    except MalformedInput as exc:
        raise InvalidDocument([FieldError(field, f"invalid YAML: {exc}")]) from exc


def _failed(message: str, runs: list[ContainerRun]) -> PipelineRunResult:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]}... ({len(message)} characters)"
    return PipelineRunResult(succeeded=False, message=message, containers=runs)


class PipelineRunner(Protocol):
    """Runs a pipeline's containers in order; reads `workspace`/input, leaves output/ and metadata/ filled there."""

    name: str

    async def run(self, input: RunPipelineInput, workspace: Path) -> ContainersOutcome: ...


class TenantSlots:
    """How many pipelines each tenant runs on this worker, and the most one may: one team's hung or slow runs cannot
    take every slot. A run over its tenant's share is handed back at once (PipelineRunResult.deferred), so it never
    holds one of the worker's Temporal slots while it waits: holding it would starve the others just the same.
    Activities share the worker's event loop, so plain counts need no lock."""

    def __init__(self, per_tenant: int | None = None):
        self.per_tenant = per_tenant
        self.running: dict[str, int] = {}

    def take(self, tenant: str) -> bool:
        held = self.running.get(tenant, 0)
        if self.per_tenant is not None and held >= self.per_tenant:
            return False
        self.running[tenant] = held + 1
        return True

    def give_back(self, tenant: str) -> None:
        held = self.running.get(tenant, 0) - 1
        if held > 0:
            self.running[tenant] = held
        else:
            self.running.pop(tenant, None)

    def refusal(self, tenant: str) -> str:
        return (
            f"waiting for a pipeline slot: {tenant} already runs {self.running.get(tenant, 0)} pipelines on worker "
            f"{socket.gethostname()}, the most one tenant may run at once there"
        )


class PipelineActivities:
    def __init__(
        self,
        runner: PipelineRunner,
        artifacts: ArtifactStore,
        workspaces: Workspaces | None = None,
        slots: TenantSlots | None = None,
    ):
        self.runner = runner
        self.artifacts = artifacts
        self.slots = slots or TenantSlots()
        # The worker's own directory, swept of dead workers' runs (activities/pipelines/workspaces.py); the system's
        # temporary directory for a bare activity in tests.
        self.workspaces = workspaces

    @activity.defn
    async def run_pipeline(self, input: RunPipelineInput) -> PipelineRunResult:
        """A failed container is a result, not an exception: the workflow records which one failed and why."""
        tenant = input.tenant
        if not self.slots.take(tenant):
            return PipelineRunResult(succeeded=False, deferred=True, message=self.slots.refusal(tenant))
        try:
            return await self._run(input)
        finally:
            self.slots.give_back(tenant)

    async def _run(self, input: RunPipelineInput) -> PipelineRunResult:
        workspace = self.workspaces.new() if self.workspaces else Path(tempfile.mkdtemp(prefix="ktx-pipeline-"))
        started = time.monotonic()
        try:
            for directory in ("input", "output", "metadata"):
                (workspace / directory).mkdir()
            # As Kratix's reader writes it, so a pipeline copying parts of the object produces the same bytes.
            (workspace / "input" / "object.yaml").write_text(marshal(input.object), encoding="utf-8")
            outcome = await self.runner.run(input, workspace)
            if outcome.succeeded:
                result = await asyncio.to_thread(
                    self._collect, input, workspace / "output", workspace / "metadata", outcome.containers
                )
            else:
                result = PipelineRunResult(
                    succeeded=False,
                    failed_container=outcome.failed_container,
                    message=outcome.message,
                    containers=outcome.containers,
                )
            if outcome.notes:
                result = result.model_copy(update={"notes": [n[:MAX_NOTE] for n in outcome.notes[:MAX_NOTES]]})
            observe_pipeline(
                input.context.promise_name,
                input.context.workflow_type,
                input.context.action,
                self.runner.name,
                result.succeeded,
                time.monotonic() - started,
            )
            return result
        finally:
            await asyncio.to_thread(shutil.rmtree, workspace, True)

    def _collect(
        self, input: RunPipelineInput, output: Path, metadata: Path, runs: list[ContainerRun]
    ) -> PipelineRunResult:
        """What the pipeline left, validated as the workflow will read it: a bad file is a failed pipeline here, with
        the reason, never a result the workflow cannot take."""
        try:
            status = check_status_file(_read_metadata(metadata, "status.yaml"))
            control = _read_metadata(metadata, "workflow-control.yaml")
            parse_workflow_control(control)
            selectors = (
                _read_metadata(metadata, "destination-selectors.yaml") if input.context.action == "configure" else None
            )
            entries = parse_destination_selectors(selectors)
            actions = (
                parse_requested_actions(_read_metadata(metadata, ACTIONS_FILE))
                if input.context.action == "configure"
                else []
            )
        except InvalidDocument as exc:
            return _failed(str(exc), runs)
        if input.context.action == "delete":
            result = PipelineRunResult(succeeded=True, containers=runs, status=status, workflow_control=control)
        else:
            try:
                digest, files = self.artifacts.put_tree(
                    output, max_files=MAX_OUTPUT_FILES, max_name_bytes=MAX_OUTPUT_NAME_BYTES
                )
            except (UnfollowedLink, OverLimit) as exc:
                return _failed(str(exc), runs)
            except UnicodeEncodeError:
                return _failed(f"a file in {OUTPUT_MOUNT} has a name that is not UTF-8", runs)
            refused = [f"{OUTPUT_MOUNT / path}: {reason}" for path in files if (reason := reserved_output_path(path))]
            if refused:
                more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
                return _failed(f"{refused[0]}{more}", runs)
            source = (
                SelectorSource.PROMISE_WORKFLOW
                if input.context.workflow_type == "promise"
                else SelectorSource.RESOURCE_WORKFLOW
            )
            groups = build_groups(files, entries, source, input.promise_selectors)
            result = PipelineRunResult(
                succeeded=True,
                containers=runs,
                status=status,
                workflow_control=control,
                groups=groups,
                artifact=digest,
                actions=actions,
            )
        size = len(result.model_dump_json())
        if size > MAX_RESULT_BYTES:
            return _failed(
                f"the pipeline's metadata and output list come to {size} bytes, over the limit of "
                f"{MAX_RESULT_BYTES}: write fewer or smaller files",
                runs,
            )
        return result
