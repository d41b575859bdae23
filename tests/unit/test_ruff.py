"""The tree passes `ruff check` (lines of at most 120 characters, pyflakes) and is formatted by `ruff format`.

The settings are pyproject.toml's [tool.ruff]; ruff is the venv's own (the dev extras, pinned in constraints.txt), so
CI and every developer check with the same version. To fix: `.venv/bin/ruff format . && .venv/bin/ruff check .`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    assert RUFF.is_file(), f"{RUFF} is missing: install the dev extras (pip install -c constraints.txt -e '.[dev]')"
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_passes() -> None:
    done = _ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert done.returncode == 0, f"ruff check:\n{done.stdout[-5000:]}{done.stderr[-2000:]}"


def test_the_tree_is_ruff_formatted() -> None:
    done = _ruff("format", "--no-cache", "--check", ".")
    assert done.returncode == 0, (
        f"ruff format --check (run `ruff format .`):\n{done.stdout[-5000:]}{done.stderr[-2000:]}"
    )
