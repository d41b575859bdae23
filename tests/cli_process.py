"""The real `ktx` CLI in its own process, for async tests: the test's event loop keeps running the worker meanwhile."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def run_ktx(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `ktx ARGS`, with `env` over the test's environment minus its token settings."""
    full = {k: v for k, v in os.environ.items() if k not in ("KTX_TOKEN", "KTX_API_TOKENS_FILE")}
    full.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=ROOT,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()
