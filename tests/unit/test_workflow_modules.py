"""The worker passes workflows/, domain/ and activities/ through the workflow sandbox (worker/main.py WORKFLOW_RUNNER):
each is imported once and shared by every workflow in the worker, where the sandbox would have given each workflow
fresh copies. Sharing is safe only while those modules keep no state that a workflow could change."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("workflows", "domain", "activities")
MUTABLE = (list, dict, set, bytearray)


def _is_workflow(cls: type) -> bool:
    return hasattr(cls, "__temporal_workflow_definition")


def _modules(package: str) -> list[str]:
    found = importlib.import_module(package)
    return [package] + [m.name for m in pkgutil.walk_packages(found.__path__, f"{package}.")]


@pytest.mark.parametrize("package", SHARED)
def test_no_function_rebinds_module_state(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Global):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_workflow_modules_and_classes_hold_no_mutable_values() -> None:
    """Constants in domain/ (tables of rules) were shared before, through `imports_passed_through`; the workflow modules
    were not, so a list at module level, or on a workflow class, would now be one list for every workflow."""
    offenders, workflow_classes = [], 0
    for name in _modules("workflows"):
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if isinstance(value, MUTABLE) and not attribute.startswith("__"):
                offenders.append(f"{name}.{attribute}")
            if isinstance(value, type) and value.__module__ == name and _is_workflow(value):
                workflow_classes += 1
                offenders += [
                    f"{name}.{attribute}.{a}"
                    for a, v in vars(value).items()
                    if isinstance(v, MUTABLE) and a[:2] != "__"
                ]
    assert offenders == []
    assert workflow_classes >= 8  # the walk found the workflow classes
