"""`ktx` starts in a fraction of a second: the CLI talks HTTP only, so it must not load the worker or Temporal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["worker.main", "kubernetes", "boto3", "temporalio.client", "temporalio.worker"]


def test_the_cli_does_not_import_the_worker_or_the_temporal_client() -> None:
    # A fresh interpreter: this test process has long imported all of them.
    code = f"import sys, json, cli.main; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    )
    assert loaded == [], f"`ktx` start-up imports {loaded}; import them where they are used (see cli/stack.py)"
