"""The state-store activity: apply one set of directory replacements and deletions to a Destination's store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.artifacts import ArtifactStore
from activities.git_writer import ChangeSet, GitRepoWriter, writer_key
from domain.documents import BucketStateStoreSpec, GitStateStoreSpec
from domain.layout import join


class StoreTarget(BaseModel):
    kind: Literal["GitStateStore", "BucketStateStore"]
    name: str
    git: GitStateStoreSpec | None = None
    bucket: BucketStateStoreSpec | None = None


class DirectoryWrite(BaseModel):
    """Replace the directory `path` wholesale with `files` taken from a stored pipeline output, plus inline files."""

    path: str
    artifact: str | None = None
    files: list[str] = Field(default_factory=list)
    inline: dict[str, str] = Field(default_factory=dict)


class WriteStateStoreInput(BaseModel):
    store: StoreTarget
    message: str
    replace: list[DirectoryWrite] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)


class WriteStateStoreResult(BaseModel):
    version_id: str
    changed: bool


class StateStoreActivities:
    def __init__(self, artifacts: ArtifactStore, cache_dir: Path):
        self.artifacts = artifacts
        self.cache_dir = cache_dir
        self._git_writers: dict[str, GitRepoWriter] = {}

    def git_writer(self, spec: GitStateStoreSpec) -> GitRepoWriter:
        if spec.secret_ref is not None:
            raise ApplicationError(
                "GitStateStore secretRef credentials are not supported yet", type="UnsupportedStateStore", non_retryable=True
            )
        key = writer_key(spec.url, spec.branch)
        writer = self._git_writers.get(key)
        if writer is None:
            writer = GitRepoWriter(
                spec.url, spec.branch, spec.git_author.name, spec.git_author.email, self.cache_dir / key, self.artifacts
            )
            self._git_writers[key] = writer
        return writer

    @activity.defn
    async def write_state_store(self, input: WriteStateStoreInput) -> WriteStateStoreResult:
        """Idempotent: the same input always leaves the store in the same state, and makes no commit the second time."""
        if input.store.kind != "GitStateStore" or input.store.git is None:
            raise ApplicationError(
                f"{input.store.kind} writes are not supported yet", type="UnsupportedStateStore", non_retryable=True
            )
        spec = input.store.git
        change = ChangeSet(
            message=input.message,
            delete=[join(spec.path, p) for p in input.delete],
            replace_dirs={
                join(spec.path, d.path): {
                    **{rel: (d.artifact, rel) for rel in d.files if d.artifact},
                    **{rel: text.encode() for rel, text in d.inline.items()},
                }
                for d in input.replace
            },
            files={join(spec.path, rel): text.encode() for rel, text in input.files.items()},
        )
        outcome = await self.git_writer(spec).write(change)
        return WriteStateStoreResult(version_id=outcome.commit, changed=outcome.changed)
