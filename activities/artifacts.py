"""Content-addressed storage of pipeline outputs, so large outputs never travel through Temporal payloads.

Trees live on the worker's disk; with a shared bucket they are also uploaded there, and a worker that did not run the
pipeline (another replica, or the replacement of a dead one) downloads a tree the first time it needs it.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import uuid
from pathlib import Path

from activities.object_bucket import ObjectBucket
from activities.output_files import output_files, read_regular


class ArtifactStore:
    def __init__(self, root: Path, shared: ObjectBucket | None = None):
        self.root = root
        self.shared = shared

    def put_tree(self, source: Path) -> tuple[str, list[str]]:
        """Store every regular file under `source`; returns the digest of the tree and its relative file paths.

        `source` was written by a pipeline container: a symlink is stored as the file it leads to inside the tree, and
        one leading anywhere else raises UnfollowedLink (see `output_files`)."""
        files = output_files(source)
        digest = hashlib.sha256()
        for rel, path in files.items():
            digest.update(rel.encode() + b"\0")
            digest.update(hashlib.sha256(read_regular(path)).digest())
        name = digest.hexdigest()
        target = self.root / name
        if not target.exists():
            staging = self.root / f".{name}.{uuid.uuid4().hex}.tmp"
            for rel, path in files.items():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                (staging / rel).write_bytes(read_regular(path))
            staging.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(target)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)  # another run stored the same tree first
        if self.shared is not None:
            _upload(self.shared, self.root, name, target)
        return name, list(files)

    def path(self, digest: str, relpath: str = "") -> Path:
        if self.shared is not None and not (self.root / digest).exists():
            _download(self.shared, self.root, digest)
        base = (self.root / digest).resolve()
        target = (base / relpath).resolve()
        if base not in target.parents and target != base:
            raise ValueError(f"artifact path escapes its tree: {relpath}")
        return target


def _upload(shared: ObjectBucket, root: Path, digest: str, tree: Path) -> None:
    """One tarball per tree: one request however many files, and it appears whole or not at all."""
    key = shared.key(f"{digest}.tar")
    if shared.exists(key):
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
