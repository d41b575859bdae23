"""The resource workflow's state and message types, in a module the workflow sandbox passes through (see resource.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.health import HealthRecord
from workflows.lifecycle import LifecycleState


class ResourceState(LifecycleState):
    promise: str
    namespace: str
    name: str
    health: list[HealthRecord] = Field(default_factory=list)


class ResourceWorkflowInput(BaseModel):
    state: ResourceState


class ResourceWorkflowResult(BaseModel):
    deleted: bool


class HealthRecordInput(BaseModel):
    record: HealthRecord


class RemoveHealthRecordInput(BaseModel):
    name: str
    namespace: str


class HealthRecordResult(BaseModel):
    state: str
