"""Pipeline container logs on the worker's disk: each bounded as it is written, read from its end, and kept for the
latest runs only.

A container may print without end; the platform keeps what `ktx logs` is for, the end of a run (where a failure
says why), and tells the reader how much was dropped. Kubelet rotates a container's log at 10 MiB; the last 2 to 4
MiB (two halves of 2 MiB, the older dropped as the newer fills) is some 25,000 to 50,000 lines, more than a reader is
given in one response anyway.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

LOG_KEEP_BYTES = 4 * 1024 * 1024
# What one `ktx logs` entry shows by default, and at most (the whole stored log): a response stays a few MiB however
# much the containers printed.
LOG_RESPONSE_BYTES = 1024 * 1024
# Retention: the newest runs of each pipeline of each object (the workflow shows the latest of each action; Kratix keeps
# 5 Jobs per pipeline), and none older than the longest reconciliation interval (720h), after which every object that
# still reconciles has run again.
LOGS_TO_KEEP = 5
LOG_MAX_AGE_S = 30 * 24 * 3600.0


class BoundedLog:
    """A container's output, of which the last `keep` bytes are kept: written in two halves, the older half dropped
    whenever the newer one fills, so memory and disk stay bounded while the container prints."""

    def __init__(self, path: Path, keep: int = LOG_KEEP_BYTES):
        self.path, self.half = path, max(keep // 2, 1)
        self.older = path.with_name(path.name + ".older")
        self.dropped = self.written = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.older.unlink(missing_ok=True)
        self.file = path.open("wb")

    def write(self, chunk: bytes) -> None:
        while chunk:
            room = self.half - self.written
            self.file.write(chunk[:room])
            self.written += min(room, len(chunk))
            chunk = chunk[room:]
            if self.written >= self.half:
                self.file.close()
                if self.older.exists():
                    self.dropped += self.older.stat().st_size
                os.replace(self.path, self.older)
                self.file, self.written = self.path.open("wb"), 0
        # On disk as it comes: the API reads a running container's log from this file (once per pipe read, <= 64 KiB).
        self.file.flush()

    def close(self) -> None:
        """Leaves one file: a line saying how much was dropped, then the kept end of the output."""
        self.file.close()
        if not self.older.exists():
            return
        whole = self.path.with_name(self.path.name + ".whole")
        with whole.open("wb") as out:
            if self.dropped:
                out.write(
                    f"[ktx: the first {self.dropped} bytes of this container's output were dropped; "
                    f"the last {self.older.stat().st_size + self.written} are kept]\n".encode()
                )
            for part in (self.older, self.path):
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out)
        os.replace(whole, self.path)
        self.older.unlink()


def read_tail(path: Path, limit: int) -> tuple[str, int]:
    """The last `limit` bytes of a log as text, and the log's size: the reader never holds more than it returns."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(size - limit, 0))
        return file.read(limit).decode("utf-8", errors="replace"), size


def sweep_logs(
    logs_dir: Path, keep: int = LOGS_TO_KEEP, max_age_s: float = LOG_MAX_AGE_S, now: float | None = None
) -> int:
    """Removes the run directories (`<run id>/`) beyond the newest `keep` of each pipeline of each object, and any
    older than `max_age_s`; returns how many went. A run id is `<object>-<pipeline>-<8 hex>`, so runs of one pipeline
    share everything before the last `-`."""
    if not logs_dir.is_dir():
        return 0
    now = time.time() if now is None else now
    by_pipeline: dict[str, list[tuple[float, Path]]] = {}
    for run in logs_dir.iterdir():
        if run.is_dir() and not run.is_symlink():
            by_pipeline.setdefault(run.name.rsplit("-", 1)[0], []).append((run.stat().st_mtime, run))
    gone = 0
    for runs in by_pipeline.values():
        runs.sort(reverse=True)
        for index, (modified, run) in enumerate(runs):
            if index >= keep or modified < now - max_age_s:
                shutil.rmtree(run, ignore_errors=True)
                gone += 1
    return gone
