"""What a pipeline run takes and gives back, shared by the pipeline activity, its runners and the workflows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.actions import Action
from domain.documents import Pipeline
from domain.names import KRATIX_GROUP
from domain.pipeline_rules import DEFAULT_PIPELINE_TIMEOUT_S
from domain.promise_api import PromiseApi
from domain.scheduling import WorkloadGroup


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
    # The Promise's spec.workflows.config.pipelineNamespace: where all its workflows run ('' for Kratix's default).
    pipeline_namespace: str = ""
    # A DryRun's preview (domain/dry_run.py): Kratix sets KRATIX_DRY_RUN=true in every container, so a pipeline can
    # skip what it must not do for real.
    dry_run: bool = False

    @classmethod
    def of_promise(
        cls, action: Literal["configure", "delete"], promise: str, pipeline_namespace: str = ""
    ) -> "PipelineContext":
        """A Promise's own workflow: the object is the Promise, cluster-scoped."""
        return cls(
            workflow_type="promise",
            action=action,
            promise_name=promise,
            object_kind="Promise",
            object_group=KRATIX_GROUP,
            object_version="v1alpha1",
            object_name=promise,
            crd_plural="promises",
            cluster_scoped=True,
            pipeline_namespace=pipeline_namespace,
        )

    @classmethod
    def of_resource(
        cls,
        action: Literal["configure", "delete"],
        api: PromiseApi,
        name: str,
        namespace: str,
        pipeline_namespace: str = "",
    ) -> "PipelineContext":
        """A resource's workflow: the object is the request, in its namespace."""
        return cls(
            workflow_type="resource",
            action=action,
            promise_name=api.promise,
            object_kind=api.kind,
            object_group=api.group,
            object_version=api.version,
            object_name=name,
            object_namespace=namespace,
            crd_plural=api.plural,
            cluster_scoped=False,
            pipeline_namespace=pipeline_namespace,
        )

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
            **({"KRATIX_DRY_RUN": "true"} if self.dry_run else {}),
        }


class RunPipelineInput(BaseModel):
    run_id: str
    pipeline: Pipeline
    object: dict[str, Any]
    context: PipelineContext
    promise_selectors: dict[str, str] = Field(default_factory=dict)
    # The run's deadline (domain/pipeline_rules.py): its containers are stopped once it has passed. Runs scheduled by
    # workflows from before it existed get the default.
    timeout_s: float = DEFAULT_PIPELINE_TIMEOUT_S

    @property
    def tenant(self) -> str:
        """Whose share of the pipeline slots this run uses: a resource's namespace, or the Promise for its own."""
        ctx = self.context
        return f"namespace {ctx.object_namespace}" if ctx.workflow_type == "resource" else f"Promise {ctx.promise_name}"


class PromiseRbacCleanup(BaseModel):
    """A deleted Promise, whose pipelines' ServiceAccounts and RBAC objects go with it, as in Kratix."""

    promise: str


class ContainerRun(BaseModel):
    name: str
    image: str
    exit_code: int | None = None
    started_at: float = 0.0  # epoch seconds on the worker, to see how runs overlapped
    duration_seconds: float = 0.0
    log_tail: str = ""
    log_file: str = ""


class ContainersOutcome(BaseModel):
    """What a runner reports once the containers are done; their files are in the run's workspace."""

    containers: list[ContainerRun] = Field(default_factory=list)
    failed_container: str | None = None
    message: str = ""
    # Fields of the Pipeline this runner could not apply (`ignored on the podman runner`) and what it skipped,
    # as describe and events state them; never a value.
    notes: list[str] = Field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.failed_container is None and not self.message


class PipelineRunResult(BaseModel):
    succeeded: bool
    # Not run: its tenant holds all the slots it may on the worker that took it (`message` says so). Not a failure:
    # the workflow shows the wait and asks again, and the slot went back to the worker at once.
    deferred: bool = False
    message: str = ""
    failed_container: str | None = None
    containers: list[ContainerRun] = Field(default_factory=list)
    status: dict[str, Any] | None = None
    workflow_control: dict[str, Any] | None = None
    # Actions a container requested in /kratix/metadata/actions.yaml (validated by the workflow).
    actions: list[Action] = Field(default_factory=list)
    groups: list[WorkloadGroup] = Field(default_factory=list)
    artifact: str | None = None
    notes: list[str] = Field(default_factory=list)
