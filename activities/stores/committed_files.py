"""The files of one placement as a Git state store's commit holds them, read from the worker's local clone of that
store (its git cache), so showing them needs no network and shows exactly what was committed, not what a pipeline
produced before the layout and state files were applied.

Nothing read here becomes an option or a path on a command line: the commit is checked to be a full SHA and found in
the clone's object database, and the placement's path is looked up in that commit's tree object by object."""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import git

# A file shown in full up to this size (a rendered manifest is a few KiB; a Helm chart's largest, some 100 KiB); a
# larger one, and a binary one, is listed with its size only.
FILE_MAX_BYTES = 256 * 1024
# A placement's group of outputs is a directory of manifests: more than this many files are counted, not listed.
FILES_MAX = 200
# What one answer carries at most in contents, whatever the count: the rest are listed with their sizes.
CONTENTS_MAX_BYTES = 4 * 1024 * 1024
# The clones a cache holds: one per store and credentials version. More than this and the cache is not ktx's.
CLONES_MAX = 512
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass
class CommittedFile:
    name: str
    bytes: int
    text: str | None = None
    # Why `text` is absent: "binary", "too large" (over FILE_MAX_BYTES) or "over the answer's bound".
    omitted: str = ""


@dataclass
class CommittedFiles:
    files: list[CommittedFile] = field(default_factory=list)
    # How many files the placement holds in all (more than `files` when over FILES_MAX).
    total: int = 0


class NotHeld(LookupError):
    """This host holds no copy of that commit (answered 404 with the reason)."""


def find_clone(cache_dir: Path, url: str, sha: str) -> Path:
    """The clone in `cache_dir` of the store at `url` that holds commit `sha`."""
    if not _SHA.fullmatch(sha):
        raise NotHeld(f"commit {sha!r} is not a Git commit SHA")
    binsha = binascii.unhexlify(sha)
    entries = sorted(cache_dir.iterdir())[:CLONES_MAX] if cache_dir.is_dir() else []
    for entry in entries:
        try:
            repo = git.Repo(entry)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            continue
        with repo:
            origin = next((r for r in repo.remotes if r.name == "origin"), None)
            if origin is not None and origin.url == url and repo.odb.has_object(binsha):
                return entry
    raise NotHeld(f"commit {sha[:12]} of {url} is not in this host's git cache (it is on the store)")


def committed_files(clone: Path, sha: str, path: str) -> CommittedFiles:
    """The files under `path` (a directory or one file) in commit `sha` of `clone`, by name, bounded as above."""
    with git.Repo(clone) as repo:
        tree = repo.commit(sha).tree
        try:
            found = tree[path.strip("/")] if path.strip("/") else tree
        except KeyError:
            raise NotHeld(f"commit {sha[:12]} has no {path}") from None
        blobs = [found] if found.type == "blob" else [o for o in found.traverse() if o.type == "blob"]
        blobs.sort(key=lambda b: b.path)
        return bounded([(b.path, b.size, lambda b=b: b.data_stream.read()) for b in blobs])


def bounded(entries: list[tuple[str, int, Callable[[], bytes]]]) -> CommittedFiles:
    """A placement's files as shown, from (name, size, read) of each in the order shown: every file counted, the
    first FILES_MAX listed, and each one's contents read only when it fits FILE_MAX_BYTES and what is left of
    CONTENTS_MAX_BYTES, so a large placement costs no more reads than a small one (a Git tree or a bucket alike)."""
    answer = CommittedFiles(total=len(entries))
    budget = CONTENTS_MAX_BYTES
    for name, size, read in entries[:FILES_MAX]:
        shown = CommittedFile(name=name, bytes=size)
        if size > FILE_MAX_BYTES:
            shown.omitted = "too large"
        elif size > budget:
            shown.omitted = "over the answer's bound"
        else:
            shown.text = _text(read())
            if shown.text is None:
                shown.omitted = "binary"
            else:
                budget -= size
        answer.files.append(shown)
    return answer


def _text(content: bytes) -> str | None:
    """The content as text, or None when it is binary (a NUL byte, or not UTF-8), as `git diff` decides."""
    if b"\0" in content:
        return None
    try:
        return content.decode()
    except UnicodeDecodeError:
        return None
