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

OUTPUT_MOUNT = PurePosixPath("/kratix/output")
METADATA_MOUNT = PurePosixPath("/kratix/metadata")
_MAX_LINKS = 40  # as Linux's MAXSYMLINKS: a longer chain is a loop


class UnfollowedLink(ValueError):
    """A symbolic link the platform will not follow; the message says which and why."""


def output_files(root: Path, mount: PurePosixPath = OUTPUT_MOUNT) -> dict[str, Path]:
    """Relative path -> the regular file to read for it, sorted. Symlinked directories are not descended (Kratix
    does not either); FIFOs, sockets and devices carry no content and are left out."""
    found: dict[str, Path] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(directory, name)
            mode = path.lstat().st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISREG(mode):
                found[rel] = path
            elif stat.S_ISLNK(mode):
                found[rel] = root.joinpath(*resolve_in_tree(root, rel, mount).parts)
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


def read_regular(path: Path) -> bytes:
    """The file's bytes, refusing a symlink in its last component: callers pass paths `output_files` resolved."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as file:
        return file.read()
