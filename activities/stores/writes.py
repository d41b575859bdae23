"""What a state-store write does, in each filepath mode, against any store that can read, write and delete paths.

The Git writer applies changes to a working tree, the Bucket writer to staged object keys; both share this logic,
so the three layouts are byte-for-byte the same whichever store a Destination uses.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from activities.artifacts.store import ArtifactStore
from domain.layout import (
    AggregateBlocks,
    Slot,
    aggregate_index_path,
    compose_aggregate,
    join,
    ledger_files,
    ledger_text,
    parse_aggregate,
    reserved_output_path,
)


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
    # Set by apply_change: files this change did not write because another placement owns them (its write's error).
    conflicts: list[str] = field(default_factory=list)

    def paths(self) -> list[str]:
        listed = [p for s in self.remove for p in [s.path, *_bookkeeping(s)]]
        for write in self.replace:
            listed += [write.slot.path, *_bookkeeping(write.slot)]
            listed += [posixpath.join(write.slot.path, rel) for rel in [*write.files, *write.inline]]
        return [p for p in listed + list(self.files) + self.delete_files if p]


def _bookkeeping(slot: Slot) -> list[str]:
    """The file a slot's mode keeps beside the output: `none`'s state file, `aggregatedYAML`'s index."""
    if slot.mode == "none":
        return [slot.key]
    if slot.mode == "aggregatedYAML":
        return [aggregate_index_path(slot.path)]
    return []


# What a store writes at a path: bytes, or a file (of a stored output) to copy from.
Content = bytes | Path


class StoreTree(Protocol):
    def read(self, path: str) -> bytes | None: ...
    def write(self, path: str, content: Content) -> None: ...
    def delete(self, path: str) -> None: ...
    def delete_dir(self, path: str) -> None: ...
    def list(self, path: str) -> list[str]: ...  # the files directly in a directory, as full paths


class UnsafePath(ValueError):
    pass


def check_paths(change: StoreChange) -> None:
    """Refuse a change that would reach outside the store's path, before it can join (and fail) a shared batch."""
    for path in [change.root, *change.paths()]:
        normal = posixpath.normpath(path)
        if path.startswith("/") or normal == ".." or normal.startswith("../") or ".git" in normal.split("/"):
            raise UnsafePath(f"refusing to write outside the state store: {path!r}")
    # Pipelines are refused such output when they run; an output kept from before that rule is refused here.
    for write in change.replace:
        for rel in [*write.files, *write.inline]:
            reason = reserved_output_path(rel)
            if reason is not None:
                raise UnsafePath(f"refusing to write {rel!r}: {reason}")


def apply_change(tree: StoreTree, change: StoreChange, artifacts: ArtifactStore) -> None:
    def full(path: str) -> str:
        return join(change.root, path)

    change.conflicts = []  # a Git batch lost to a race is applied again on the new tip
    for slot in change.remove:
        _remove(tree, slot, full)
    for path in change.delete_files:
        tree.delete(full(path))
    for write in change.replace:
        change.conflicts += _write(tree, write, full, artifacts)
    for path, content in change.files.items():
        tree.write(full(path), content)


def _contents(write: GroupWrite, artifacts: ArtifactStore) -> dict[str, Content]:
    """A stored output's files as paths, for the store to copy a chunk at a time (an output file may be hundreds of
    MB); inline files as bytes."""
    contents: dict[str, Content] = (
        {rel: artifacts.path(write.artifact, rel) for rel in write.files} if write.artifact else {}
    )
    contents.update({rel: text.encode() for rel, text in write.inline.items()})
    return contents


def loaded(content: Content) -> bytes:
    return content.read_bytes() if isinstance(content, Path) else content


def _remove(tree: StoreTree, slot: Slot, full) -> None:  # type: ignore[no-untyped-def]
    if slot.mode == "nestedByMetadata":
        tree.delete_dir(full(slot.path))
    elif slot.mode == "none":
        for path in _unshared(tree, slot, full, ledger_files(tree.read(full(slot.key)), slot.path)):
            tree.delete(full(path))
        tree.delete(full(slot.key))
    else:
        blocks = {k: v for k, v in _read_aggregate(tree, slot, full).items() if k[0] != slot.key}
        if blocks:
            _write_aggregate(tree, slot, full, blocks)
        else:
            tree.delete(full(slot.path))
            tree.delete(full(aggregate_index_path(slot.path)))


def _write(tree: StoreTree, write: GroupWrite, full, artifacts: ArtifactStore) -> list[str]:  # type: ignore[no-untyped-def]
    """Writes one group; returns the files it left alone because another placement owns them."""
    slot, contents = write.slot, _contents(write, artifacts)
    if slot.mode == "nestedByMetadata":
        tree.delete_dir(full(slot.path))
        for rel, content in contents.items():
            tree.write(full(join(slot.path, rel)), content)
    elif slot.mode == "none":
        # In the shared flat directory the first placement to write a name owns it: another team's output of the same
        # name is refused (this write's error, retried until the owner lets it go), never written over the owner's.
        owned = _listed_by_others(tree, slot, full)
        taken = sorted(join(slot.path, rel) for rel in contents if join(slot.path, rel) in owned)
        written = [join(slot.path, rel) for rel in contents if join(slot.path, rel) not in owned]
        for stale in sorted(set(ledger_files(tree.read(full(slot.key)), slot.path)) - set(written) - owned):
            tree.delete(full(stale))
        for rel, content in contents.items():
            if join(slot.path, rel) not in owned:
                tree.write(full(join(slot.path, rel)), content)
        tree.write(full(slot.key), ledger_text(written).encode())
        return [f"{path} belongs to another placement in this Destination; not written" for path in taken]
    else:
        blocks = {k: v for k, v in _read_aggregate(tree, slot, full).items() if k[0] != slot.key}
        blocks.update({(slot.key, rel): loaded(content) for rel, content in contents.items()})
        _write_aggregate(tree, slot, full, blocks)
    return []


def _listed_by_others(tree: StoreTree, slot: Slot, full) -> set[str]:  # type: ignore[no-untyped-def]
    """The files other placements' state files list in a `none` Destination's shared flat directory."""
    own = full(slot.key)
    return {
        p for key in tree.list(posixpath.dirname(own)) if key != own for p in ledger_files(tree.read(key), slot.path)
    }


def _unshared(tree: StoreTree, slot: Slot, full, paths: set[str] | list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Of the files a placement lets go in a `none` Destination, those no other placement's state file lists: a
    placement's delete must never take another's file (a state file written before ownership was enforced may list
    one both wrote)."""
    return sorted(set(paths) - _listed_by_others(tree, slot, full)) if paths else []


def _read_aggregate(tree: StoreTree, slot: Slot, full) -> AggregateBlocks:  # type: ignore[no-untyped-def]
    return parse_aggregate(tree.read(full(slot.path)), tree.read(full(aggregate_index_path(slot.path))))


def _write_aggregate(tree: StoreTree, slot: Slot, full, blocks: AggregateBlocks) -> None:  # type: ignore[no-untyped-def]
    content, index = compose_aggregate(blocks)
    tree.write(full(slot.path), content)
    tree.write(full(aggregate_index_path(slot.path)), index)
