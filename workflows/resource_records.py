"""The resource workflow's state and message types, in a module the workflow sandbox passes through (see
resource.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.health import HealthRecord
from workflows.lifecycle import LifecycleState
from workflows.records import ApplyInput


class ResourceState(LifecycleState):
    promise: str
    namespace: str
    name: str
    health: list[HealthRecord] = Field(default_factory=list)


class ResourceWorkflowInput(BaseModel):
    state: ResourceState
    # The document of a new resource, applied before anything else: the API starts the workflow with it instead of
    # waiting for a worker to run an update, so accepting a request costs one write to Temporal.
    initial: ApplyInput | None = None


class ResourceWorkflowResult(BaseModel):
    deleted: bool


class HealthRecordInput(BaseModel):
    record: HealthRecord


class RemoveHealthRecordInput(BaseModel):
    name: str
    namespace: str


class HealthRecordResult(BaseModel):
    state: str
