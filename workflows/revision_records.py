"""The messages about PromiseRevisions between the API, a Promise's workflow and its requests' workflows."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Promises record a revision per version (and publish them); resources hold a binding (and publish it). Histories
# from before did neither.
REVISIONS_PATCH = "promise-revisions"
BINDINGS_PATCH = "resource-bindings"


class DeleteRevisionInput(BaseModel):
    version: str = Field(max_length=63)


class DeleteRevisionResult(BaseModel):
    # How many of the Promise's requests were told; those bound to the version delete themselves.
    signalled: int


class RevisionDeleted(BaseModel):
    version: str
