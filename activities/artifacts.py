"""Content-addressed storage of pipeline outputs, so large outputs never travel through Temporal payloads."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def put_tree(self, source: Path) -> tuple[str, list[str]]:
        """Store every regular file under `source`; returns the digest of the tree and its relative file paths."""
        files = sorted(
            str(p.relative_to(source)).replace(os.sep, "/") for p in source.rglob("*") if p.is_file() and not p.is_symlink()
        )
        digest = hashlib.sha256()
        for rel in files:
            digest.update(rel.encode() + b"\0")
            digest.update(hashlib.sha256((source / rel).read_bytes()).digest())
        name = digest.hexdigest()
        target = self.root / name
        if not target.exists():
            staging = self.root / f".{name}.{os.getpid()}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging, symlinks=False, ignore_dangling_symlinks=True)
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(target)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)  # another run stored the same tree first
        return name, files

    def path(self, digest: str, relpath: str = "") -> Path:
        base = (self.root / digest).resolve()
        target = (base / relpath).resolve()
        if base not in target.parents and target != base:
            raise ValueError(f"artifact path escapes its tree: {relpath}")
        return target
