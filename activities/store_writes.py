"""What a state-store write does, in each filepath mode, against any store that can read, write and delete paths.

The Git writer applies changes to a working tree, the Bucket writer to staged object keys; both share this logic,
so the three layouts are byte-for-byte the same whichever store a Destination uses.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, Field

from activities.artifacts import ArtifactStore
from domain.layout import Slot, compose_aggregate, join, ledger_files, ledger_text, parse_aggregate


class GroupWrite(BaseModel):
    """One workload group's files (from a stored pipeline output, plus inline files), put where its slot says."""

    slot: Slot
    artifact: str | None = None
    files: list[str] = Field(default_factory=list)
    inline: dict[str, str] = Field(default_factory=dict)


@dataclass
class StoreChange:
    """One caller's change; every path is relative to the state store's `path` (`root`)."""

    message: str
    root: str = ""
    replace: list[GroupWrite] = field(default_factory=list)
    remove: list[Slot] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    delete_files: list[str] = field(default_factory=list)

    def paths(self) -> list[str]:
        listed = [s.path for s in self.remove] + [s.key for s in self.remove if s.mode == "none"]
        for write in self.replace:
            listed += [write.slot.path, write.slot.key if write.slot.mode == "none" else ""]
            listed += [posixpath.join(write.slot.path, rel) for rel in [*write.files, *write.inline]]
        return [p for p in listed + list(self.files) + self.delete_files if p]


class StoreTree(Protocol):
    def read(self, path: str) -> bytes | None: ...
    def write(self, path: str, content: bytes) -> None: ...
    def delete(self, path: str) -> None: ...
    def delete_dir(self, path: str) -> None: ...


class UnsafePath(ValueError):
    pass


def check_paths(change: StoreChange) -> None:
    """Refuse a change that would reach outside the store's path, before it can join (and fail) a shared batch."""
    for path in [change.root, *change.paths()]:
        normal = posixpath.normpath(path)
        if path.startswith("/") or normal == ".." or normal.startswith("../") or ".git" in normal.split("/"):
            raise UnsafePath(f"refusing to write outside the state store: {path!r}")


def apply_change(tree: StoreTree, change: StoreChange, artifacts: ArtifactStore) -> None:
    def full(path: str) -> str:
        return join(change.root, path)

    for slot in change.remove:
        _remove(tree, slot, full)
    for path in change.delete_files:
        tree.delete(full(path))
    for write in change.replace:
        _write(tree, write, full, artifacts)
    for path, content in change.files.items():
        tree.write(full(path), content)


def _contents(write: GroupWrite, artifacts: ArtifactStore) -> dict[str, bytes]:
    contents = {rel: artifacts.path(write.artifact, rel).read_bytes() for rel in write.files} if write.artifact else {}
    contents.update({rel: text.encode() for rel, text in write.inline.items()})
    return contents


def _remove(tree: StoreTree, slot: Slot, full) -> None:  # type: ignore[no-untyped-def]
    if slot.mode == "nestedByMetadata":
        tree.delete_dir(full(slot.path))
    elif slot.mode == "none":
        for path in ledger_files(tree.read(full(slot.key))):
            tree.delete(full(path))
        tree.delete(full(slot.key))
    else:
        blocks = {k: v for k, v in parse_aggregate(tree.read(full(slot.path))).items() if k[0] != slot.key}
        if blocks:
            tree.write(full(slot.path), compose_aggregate(blocks).encode())
        else:
            tree.delete(full(slot.path))


def _write(tree: StoreTree, write: GroupWrite, full, artifacts: ArtifactStore) -> None:  # type: ignore[no-untyped-def]
    slot, contents = write.slot, _contents(write, artifacts)
    if slot.mode == "nestedByMetadata":
        tree.delete_dir(full(slot.path))
        for rel, content in contents.items():
            tree.write(full(join(slot.path, rel)), content)
    elif slot.mode == "none":
        written = sorted(join(slot.path, rel) for rel in contents)
        for stale in set(ledger_files(tree.read(full(slot.key)))) - set(written):
            tree.delete(full(stale))
        for rel, content in contents.items():
            tree.write(full(join(slot.path, rel)), content)
        tree.write(full(slot.key), ledger_text(written).encode())
    else:
        blocks = {k: v for k, v in parse_aggregate(tree.read(full(slot.path))).items() if k[0] != slot.key}
        blocks.update({(slot.key, rel): content.decode() for rel, content in contents.items()})
        tree.write(full(slot.path), compose_aggregate(blocks).encode())
