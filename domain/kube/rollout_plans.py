"""RolloutPlans (domain/rollout_plan.py) as the Kubernetes API serves them: their schema for `kubectl explain`, their
printer columns, the progress a column shows, and what a write to a plan that exists asks for.

A plan does not change once it runs, so a write to one is either a control (the `ktx.dev/control` annotation:
`kubectl annotate rolloutplan db-v2 ktx.dev/control=pause`), nothing at all (kubectl's own bookkeeping), or refused
with 409, as the REST route refuses a different spec under the same name. The annotation is an instruction, not kept:
the plan's `status.phase` says what it did, and the next `kubectl annotate` needs no `--overwrite`.
"""

from __future__ import annotations

from typing import Any

from domain.errors import Conflict, FieldError, InvalidDocument
from domain.rollout_progress import Control, MemberState

CONTROL_ANNOTATION = "ktx.dev/control"
# Controls a write may ask for; `delete` is the DELETE verb's.
CONTROLS: tuple[Control, ...] = ("pause", "resume", "abort", "rollback")
# What kubectl writes on every client-side apply: bookkeeping, not a change to the plan.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Metadata the server keeps or a client may send back unchanged from its read.
_SERVER_METADATA = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink")
# A request is done with once it is in none of these.
_UNDER_WAY: tuple[MemberState, ...] = ("Pending", "Running", "RollingBack")

PRINTER_COLUMNS: tuple[dict[str, str], ...] = (
    {"name": "Promise", "type": "string", "jsonPath": ".spec.promiseRef.name"},
    {"name": "From", "type": "string", "jsonPath": ".spec.fromVersion"},
    {"name": "To", "type": "string", "jsonPath": ".spec.toVersion"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
    {"name": "Failures", "type": "integer", "jsonPath": ".status.failures"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def _s(type_: str, description: str, **more: Any) -> dict[str, Any]:
    return {"type": type_, "description": description, **more}


_CONCURRENCY = {
    "x-kubernetes-int-or-string": True,
    "description": "How many requests run at once: a number (1-1000) or a percentage of the group (1%-100%, rounded "
    "up, at least 1).",
}
_GROUP = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _s("string", "The group's name, unique in the plan."),
        "namespaces": _s(
            "array",
            "The namespaces whose requests the group takes (at most 100); none: every namespace.",
            items={"type": "string"},
        ),
        "selector": _s(
            "object",
            "A label selector of the requests the group takes (matchLabels, matchExpressions).",
            **{"x-kubernetes-preserve-unknown-fields": True},
        ),
        "maxConcurrent": _CONCURRENCY,
    },
}
_WINDOW = {
    "type": "object",
    "required": ["schedule", "duration"],
    "properties": {
        "schedule": _s("string", "When the window opens: a 5-field cron expression."),
        "duration": _s("string", "How long it stays open (1m to 168h), e.g. 4h."),
        "timeZone": _s("string", "The IANA time zone the schedule is read in (UTC by default)."),
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RolloutPlan moves a Promise's requests from one version to another, group by group, a few at a "
    "time, inside the windows allowed, halting at the first failures. Controlled with the ktx.dev/control annotation "
    "(pause, resume, abort, rollback).",
    "properties": {
        "spec": {
            "type": "object",
            "description": "The plan; it does not change once it runs.",
            "required": ["promiseRef", "fromVersion", "toVersion", "groups"],
            "properties": {
                "promiseRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _s("string", "The Promise whose requests the plan upgrades.")},
                },
                "fromVersion": _s("string", "The version the requests upgraded run on now."),
                "toVersion": _s("string", "The version they are re-bound to."),
                "groups": _s(
                    "array", "Run in order; a request belongs to the first group that selects it.", items=_GROUP
                ),
                "maxConcurrent": _CONCURRENCY,
                "failureThreshold": _s("integer", "Failures that halt the plan (default 1)."),
                "windows": _s("array", "When requests may start; none: any time.", items=_WINDOW),
                "requestTimeout": _s(
                    "string",
                    "How long the plan waits for a request's run (1s to 168h), e.g. 30m; past it the request counts "
                    "TimedOut, a failure. None: as long as the run takes.",
                ),
            },
        },
        "status": {
            "type": "object",
            "description": "Where the plan is, published by its workflow.",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "phase": _s(
                    "string",
                    "Running, WaitingForWindow, Paused, Halted, Aborted, Succeeded, RollingBack or RolledBack.",
                ),
                "progress": _s("string", "The requests done with, of all the plan's requests."),
                "failures": _s("integer", "Failures counted towards spec.failureThreshold."),
                "groups": _s(
                    "array",
                    "Each group's limit, size and requests in each state.",
                    items={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                ),
            },
        },
    },
}


def with_progress(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with `status.progress` (`done/total`) for its column: a JSONPath cannot add up the groups' counts."""
    status = plan.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("groups"), list):
        return plan
    total = done = 0
    for group in status["groups"]:
        counts = group.get("counts") if isinstance(group, dict) else None
        if not isinstance(counts, dict):
            continue
        for state, count in counts.items():
            if isinstance(count, int):
                total += count
                done += 0 if state in _UNDER_WAY else count
    return {**plan, "status": {**status, "progress": f"{done}/{total}"}}


def _comparable(metadata: Any) -> dict[str, Any]:
    metadata = metadata if isinstance(metadata, dict) else {}
    kept = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA and v not in (None, {}, [])}
    annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k not in (CONTROL_ANNOTATION, LAST_APPLIED)
    }
    if annotations:
        kept["annotations"] = annotations
    else:
        kept.pop("annotations", None)
    return kept


def requested_control(current: dict[str, Any], wanted: dict[str, Any]) -> Control | None:
    """What a write of `wanted` over the plan `current` asks for: a control, or None (nothing changes). Conflict when
    it would change the plan, InvalidDocument for a control that is not one."""
    name = (current.get("metadata") or {}).get("name")
    if wanted.get("spec") != current.get("spec") or _comparable(wanted.get("metadata")) != _comparable(
        current.get("metadata")
    ):
        raise Conflict(
            f'rolloutplan "{name}" exists with another spec: a plan does not change once it runs; delete it and '
            f"create it again (its controls are the {CONTROL_ANNOTATION} annotation)"
        )
    annotations = (wanted.get("metadata") or {}).get("annotations") or {}
    control = annotations.get(CONTROL_ANNOTATION) if isinstance(annotations, dict) else None
    if control is None:
        return None
    if control not in CONTROLS:
        raise InvalidDocument(
            [
                FieldError(
                    f"metadata.annotations[{CONTROL_ANNOTATION}]",
                    f"Unsupported value: {str(control)[:40]!r}: supported values: {', '.join(CONTROLS)}",
                )
            ]
        )
    return control
