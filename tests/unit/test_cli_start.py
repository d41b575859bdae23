"""`ktx get` and the other API commands start without the domain's models and the worker's settings: importing them
costs more than the command itself (bench/cli_start.py measures what is left). These pin the boundary that keeps
them out, so a new top-level import in the CLI cannot quietly bring them back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What only some commands need: the Kratix models and their validation, the settings, Temporal, the release checks.
HEAVY = ("domain.documents", "domain.validation", "worker.settings", "temporalio", "domain.promise_release")


def loaded_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_cli_module_loads_none_of_the_heavy_modules() -> None:
    assert not {m for m in loaded_after("import cli.main") if m.startswith(HEAVY)}


def test_parsing_any_command_line_loads_none_of_them() -> None:
    modules = loaded_after("import cli.main\ncli.main.parser().parse_args(['get', 'promises', '-A'])")
    assert not {m for m in modules if m.startswith(HEAVY)}


def test_a_command_that_needs_the_settings_still_gets_them(tmp_path, monkeypatch) -> None:
    from cli.invocation import Invocation

    monkeypatch.setenv("KTX_HOME", str(tmp_path))
    invocation = Invocation()
    assert invocation.home == tmp_path
    assert invocation.settings.home == tmp_path
    assert invocation.settings is invocation.settings
