"""The messages about PromiseRevisions between the API, a Promise's workflow and its requests' workflows."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.revisions import Binding


class DeleteRevisionInput(BaseModel):
    version: str = Field(max_length=63)


class DeleteRevisionResult(BaseModel):
    # How many of the Promise's requests were told; those bound to the version delete themselves.
    signalled: int


class HoldBindingInput(BaseModel):
    """A ResourceBinding applied before its request exists (Kratix adopts it when the request comes): held by the
    Promise until then; `binding` None lets it go."""

    namespace: str
    resource: str
    binding: Binding | None = None


class HoldBindingResult(BaseModel):
    action: str


class RevisionDeleted(BaseModel):
    version: str


class RequiredByChange(BaseModel):
    """A requiring Promise (at its version) tells a required one it requires it at `required_version`; None when it
    no longer does (it was deleted, or dropped the requirement)."""

    promise: str
    version: str
    required_version: str | None = None
