"""What the benchmarks share: the embedded stack (`ktx up` under a throw-away KTX_HOME on free ports) and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ktx(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def stack_env(home: Path, **extra: str) -> dict[str, str]:
    """Free ports, so a benchmark never meets a developer's own `ktx up` (or another benchmark's)."""
    return {**os.environ, "KTX_HOME": str(home), "KTX_API_PORT": str(free_port()), "KTX_TEMPORAL_PORT": str(free_port()),
            "KTX_UI_PORT": str(free_port()), **extra}


@dataclass
class Stack:
    env: dict[str, str]
    home: Path
    api_url: str
    remote: Path
    pids: dict[str, int]


@contextmanager
def running_stack(**extra_env: str) -> Iterator[Stack]:
    """A fresh stack (own Temporal database, worker, API, state store), stopped and removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="ktx-bench-"))
    env = stack_env(home, **extra_env)
    try:
        ktx(env, "up")
        try:
            state = json.loads((home / "stack.json").read_text())
            yield Stack(env, home, state["api_url"], Path(state["state_store"]), state["pids"])
        finally:
            ktx(env, "down")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set so far (ru_maxrss only covers this process and waited-for children)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for pid {pid}")
