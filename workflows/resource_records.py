"""The resource workflow's state and message types, in a module the workflow sandbox passes through (see
resource.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.health import HealthRecord
from domain.revisions import Binding
from workflows.lifecycle import LifecycleState
from workflows.records import ApplyInput


class PendingUpgrade(BaseModel):
    """A change of the binding's version not yet run: the version it had, and whom to tell when the run ends."""

    previous: str
    reply_to: str | None = None
    plan: str | None = None
    manual: bool = False


class ResourceState(LifecycleState):
    promise: str
    namespace: str
    name: str
    health: list[HealthRecord] = Field(default_factory=list)
    # Kratix's ResourceBinding (None until adopted: histories from before bindings had none).
    binding: Binding | None = None
    upgrade: PendingUpgrade | None = None


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


class BindingEdit(BaseModel):
    """A change to the request's ResourceBinding through the API: its `spec.version`, its labels (the
    manual-reconciliation label retries a failed version), or its deletion (Kratix recreates it at once)."""

    version: str | None = Field(default=None, max_length=63)
    labels: dict[str, str] | None = None
    deleted: bool = False
    resource_version: str | None = None


class BindingEdited(BaseModel):
    binding: dict
