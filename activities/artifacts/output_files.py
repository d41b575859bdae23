"""Which files a pipeline left in /kratix/output (or /kratix/metadata), read without ever leaving that tree.

A container wrote the tree and may be hostile, and the worker reads it on its own host (podman) or in the Pod (the
Kubernetes adapter). A symbolic link is therefore resolved as the container saw it, component by component inside the
tree: one that ends at a regular file in the tree is read as that file, as Kratix reads it in its Pod; any other link
(out of the tree, to a directory, dangling, a loop) fails the run and names the link, instead of silently losing it.
Standard library only: the pipeline adapter imports it inside pipeline Pods.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

OUTPUT_MOUNT = PurePosixPath("/kratix/output")
METADATA_MOUNT = PurePosixPath("/kratix/metadata")
_MAX_LINKS = 40  # as Linux's MAXSYMLINKS: a longer chain is a loop


class UnfollowedLink(ValueError):
    """A symbolic link the platform will not follow; the message says which and why."""


class OverLimit(ValueError):
    """A tree or file larger than the platform takes from a pipeline; the message says which limit."""


def output_files(
    root: Path, mount: PurePosixPath = OUTPUT_MOUNT, max_files: int | None = None, max_name_bytes: int | None = None
) -> dict[str, Path]:
    """Relative path -> the regular file to read for it, sorted. Symlinked directories are not descended (Kratix
    does not either); FIFOs, sockets and devices carry no content and are left out.

    With limits, the walk stops (OverLimit) as soon as the tree has more files, or longer names in all, than that:
    the list travels in Temporal payloads, and a tree of a million empty files must not take the worker's memory."""
    found: dict[str, Path] = {}
    entries = name_bytes = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(directory, name)
            mode = path.lstat().st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISREG(mode):
                found[rel] = path
            elif stat.S_ISLNK(mode):
                found[rel] = root.joinpath(*resolve_in_tree(root, rel, mount).parts)
            entries += 1
            if rel in found:
                name_bytes += len(os.fsencode(rel)) + 1
            # Directories count too (at most as many as files): a tree of empty directories is walked no further.
            if max_files is not None and (len(found) > max_files or entries > 2 * max_files):
                raise OverLimit(f"{mount} holds more than {max_files} files; a pipeline may write at most {max_files}")
            if max_name_bytes is not None and name_bytes > max_name_bytes:
                raise OverLimit(
                    f"the paths of the files in {mount} come to more than {max_name_bytes} bytes, the most a "
                    "pipeline may write"
                )
    return dict(sorted(found.items()))


def resolve_in_tree(root: Path, rel: str, mount: PurePosixPath = OUTPUT_MOUNT) -> PurePosixPath:
    """The path, relative to `root`, of the regular file `rel` leads to when `root` is mounted at `mount`."""
    pending = list(PurePosixPath(rel).parts)
    done: list[str] = []  # components already walked: real directories inside the tree
    links = 0

    def refuse(reason: str) -> UnfollowedLink:
        return UnfollowedLink(f"{mount / rel} is a symbolic link that {reason}; write the file itself")

    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise refuse(f"leads out of {mount}")
            done.pop()
            continue
        path = root.joinpath(*done, part)
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise refuse("leads to nothing") from None
        if stat.S_ISLNK(mode):
            links += 1
            if links > _MAX_LINKS:
                raise refuse("goes round in a loop")
            target = PurePosixPath(os.readlink(path))
            if target.is_absolute():
                if target != mount and mount not in target.parents:
                    raise refuse(f"leads out of {mount}")
                done, target = [], target.relative_to(mount)
            pending = list(target.parts) + pending
        elif stat.S_ISDIR(mode):
            done.append(part)
        elif stat.S_ISREG(mode) and not pending:
            return PurePosixPath(*done, part)
        else:
            break
    raise refuse("does not lead to a regular file")


def open_regular(path: Path) -> BinaryIO:
    """The file opened for reading, refusing a symlink in its last component: callers pass paths `output_files`
    resolved."""
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")


def read_regular(path: Path, max_bytes: int | None = None) -> bytes:
    """The file's bytes (see `open_regular`); OverLimit, before reading it, when it is larger than `max_bytes`."""
    with open_regular(path) as file:
        if max_bytes is None:
            return file.read()
        data = file.read(max_bytes + 1)  # never more, even if the file grows while read
        if len(data) > max_bytes:
            raise OverLimit(f"is over the limit of {max_bytes} bytes")
        return data
