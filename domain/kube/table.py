"""meta.k8s.io/v1 Table, what `kubectl get` prints: Name, the resource's printer columns (the JSONPath subset CRDs
use: `.a.b`, `.a[0]`, `.a[*]`, `.a['b.c']`, `[?(@.k=="v")]`), or Age when it declares none, as the apiserver's
CRD table convertor does."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Callable

_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$-]+)
      | \[(?P<index>-?\d+|\*)\]
      | \[['"](?P<quoted>[^'"]+)['"]\]
      | \[\?\(@\.(?P<filter>[A-Za-z0-9_.-]+)\s*==\s*(?P<q>["'])(?P<value>[^"']*)(?P=q)\)\]
      | \.\*
    """,
    re.X,
)


class ColumnPathError(ValueError):
    pass


def compile_path(path: str) -> list[tuple[str, Any]]:
    """A printer column's jsonPath as steps; raises ColumnPathError for anything outside the subset."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    text = text.removeprefix("$")
    steps: list[tuple[str, Any]] = []
    at = 0
    while at < len(text):
        match = _STEP.match(text, at)
        if not match:
            raise ColumnPathError(f"unsupported JSONPath {path!r} at {text[at:]!r}")
        if match.group("field") is not None:
            steps.append(("field", match.group("field")))
        elif match.group("quoted") is not None:
            steps.append(("field", match.group("quoted")))
        elif match.group("index") is not None:
            index = match.group("index")
            steps.append(("all", None) if index == "*" else ("index", int(index)))
        elif match.group("filter") is not None:
            steps.append(("filter", (match.group("filter").split("."), match.group("value"))))
        else:
            steps.append(("all", None))
        at = match.end()
    return steps


def find(obj: Any, steps: list[tuple[str, Any]]) -> list[Any]:
    current = [obj]
    for kind, arg in steps:
        found: list[Any] = []
        for node in current:
            if kind == "field" and isinstance(node, dict) and arg in node:
                found.append(node[arg])
            elif kind == "index" and isinstance(node, list) and -len(node) <= arg < len(node):
                found.append(node[arg])
            elif kind == "all":
                found.extend(node if isinstance(node, list) else node.values() if isinstance(node, dict) else [])
            elif kind == "filter" and isinstance(node, list):
                keys, value = arg
                for item in node:
                    probe: Any = item
                    for key in keys:
                        probe = probe.get(key) if isinstance(probe, dict) else None
                    if probe is not None and str(probe) == value:
                        found.append(item)
        current = found
    return current


def age(timestamp: Any, now: datetime) -> str:
    """apimachinery's duration.HumanDuration, as `kubectl get` shows AGE."""
    try:
        then = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int((now - then).total_seconds())
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if days < 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _cell(value: Any, type_: str, now: datetime) -> Any:
    if type_ == "date":
        return age(value, now)
    if type_ in ("integer", "number") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value).lower() if isinstance(value, bool) else str(value)


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}

# Kinds whose apiserver columns no JSONPath can compute (pkg/printers/internalversion: a Secret's DATA is a count).
Computed = Callable[[dict[str, Any]], Any]
CORE_COLUMNS: dict[str, list[tuple[dict[str, Any], Computed]]] = {
    "Secret": [
        ({"name": "Type", "type": "string"}, lambda o: str(o.get("type") or "Opaque")),
        ({"name": "Data", "type": "integer"}, lambda o: len(o.get("data") or {})),
    ],
}


def table(
    objects: list[dict[str, Any]],
    kind: str,
    printer_columns: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    now: datetime | None = None,
    include_object: str = "Metadata",
    resource_version: str = "",
) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    computed = CORE_COLUMNS.get(kind)
    if computed is not None:
        definitions = [NAME_COLUMN, *({**c, "format": "", "description": "", "priority": 0} for c, _ in computed)]
        definitions.append({**_definition(AGE)})
        values: list[Computed] = [lambda o: o["metadata"].get("name", "")]
        values += [fn for _, fn in computed]
        values.append(lambda o: age(o["metadata"].get("creationTimestamp"), now))
    else:
        columns = list(printer_columns) or [AGE]
        compiled = [(c, compile_path(str(c.get("jsonPath", "")))) for c in columns]
        definitions = [NAME_COLUMN, *(_definition(c) for c, _ in compiled)]
        values = [lambda o: o["metadata"].get("name", "")]
        for column, steps in compiled:
            values.append(_column_value(steps, str(column.get("type", "string")), now))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [value(obj) for value in values]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def _definition(column: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(column.get("name", "")),
        "type": str(column.get("type", "string")),
        "format": str(column.get("format", "")),
        "description": str(column.get("description", "")),
        "priority": int(column.get("priority", 0) or 0),
    }


def _column_value(steps: list[tuple[str, Any]], type_: str, now: datetime) -> Computed:
    def value(obj: dict[str, Any]) -> Any:
        found = find(obj, steps)
        return None if not found or found[0] is None else _cell(found[0], type_, now)

    return value
