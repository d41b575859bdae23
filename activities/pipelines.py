"""The pipeline activity: one Kratix Pipeline (one Kubernetes Job in Kratix) run as a sequence of containers."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.artifacts import ArtifactStore
from activities.container_runtime import ContainerRuntime, container_name, log_tail
from domain.actions import ACTIONS_FILE, Action, parse_requested_actions
from domain.documents import Pipeline
from domain.errors import FieldError, InvalidDocument
from domain.scheduling import SelectorSource, WorkloadGroup, build_groups, parse_destination_selectors


class PipelineContext(BaseModel):
    """Everything that becomes a KRATIX_* environment variable."""

    workflow_type: Literal["promise", "resource"]
    action: Literal["configure", "delete"]
    promise_name: str
    object_kind: str
    object_group: str
    object_version: str
    object_name: str
    object_namespace: str = ""
    crd_plural: str
    cluster_scoped: bool

    def env(self, pipeline_name: str) -> dict[str, str]:
        return {
            "KRATIX_WORKFLOW_ACTION": self.action,
            "KRATIX_WORKFLOW_TYPE": self.workflow_type,
            "KRATIX_PROMISE_NAME": self.promise_name,
            "KRATIX_PIPELINE_NAME": pipeline_name,
            "KRATIX_OBJECT_KIND": self.object_kind,
            "KRATIX_OBJECT_GROUP": self.object_group,
            "KRATIX_OBJECT_VERSION": self.object_version,
            "KRATIX_OBJECT_NAME": self.object_name,
            "KRATIX_OBJECT_NAMESPACE": self.object_namespace,
            "KRATIX_CRD_PLURAL": self.crd_plural,
            "KRATIX_CLUSTER_SCOPED": "true" if self.cluster_scoped else "false",
        }


class RunPipelineInput(BaseModel):
    run_id: str
    pipeline: Pipeline
    object: dict[str, Any]
    context: PipelineContext
    promise_selectors: dict[str, str] = Field(default_factory=dict)


class ContainerRun(BaseModel):
    name: str
    image: str
    exit_code: int | None = None
    started_at: float = 0.0  # epoch seconds on the worker, to see how runs overlapped
    duration_seconds: float = 0.0
    log_tail: str = ""
    log_file: str = ""


class PipelineRunResult(BaseModel):
    succeeded: bool
    message: str = ""
    failed_container: str | None = None
    containers: list[ContainerRun] = Field(default_factory=list)
    status: dict[str, Any] | None = None
    workflow_control: dict[str, Any] | None = None
    # Actions a container requested in /kratix/metadata/actions.yaml (validated by the workflow).
    actions: list[Action] = Field(default_factory=list)
    groups: list[WorkloadGroup] = Field(default_factory=list)
    artifact: str | None = None


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidDocument([FieldError(f"/kratix/metadata/{path.name}", f"invalid YAML: {exc}")]) from exc


class PipelineActivities:
    def __init__(self, runtime: ContainerRuntime, artifacts: ArtifactStore, logs_dir: Path):
        self.runtime = runtime
        self.artifacts = artifacts
        self.logs_dir = logs_dir

    @activity.defn
    async def run_pipeline(self, input: RunPipelineInput) -> PipelineRunResult:
        """A failed container is a result, not an exception: the workflow records which one failed and why."""
        pipeline_name = input.pipeline.metadata.name
        workspace = Path(tempfile.mkdtemp(prefix="ktx-pipeline-"))
        try:
            kratix_input, output, metadata = workspace / "input", workspace / "output", workspace / "metadata"
            for directory in (kratix_input, output, metadata):
                directory.mkdir()
                directory.chmod(0o777)  # containers may run as a non-root user
            (kratix_input / "object.yaml").write_text(yaml.safe_dump(input.object, sort_keys=False))
            mounts = {kratix_input: ("/kratix/input", True), output: ("/kratix/output", False), metadata: ("/kratix/metadata", False)}
            base_env = input.context.env(pipeline_name)
            runs: list[ContainerRun] = []
            for container in input.pipeline.spec.containers:
                unsupported = [e.name for e in container.env if e.value_from is not None]
                if unsupported:
                    raise ApplicationError(
                        f"container {container.name}: env valueFrom is not supported yet ({', '.join(unsupported)})",
                        type="UnsupportedPipeline",
                        non_retryable=True,
                    )
                env = {**base_env, **{e.name: e.value or "" for e in container.env}}
                name = container_name(input.run_id, container.name)
                log_file = self.logs_dir / input.run_id / f"{container.name}.log"
                started, started_at = time.monotonic(), time.time()
                exit_code = await self.runtime.run(self.runtime.run_args(name, container, mounts, env), name, log_file)
                run = ContainerRun(
                    name=container.name,
                    image=container.image,
                    exit_code=exit_code,
                    started_at=started_at,
                    duration_seconds=round(time.monotonic() - started, 3),
                    log_tail=log_tail(log_file),
                    log_file=str(log_file),
                )
                runs.append(run)
                if exit_code != 0:
                    return PipelineRunResult(
                        succeeded=False,
                        failed_container=container.name,
                        message=f"container {container.name!r} ({container.image}) exited with code {exit_code}",
                        containers=runs,
                    )
            return self._collect(input, output, metadata, runs)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

    def _collect(self, input: RunPipelineInput, output: Path, metadata: Path, runs: list[ContainerRun]) -> PipelineRunResult:
        try:
            status = _read_yaml(metadata / "status.yaml")
            control = _read_yaml(metadata / "workflow-control.yaml")
            selectors = _read_yaml(metadata / "destination-selectors.yaml") if input.context.action == "configure" else None
            entries = parse_destination_selectors(selectors)
            actions = parse_requested_actions(_read_yaml(metadata / ACTIONS_FILE)) if input.context.action == "configure" else []
        except InvalidDocument as exc:
            return PipelineRunResult(succeeded=False, message=str(exc), containers=runs)
        if input.context.action == "delete":
            return PipelineRunResult(succeeded=True, containers=runs, status=status, workflow_control=control)
        digest, files = self.artifacts.put_tree(output)
        source = SelectorSource.PROMISE_WORKFLOW if input.context.workflow_type == "promise" else SelectorSource.RESOURCE_WORKFLOW
        groups = build_groups(files, entries, source, input.promise_selectors)
        return PipelineRunResult(
            succeeded=True, containers=runs, status=status, workflow_control=control, groups=groups, artifact=digest,
            actions=actions,
        )
