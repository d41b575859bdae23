"""Imports flow one way: `cli`/`api` -> `worker` -> `service` -> `workflows` -> `activities` -> `domain`.

Every .py of the project's packages is parsed (ast, nothing imported) and each import, wherever it is (module top,
inside a function, under `if TYPE_CHECKING:`), is checked against the layer map below: a module may import its own
package or a package of a lower layer, never a higher one nor another package of its own layer (`cli` and `api`).

`TYPE_CHECKING` imports count. A type annotation naming a higher layer's class couples the lower module to it as much
as a call does (and a checker follows it); where a lower layer needs only the shape of a higher one's object, it says
so with a Protocol of its own (activities/stores/secrets.py's SecretSettings, activities/platform/apply.py's
PlatformOperations), which the higher layer satisfies and hands in.

`worker` wires everything: it registers the workflows and activities and hands the apply-back activity the service,
so it sits above `service`; `cli` and `api` read the process settings and health of `worker` (worker/settings.py,
worker/health.py), so they sit above it. `tests` and `bench` may import anything.

Inside `activities`, the subpackages have their own rule (each one's __init__ docstring says it): what each may
import of the others. Modules at the root of `activities` (metrics.py, kube_client.py) are shared by all of them and
import none of them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Higher imports lower. Equal ranks of different packages may not import each other.
LAYERS = {"domain": 0, "activities": 1, "workflows": 2, "service": 3, "worker": 4, "api": 5, "cli": 5}
NOT_LAYERED = {"tests", "bench"}  # may import anything; nothing imports them

# activities/<subpackage>/ -> the other subpackages it may import (the root modules are open to all).
ACTIVITIES = {
    "artifacts": set(),
    "pipelines": {"artifacts"},
    "stores": {"artifacts"},
    "actions": {"stores"},
    "platform": {"artifacts", "stores"},
}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def module_name(relpath: str) -> str:
    parts = relpath.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """Every module an import statement anywhere in the tree names, relative imports resolved."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else base))
    return found


def _activities_part(module: str) -> str | None:
    """The subpackage of activities a module is in, or None for the package's root modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ACTIVITIES else None


def check(sources: dict[str, str]) -> list[Violation]:
    """Violations of the rule in a set of modules, given as {path relative to the root: source}."""
    known = {module_name(p) for p in sources}
    violations = []
    for relpath, source in sorted(sources.items()):
        module = module_name(relpath)
        layer = module.split(".")[0]
        if layer not in LAYERS:
            violations.append(Violation(module, 0, "-", f"package {layer!r} is in no layer (add it to LAYERS)"))
            continue
        tree = ast.parse(source, relpath)
        for line, imported in imported_modules(tree, module, relpath.endswith("__init__.py"), known):
            target = imported.split(".")[0]
            if target in NOT_LAYERED:
                violations.append(Violation(module, line, imported, f"the project's packages never import {target}"))
                continue
            if target not in LAYERS or target == layer:
                if target == layer == "activities":
                    violations += _activities_violation(module, line, imported)
                continue
            if LAYERS[target] >= LAYERS[layer]:
                violations.append(
                    Violation(
                        module,
                        line,
                        imported,
                        f"{layer} (layer {LAYERS[layer]}) may not import {target} (layer {LAYERS[target]})",
                    )
                )
    return violations


def _activities_violation(module: str, line: int, imported: str) -> list[Violation]:
    mine, theirs = _activities_part(module), _activities_part(imported)
    if theirs is None or theirs == mine:
        return []
    allowed = ACTIVITIES[mine] if mine else set()
    if theirs in allowed:
        return []
    where = f"activities.{mine}" if mine else "a root module of activities"
    may = f"only {', '.join(sorted(allowed))}" if allowed else "none"
    return [Violation(module, line, imported, f"{where} may import {may} of the other activities subpackages")]


def project_sources() -> dict[str, str]:
    sources = {}
    for package in sorted(LAYERS):
        for path in sorted((ROOT / package).rglob("*.py")):
            sources[path.relative_to(ROOT).as_posix()] = path.read_text()
    return sources


def test_no_module_imports_a_higher_layer() -> None:
    sources = project_sources()
    assert len(sources) > 80, "the packages were not found"
    violations = check(sources)
    assert not violations, "upward imports:\n" + "\n".join(map(str, violations))


def test_every_package_of_the_project_is_in_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {
        p.parent.name for p in ROOT.glob("*/*.py") if p.parent.name not in {".venv", "examples", "scripts"}
    }
    assert packages - set(LAYERS) - NOT_LAYERED == set(), "place every package in LAYERS (or NOT_LAYERED)"
    assert set(ACTIVITIES) == {p.parent.name for p in (ROOT / "activities").glob("*/__init__.py")}


def test_each_activities_subpackage_says_in_one_line_what_it_holds_and_may_import() -> None:
    for name in ACTIVITIES:
        doc = ast.get_docstring(ast.parse((ROOT / "activities" / name / "__init__.py").read_text()))
        assert doc and "\n" not in doc and "Imports" in doc, f"activities/{name}/__init__.py: {doc!r}"


def test_the_check_catches_upward_imports() -> None:
    """The checker itself, on modules written here: each planted upward import is found, at its line."""
    planted = {
        "domain/a.py": "import os\n\n\ndef f():\n    from workflows.promise import PromiseWorkflow\n",
        "activities/stores/b.py": (
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from service.platform import Platform\n"
        ),
        "workflows/c.py": "import worker.settings\n",
        "service/d.py": "from api import app\n",
        "api/e.py": "from cli.main import main\n",
        "activities/artifacts/f.py": "from activities.stores.writes import GroupWrite\n",
        "activities/g.py": "from .pipelines import activity\n",
        "activities/pipelines/activity.py": "",
        "activities/pipelines/__init__.py": "",
        "cli/h.py": "from tests.waiting import eventually\n",
        "elsewhere/i.py": "",
    }
    found = {(v.module, v.line, v.imported) for v in check(planted)}
    assert found == {
        ("domain.a", 5, "workflows.promise"),
        ("activities.stores.b", 4, "service.platform"),
        ("workflows.c", 1, "worker.settings"),
        ("service.d", 1, "api"),
        ("api.e", 1, "cli.main"),
        ("activities.artifacts.f", 1, "activities.stores.writes"),
        ("activities.g", 1, "activities.pipelines.activity"),
        ("cli.h", 1, "tests.waiting"),
        ("elsewhere.i", 0, "-"),
    }


def test_the_check_lets_downward_and_sideways_imports_through() -> None:
    allowed = {
        "cli/a.py": "from worker.settings import Settings\nimport domain.durations\nfrom cli import stack\n",
        "api/b.py": "from service.platform import Platform\nfrom activities.stores.secrets import secret_store_for\n",
        "worker/c.py": "from service.platform import Platform\nfrom workflows.promise import PromiseWorkflow\n",
        "workflows/d.py": "from activities.pipelines.models import RunPipelineInput\nfrom . import options\n",
        "activities/platform/e.py": (
            "from activities.stores.writes import GroupWrite\nfrom activities.metrics import observe_pipeline\n"
        ),
        "activities/actions/f.py": "from ..stores import secrets\nfrom .errors import provider_error\n",
        "domain/g.py": "import yaml\nfrom pydantic import BaseModel\n",
    }
    assert check(allowed) == []
