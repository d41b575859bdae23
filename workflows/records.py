"""Types shared by the object workflows: their messages, run records and the memo they publish."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.pipelines.models import ContainerRun, PipelineRunResult
    from workflows.delivery import now_iso


class PipelineRunRecord(BaseModel):
    """One pipeline run as `ktx describe` and `ktx logs` show it: containers, exit codes, log tails and files."""

    run_id: str
    pipeline: str
    action: Literal["configure", "delete"]
    generation: int
    attempt: int = 1
    succeeded: bool
    message: str = ""
    failed_container: str | None = None
    containers: list[ContainerRun] = Field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    # What the runner could not apply (PipelineRunResult.notes).
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        run_id: str,
        pipeline: str,
        action: Literal["configure", "delete"],
        generation: int,
        result: PipelineRunResult,
        started_at: str,
        attempt: int,
    ) -> "PipelineRunRecord":
        return cls(
            run_id=run_id,
            pipeline=pipeline,
            action=action,
            generation=generation,
            attempt=attempt,
            succeeded=result.succeeded,
            message=result.message,
            failed_container=result.failed_container,
            containers=result.containers,
            started_at=started_at,
            finished_at=now_iso(),
            notes=result.notes,
        )


def record_run(runs: list[PipelineRunRecord], record: PipelineRunRecord) -> list[PipelineRunRecord]:
    """Keep the latest run of each pipeline and action."""
    return [r for r in runs if (r.pipeline, r.action) != (record.pipeline, record.action)] + [record]


class ApplyInput(BaseModel):
    """A new desired document (metadata and spec); status is the platform's and is ignored."""

    document: dict[str, Any]
    # Kubernetes' precondition: the resourceVersion the client last read; a stale one is refused (409), atomically in
    # the update's validator, so of two writers who read the same version only one wins.
    resource_version: str | None = None


class ApplyResult(BaseModel):
    action: Literal["created", "configured", "unchanged"]
    generation: int


class DeleteRequest(BaseModel):
    force: bool = False


class DeleteAccepted(BaseModel):
    deleting: bool = True


class ReconcileRequest(BaseModel):
    reason: str = "manual"
    # The Promise version whose revision changed, when a Promise change sends it: only requests bound to that
    # revision (or to `latest`) re-run; None re-runs every request (a manual reconciliation, or from before).
    version: str | None = None


class LabelRequest(BaseModel):
    """`ktx label`: set and remove labels; Kratix's reconciliation labels act on the object at once."""

    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class LabelResult(BaseModel):
    labels: dict[str, str]


class StatusPatch(BaseModel):
    """A write to the status subresource: a JSON merge patch of the status, or (`replace`) the whole status."""

    patch: dict[str, Any]
    replace: bool = False


class StatusPatched(BaseModel):
    status: dict[str, Any]


def failure_message(result: PipelineRunResult) -> str:
    """What status shows for a failed pipeline: the container at fault and the end of its log."""
    if result.failed_container is None:
        return result.message
    tail = next((c.log_tail for c in result.containers if c.name == result.failed_container), "")
    lines = tail.strip().splitlines()[-5:]
    return result.message + (": " + " | ".join(lines) if lines else "")
