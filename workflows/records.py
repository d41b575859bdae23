"""Types shared by the object workflows: their messages, run records and the memo they publish."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.pipelines import ContainerRun, PipelineRunResult
    from workflows.delivery import now_iso


class PipelineRunRecord(BaseModel):
    """One pipeline run as `ktx describe` shows it: containers, exit codes and log tails."""

    pipeline: str
    action: Literal["configure", "delete"]
    generation: int
    succeeded: bool
    message: str = ""
    failed_container: str | None = None
    containers: list[ContainerRun] = Field(default_factory=list)
    finished_at: str = ""

    @classmethod
    def of(cls, pipeline: str, action: Literal["configure", "delete"], generation: int, result: PipelineRunResult) -> "PipelineRunRecord":
        return cls(
            pipeline=pipeline,
            action=action,
            generation=generation,
            succeeded=result.succeeded,
            message=result.message,
            failed_container=result.failed_container,
            containers=result.containers,
            finished_at=now_iso(),
        )


def record_run(runs: list[PipelineRunRecord], record: PipelineRunRecord) -> list[PipelineRunRecord]:
    """Keep the latest run of each pipeline and action."""
    return [r for r in runs if (r.pipeline, r.action) != (record.pipeline, record.action)] + [record]


class ApplyInput(BaseModel):
    """A new desired document (metadata and spec); status is the platform's and is ignored."""

    document: dict[str, Any]


class ApplyResult(BaseModel):
    action: Literal["created", "configured", "unchanged"]
    generation: int


class DeleteRequest(BaseModel):
    force: bool = False


class DeleteAccepted(BaseModel):
    deleting: bool = True


class ReconcileRequest(BaseModel):
    reason: str = "manual"


def failure_message(result: PipelineRunResult) -> str:
    """What status shows for a failed pipeline: the container at fault and the end of its log."""
    if result.failed_container is None:
        return result.message
    tail = next((c.log_tail for c in result.containers if c.name == result.failed_container), "")
    lines = tail.strip().splitlines()[-5:]
    return result.message + (": " + " | ".join(lines) if lines else "")
