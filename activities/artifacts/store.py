"""Content-addressed storage of pipeline outputs, so large outputs never travel through Temporal payloads.

Trees live on the worker's disk; with a shared bucket they are also uploaded there, and a worker that did not run the
pipeline (another replica, or the replacement of a dead one) downloads a tree the first time it needs it.

Storing a tree that is already there makes it young again, on disk and in the bucket: the garbage collector
(`gc.py`) only removes trees no workflow holds that are older than its grace, so a tree an in-flight
pipeline result is about to hand to its workflow is never removed under it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from activities.artifacts.object_bucket import ObjectBucket
from activities.artifacts.output_files import open_regular, output_files


class ArtifactStore:
    def __init__(self, root: Path, shared: ObjectBucket | None = None):
        self.root = root
        self.shared = shared

    def put_tree(
        self, source: Path, max_files: int | None = None, max_name_bytes: int | None = None
    ) -> tuple[str, list[str]]:
        """Store every regular file under `source`; returns the digest of the tree and its relative file paths.

        `source` was written by a pipeline container: a symlink is stored as the file it leads to inside the tree, and
        one leading anywhere else raises UnfollowedLink (see `output_files`); more files than the limits, OverLimit.
        Files are hashed and copied a chunk at a time: a 200 MB output costs the worker no more memory than a small
        one."""
        files = output_files(source, max_files=max_files, max_name_bytes=max_name_bytes)
        digest = hashlib.sha256()
        for rel, path in files.items():
            digest.update(rel.encode() + b"\0")
            digest.update(_sha256(path))
        name = digest.hexdigest()
        target = self.root / name
        if not target.exists():
            staging = self.root / f".{name}.{uuid.uuid4().hex}.tmp"
            for rel, path in files.items():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                with open_regular(path) as reader, (staging / rel).open("wb") as writer:
                    shutil.copyfileobj(reader, writer, _CHUNK)
            staging.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(target)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)  # another run stored the same tree first
        else:
            os.utime(target)
        if self.shared is not None:
            _upload(self.shared, self.root, name, target)
        return name, list(files)

    def path(self, digest: str, relpath: str = "") -> Path:
        if self.shared is not None:
            if not (self.root / digest).exists():
                _download(self.shared, self.root, digest)
            os.utime(self.root / digest)  # this disk is a cache: `trim_cache` keeps what was used lately
        base = (self.root / digest).resolve()
        target = (base / relpath).resolve()
        if base not in target.parents and target != base:
            raise ValueError(f"artifact path escapes its tree: {relpath}")
        return target

    def sweep(self, live: set[str], older_than: float) -> Swept:
        """Removes the trees not in `live` stored or reused before `older_than` (epoch seconds), from the copy that
        counts: the shared bucket when there is one (each worker's disk is then a cache, see `trim_cache`), else
        here."""
        swept = Swept()
        if self.shared is not None:
            garbage = []
            for key, modified in self.shared.listing():
                digest = key[len(self.shared.prefix) :].removesuffix(".tar")
                if not _DIGEST.fullmatch(digest) or not key.endswith(".tar"):
                    continue  # not a tree of ours (a prefix shared with something else): never ours to delete
                if digest in live:
                    swept.live += 1
                elif modified >= older_than:
                    swept.young += 1
                else:
                    garbage.append(key)
            self.shared.remove(*garbage)
            swept.removed = len(garbage)
            return swept
        for tree in self._trees():
            if tree.name in live:
                swept.live += 1
            elif tree.stat().st_mtime >= older_than:
                swept.young += 1
            else:
                shutil.rmtree(tree, ignore_errors=True)
                swept.removed += 1
        return swept

    def trim_cache(self, older_than: float) -> int:
        """With a shared bucket: drops local trees not used since `older_than`. Either way: leftovers of stores and
        downloads a crash interrupted. Returns how many entries went."""
        gone = 0
        if not self.root.is_dir():
            return gone
        leftovers = [entry for entry in self.root.iterdir() if entry.name.startswith(".")]
        for entry in leftovers + (self._trees() if self.shared is not None else []):
            if entry.lstat().st_mtime < older_than:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                gone += 1
        return gone

    def _trees(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [entry for entry in self.root.iterdir() if _DIGEST.fullmatch(entry.name) and entry.is_dir()]


_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


def _sha256(path: Path) -> bytes:
    """The SHA-256 of a pipeline's file (see `open_regular`), read a chunk at a time."""
    digest = hashlib.sha256()
    with open_regular(path) as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


@dataclass
class Swept:
    live: int = 0
    young: int = 0
    removed: int = 0


def _upload(shared: ObjectBucket, root: Path, digest: str, tree: Path) -> None:
    """One tarball per tree: one request however many files, and it appears whole or not at all."""
    key = shared.key(f"{digest}.tar")
    if shared.exists(key):
        shared.refresh(key)
        return
    archive = root / f".{digest}.{uuid.uuid4().hex}.tar"
    try:
        with tarfile.open(archive, "w") as tar:
            tar.add(tree, arcname=".")
        shared.upload(key, archive)
    finally:
        archive.unlink(missing_ok=True)


def _download(shared: ObjectBucket, root: Path, digest: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    unique = uuid.uuid4().hex
    archive, staging = root / f".{digest}.{unique}.tar", root / f".{digest}.{unique}.download"
    try:
        if not shared.fetch(shared.key(f"{digest}.tar"), archive):
            raise FileNotFoundError(f"artifact {digest} is neither on this worker nor in the shared bucket")
        with tarfile.open(archive) as tar:
            # The "data" filter refuses absolute paths, `..`, links out of the tree and device files.
            tar.extractall(staging, filter="data")
        try:
            staging.rename(root / digest)
        except OSError:
            pass  # a concurrent read downloaded it first
    finally:
        archive.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
