"""`/kratix/metadata/workflow-control.yaml`: a pipeline asking to suspend, or to be retried later."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from domain.durations import MAX_WAIT, MAX_WAIT_S, parse_duration
from domain.errors import FieldError, InvalidDocument


class WorkflowControl(BaseModel):
    suspend: bool = False
    retry_after_s: float | None = None
    message: str = ""

    @property
    def suspends(self) -> bool:
        return self.suspend or self.retry_after_s is not None


def parse_workflow_control(raw: Any) -> WorkflowControl | None:
    """Kratix rules: a missing file is no control, `retryAfter` wins over `suspend`, unknown keys are ignored."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidDocument([FieldError("workflow-control.yaml", "must be a map")])
    retry = raw.get("retryAfter")
    retry_s = None
    if retry not in (None, ""):
        try:
            retry_s = parse_duration(str(retry))
        except ValueError:
            raise InvalidDocument(
                [FieldError("workflow-control.yaml.retryAfter", f'failed to parse retry duration: "{retry}"')]
            ) from None
    return WorkflowControl(
        suspend=bool(raw.get("suspend")), retry_after_s=retry_s, message=str(raw.get("message") or "")
    )


def retry_after_error(control: WorkflowControl) -> str | None:
    """A retry later than ktx waits for (MAX_WAIT): the pipeline fails with this reason instead of a timer no one
    would see fire, and a date past what a timer holds can never wedge the workflow."""
    if control.retry_after_s is not None and control.retry_after_s > MAX_WAIT_S:
        return (
            f"workflow-control.yaml.retryAfter: Invalid value: {control.retry_after_s:g}s: "
            f"must be at most {MAX_WAIT} (30 days)"
        )
    return None
