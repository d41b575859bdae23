"""`/kratix/metadata/workflow-control.yaml`: a pipeline asking to suspend, or to be retried later."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from domain.durations import parse_duration
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
            raise InvalidDocument([FieldError("workflow-control.yaml.retryAfter", f'failed to parse retry duration: "{retry}"')]) from None
    return WorkflowControl(suspend=bool(raw.get("suspend")), retry_after_s=retry_s, message=str(raw.get("message") or ""))
