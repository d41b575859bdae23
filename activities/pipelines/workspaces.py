"""Pipeline workspaces (input/, output/, metadata/ of one run) under a directory the worker owns, never left behind.

A run removes its workspace when it ends; a worker killed mid-run (`kill -9`, OOM, a lost node) cannot. Each worker
process therefore works in its own directory, `<root>/<instance>/`, and holds an exclusive lock on
`<root>/<instance>.lock` while it lives: the kernel drops the lock when the process dies, however it dies. Any worker
sharing the root (at start, and periodically) removes the directories whose lock it can take. A process id would not
do: a restarted worker in a container is pid 1 again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from pathlib import Path


class Workspaces:
    def __init__(self, root: Path):
        self.root = root
        self.instance = uuid.uuid4().hex
        self._lock: int | None = None

    @property
    def own(self) -> Path:
        return self.root / self.instance

    def new(self) -> Path:
        """A fresh, empty workspace for one run."""
        if self._lock is None:
            self.root.mkdir(parents=True, exist_ok=True)
            # The lock before the directory: a sweeper never sees this directory unlocked.
            self._lock = os.open(self.root / f"{self.instance}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.own.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="run-", dir=self.own))

    def sweep(self) -> int:
        """Removes the workspaces of dead workers; returns how many workers' directories went."""
        if not self.root.is_dir():
            return 0
        gone = 0
        for entry in self.root.iterdir():
            if entry.name == self.instance or not entry.is_dir() or entry.is_symlink():
                continue
            lock = self.root / f"{entry.name}.lock"
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                fd = None  # its owner never got as far as its lock, or a sweeper removed it with the directory
            try:
                if fd is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a live worker's
                shutil.rmtree(entry, ignore_errors=True)
                lock.unlink(missing_ok=True)
                gone += 1
            finally:
                if fd is not None:
                    os.close(fd)
        return gone
