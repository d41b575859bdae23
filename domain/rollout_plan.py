"""A RolloutPlan (`platform.ktx.dev/v1alpha1`, ktx's own kind, not Kratix's): the document, its bounds, and the order
in which it upgrades a Promise's requests from one version to another.

Every field from the client is checked here and refused with the field's path and reason (the API's 422); the plan's
order is computed once, from the requests as they are when it is created, so the preview is exactly what runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, Field

from domain.cron import Window, parse_cron, zone_of
from domain.durations import parse_duration
from domain.errors import FieldError, InvalidDocument
from domain.kube.selectors import Requirement
from domain.labels import label_key_error, label_value_error
from domain.names import LABEL_MAX, NAMESPACE_PATTERN, NAME_PATTERN
from domain.validation import validate_name

GROUP, VERSION = "platform.ktx.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RolloutPlan"

# Bounds. A plan is one workflow whose state holds every request it touches: 5,000 keys is a few hundred KB of state,
# well inside a Temporal payload (2 MB), and five times the benchmark's fleet.
MAX_REQUESTS = 5000
# Groups run one after another; past a handful a plan is better split.
MAX_GROUPS = 20
MAX_NAMESPACES_PER_GROUP = 100
MAX_SELECTOR_TERMS = 20
MAX_SELECTOR_VALUES = 50
# More at once than this is no longer a rollout; the pipelines' own slots limit what actually runs anyway.
MAX_CONCURRENT = 1000
MAX_WINDOWS = 10
# A window is at least a minute (cron's resolution) and at most a week (a weekend freeze is 2-3 days).
MIN_WINDOW_S = 60.0
MAX_WINDOW_S = 7 * 24 * 3600.0
MAX_FAILURE_THRESHOLD = MAX_REQUESTS
# Past a week a plan waiting on one request is stuck, not slow; under a second is less than a re-bind takes to reach
# the request.
MIN_REQUEST_TIMEOUT_S = 1.0
MAX_REQUEST_TIMEOUT_S = 7 * 24 * 3600.0
VERSION_MAX = 63  # versions are label values (kratix.io/promise-version)

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


class PlanWindow(BaseModel):
    schedule: str
    duration_s: float
    time_zone: str

    def window(self) -> Window:
        return Window(parse_cron(self.schedule), self.duration_s, zone_of(self.time_zone))


class PlanGroup(BaseModel):
    name: str
    namespaces: list[str] = Field(default_factory=list)
    # (key, operator, values) as domain.kube.selectors' Requirement takes them.
    selector: list[tuple[str, str, tuple[str, ...]]] = Field(default_factory=list)
    max_concurrent: str | None = None

    def matches(self, namespace: str, labels: dict[str, str]) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        return all(Requirement(k, op, vals).matches(labels) for k, op, vals in self.selector)


class RolloutPlan(BaseModel):
    name: str
    promise: str
    from_version: str
    to_version: str
    groups: list[PlanGroup]
    max_concurrent: str = "1"
    failure_threshold: int = 1
    windows: list[PlanWindow] = Field(default_factory=list)
    # None: a request's run is waited for however long it takes (plans made before requestTimeout have none).
    request_timeout_s: float | None = None

    def windows_of(self) -> list[Window]:
        return [w.window() for w in self.windows]

    def namespaces(self) -> set[str] | None:
        """Every namespace the plan can touch; None when some group is not confined to listed namespaces."""
        found: set[str] = set()
        for group in self.groups:
            if not group.namespaces:
                return None
            found.update(group.namespaces)
        return found


def _text(value: Any, path: str, errors: list[FieldError], max_length: int = VERSION_MAX) -> str:
    if not isinstance(value, str) or not value:
        errors.append(FieldError(path, "Required value: a non-empty string"))
        return ""
    if len(value) > max_length:
        errors.append(FieldError(path, f"Too long: must have at most {max_length} characters"))
        return ""
    return value


def _concurrency(value: Any, path: str, errors: list[FieldError]) -> str | None:
    """A count (1..MAX_CONCURRENT) or a percentage of the group ("25%", 1..100), as text."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        if 1 <= value <= MAX_CONCURRENT:
            return str(value)
        errors.append(FieldError(path, f"Invalid value: {value}: must be from 1 to {MAX_CONCURRENT}"))
        return None
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() and len(value) <= 4:
        if 1 <= int(value[:-1]) <= 100:
            return value
    shown = repr(value)[:40]
    errors.append(
        FieldError(path, f"Invalid value: {shown}: must be a number from 1 to {MAX_CONCURRENT} or a percentage 1%-100%")
    )
    return None


def concurrency_limit(text: str, group_size: int) -> int:
    """How many of a group's requests may run at once: a percentage rounds up, and is never below one."""
    if text.endswith("%"):
        return max(1, math.ceil(group_size * int(text[:-1]) / 100))
    return int(text)


def _selector(value: Any, path: str, errors: list[FieldError]) -> list[tuple[str, str, tuple[str, ...]]]:
    if not isinstance(value, dict):
        errors.append(FieldError(path, "Invalid value: must be a label selector (matchLabels, matchExpressions)"))
        return []
    unknown = set(value) - {"matchLabels", "matchExpressions"}
    if unknown:
        errors.append(FieldError(f"{path}.{sorted(unknown)[0]}", "field not declared in schema"))
    terms: list[tuple[str, str, tuple[str, ...]]] = []
    labels = value.get("matchLabels") or {}
    expressions = value.get("matchExpressions") or []
    if not isinstance(labels, dict):
        errors.append(FieldError(f"{path}.matchLabels", "Invalid value: must be a map of label keys to values"))
        labels = {}
    if not isinstance(expressions, list):
        errors.append(FieldError(f"{path}.matchExpressions", "Invalid value: must be a list"))
        expressions = []
    if len(labels) + len(expressions) > MAX_SELECTOR_TERMS:
        errors.append(FieldError(path, f"Too many: must have at most {MAX_SELECTOR_TERMS} terms"))
        return []
    for key, label in labels.items():
        reason = label_key_error(key) or label_value_error(label)
        if reason:
            errors.append(FieldError(f"{path}.matchLabels[{str(key)[:63]}]", reason))
        else:
            terms.append((key, "in", (label,)))
    for index, expression in enumerate(expressions):
        where = f"{path}.matchExpressions[{index}]"
        if not isinstance(expression, dict):
            errors.append(FieldError(where, "Invalid value: must be {key, operator, values}"))
            continue
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        reason = label_key_error(key)
        if reason:
            errors.append(FieldError(f"{where}.key", reason))
            continue
        if operator not in _OPERATORS:
            errors.append(
                FieldError(f"{where}.operator", f"Unsupported value: {str(operator)[:40]!r}: one of {list(_OPERATORS)}")
            )
            continue
        if not isinstance(values, list) or len(values) > MAX_SELECTOR_VALUES:
            errors.append(FieldError(f"{where}.values", f"Invalid value: at most {MAX_SELECTOR_VALUES} strings"))
            continue
        bad = next((r for v in values if (r := label_value_error(v))), None)
        if bad:
            errors.append(FieldError(f"{where}.values", bad))
            continue
        if (operator in ("In", "NotIn")) != bool(values):
            errors.append(FieldError(f"{where}.values", f"Invalid value: {operator} takes values, Exists does not"))
            continue
        terms.append((key, _OPERATORS[operator], tuple(values)))
    return terms


def _group(value: Any, path: str, errors: list[FieldError]) -> PlanGroup | None:
    if not isinstance(value, dict):
        errors.append(FieldError(path, "Invalid value: must be {name, namespaces or selector, maxConcurrent}"))
        return None
    before = len(errors)
    name = value.get("name")
    errors += validate_name(f"{path}.name", name, max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN)
    unknown = set(value) - {"name", "namespaces", "selector", "maxConcurrent"}
    if unknown:
        errors.append(FieldError(f"{path}.{sorted(unknown)[0]}", "field not declared in schema"))
    namespaces = value.get("namespaces") or []
    if not isinstance(namespaces, list) or len(namespaces) > MAX_NAMESPACES_PER_GROUP:
        errors.append(FieldError(f"{path}.namespaces", f"Invalid value: a list of at most {MAX_NAMESPACES_PER_GROUP}"))
        namespaces = []
    for index, namespace in enumerate(namespaces):
        errors += validate_name(
            f"{path}.namespaces[{index}]", namespace, max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN
        )
    selector = _selector(value["selector"], f"{path}.selector", errors) if "selector" in value else []
    if not namespaces and "selector" not in value:
        errors.append(FieldError(path, "Required value: namespaces or selector (or both)"))
    limit = _concurrency(value["maxConcurrent"], f"{path}.maxConcurrent", errors) if "maxConcurrent" in value else None
    if len(errors) > before:
        return None
    return PlanGroup(name=name, namespaces=list(dict.fromkeys(namespaces)), selector=selector, max_concurrent=limit)


def _window(value: Any, path: str, errors: list[FieldError]) -> PlanWindow | None:
    if not isinstance(value, dict):
        errors.append(FieldError(path, "Invalid value: must be {schedule, duration, timeZone}"))
        return None
    before = len(errors)
    schedule = value.get("schedule")
    try:
        parse_cron(schedule)
    except ValueError as exc:
        errors.append(FieldError(f"{path}.schedule", f"Invalid value: {str(schedule)[:100]!r}: {exc}"))
    duration = value.get("duration")
    seconds = 0.0
    try:
        seconds = parse_duration(str(duration)) if isinstance(duration, str) and len(duration) <= 32 else -1.0
    except ValueError:
        seconds = -1.0
    if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
        errors.append(
            FieldError(f"{path}.duration", f"Invalid value: {str(duration)[:32]!r}: a duration from 1m to 168h")
        )
    zone = value.get("timeZone", "UTC")
    try:
        zone_of(zone)
    except ValueError as exc:
        errors.append(FieldError(f"{path}.timeZone", f"Invalid value: {str(zone)[:64]!r}: {exc}"))
    if len(errors) > before:
        return None
    return PlanWindow(schedule=schedule, duration_s=seconds, time_zone=zone)


def _request_timeout(value: Any, errors: list[FieldError]) -> float | None:
    seconds = -1.0
    if isinstance(value, str) and len(value) <= 32:
        try:
            seconds = parse_duration(value)
        except ValueError:
            pass
    if MIN_REQUEST_TIMEOUT_S <= seconds <= MAX_REQUEST_TIMEOUT_S:
        return seconds
    errors.append(
        FieldError("spec.requestTimeout", f"Invalid value: {str(value)[:32]!r}: a duration from 1s to 168h (7 days)")
    )
    return None


def plan_of(stored: dict[str, Any]) -> RolloutPlan:
    """The plan a stored or served RolloutPlan holds: its status and the platform's own fields are not the plan's."""
    return parse_plan({k: v for k, v in stored.items() if k in ("apiVersion", "kind", "metadata", "spec")})


def parse_plan(document: Any) -> RolloutPlan:
    """The plan, or InvalidDocument naming every field at fault."""
    if not isinstance(document, dict):
        raise InvalidDocument([FieldError("document", "Invalid value: must be an object")])
    errors: list[FieldError] = []
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        errors.append(FieldError("apiVersion", f"Unsupported value: a RolloutPlan is {API_VERSION!r}, kind {KIND}"))
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    name = metadata.get("name")
    # A plan's name is a segment of its workflow ID and a label value: a DNS-1123 label.
    errors += validate_name("metadata.name", name, max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN)
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise InvalidDocument([*errors, FieldError("spec", "Required value")])
    unknown = set(spec) - {
        "promiseRef",
        "fromVersion",
        "toVersion",
        "groups",
        "maxConcurrent",
        "failureThreshold",
        "windows",
        "requestTimeout",
    }
    if unknown:
        errors.append(FieldError(f"spec.{sorted(unknown)[0]}", "field not declared in schema"))
    ref = spec.get("promiseRef") if isinstance(spec.get("promiseRef"), dict) else {}
    promise = ref.get("name")
    errors += validate_name("spec.promiseRef.name", promise, max_length=LABEL_MAX, pattern=NAME_PATTERN)
    from_version = _text(spec.get("fromVersion"), "spec.fromVersion", errors)
    to_version = _text(spec.get("toVersion"), "spec.toVersion", errors)
    if from_version and from_version == to_version:
        errors.append(FieldError("spec.toVersion", "Invalid value: must differ from spec.fromVersion"))
    raw_groups = spec.get("groups")
    groups: list[PlanGroup] = []
    if not isinstance(raw_groups, list) or not raw_groups:
        errors.append(FieldError("spec.groups", "Required value: at least one group"))
    elif len(raw_groups) > MAX_GROUPS:
        errors.append(FieldError("spec.groups", f"Too many: {len(raw_groups)}: must have at most {MAX_GROUPS} items"))
    else:
        for index, raw in enumerate(raw_groups):
            group = _group(raw, f"spec.groups[{index}]", errors)
            if group is not None:
                groups.append(group)
        names = [g.name for g in groups]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            errors.append(FieldError("spec.groups", f"Duplicate value: group name {duplicate!r}"))
    limit = _concurrency(spec.get("maxConcurrent", 1), "spec.maxConcurrent", errors) or "1"
    threshold = spec.get("failureThreshold", 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= MAX_FAILURE_THRESHOLD:
        errors.append(
            FieldError(
                "spec.failureThreshold", f"Invalid value: {str(threshold)[:20]}: from 1 to {MAX_FAILURE_THRESHOLD}"
            )
        )
        threshold = 1
    raw_windows = spec.get("windows") or []
    windows: list[PlanWindow] = []
    if not isinstance(raw_windows, list) or len(raw_windows) > MAX_WINDOWS:
        errors.append(FieldError("spec.windows", f"Invalid value: a list of at most {MAX_WINDOWS} windows"))
    else:
        for index, raw in enumerate(raw_windows):
            window = _window(raw, f"spec.windows[{index}]", errors)
            if window is not None:
                windows.append(window)
    request_timeout = _request_timeout(spec["requestTimeout"], errors) if "requestTimeout" in spec else None
    if errors:
        raise InvalidDocument(errors)
    return RolloutPlan(
        name=name,
        promise=promise,
        from_version=from_version,
        to_version=to_version,
        groups=groups,
        max_concurrent=limit,
        failure_threshold=threshold,
        windows=windows,
        request_timeout_s=request_timeout,
    )


@dataclass(frozen=True)
class Candidate:
    """A live request of the plan's Promise, as the plan sees it."""

    namespace: str
    name: str
    labels: dict[str, str]
    # The version it last ran on (status.promiseVersion); only requests on the plan's fromVersion are upgraded.
    version: str | None
    document: dict[str, Any] = field(default_factory=dict)


class RequestKey(BaseModel):
    namespace: str
    name: str


class OrderedGroup(BaseModel):
    name: str
    limit: int
    requests: list[RequestKey]


class RefusedRequest(BaseModel):
    """A request that would not validate under the target version's schema: left on its version, and reported."""

    namespace: str
    name: str
    group: str
    field: str
    reason: str


class PlanOrder(BaseModel):
    groups: list[OrderedGroup]
    refused: list[RefusedRequest] = Field(default_factory=list)
    # Requests of the Promise the plan leaves alone: on another version, or in no group.
    not_selected: int = 0

    @property
    def size(self) -> int:
        return sum(len(g.requests) for g in self.groups)


def order_plan(
    plan: RolloutPlan, candidates: list[Candidate], validate: Callable[[dict[str, Any]], list[FieldError]]
) -> PlanOrder:
    """Which requests the plan upgrades, group by group, in (namespace, name) order; each request is in the first
    group that selects it. `validate` checks a request against the target version's schema: those it refuses are
    reported and left out. InvalidDocument (spec.groups) when the plan is over MAX_REQUESTS."""
    members: list[list[RequestKey]] = [[] for _ in plan.groups]
    refused: list[RefusedRequest] = []
    not_selected = 0
    for candidate in sorted(candidates, key=lambda c: (c.namespace, c.name)):
        index = next((i for i, g in enumerate(plan.groups) if g.matches(candidate.namespace, candidate.labels)), None)
        if index is None or candidate.version != plan.from_version:
            not_selected += 1
            continue
        problems = validate(candidate.document)
        if problems:
            first = problems[0]
            group = plan.groups[index].name
            refused.append(
                RefusedRequest(
                    namespace=candidate.namespace,
                    name=candidate.name,
                    group=group,
                    field=first.field,
                    reason=first.reason,
                )
            )
            continue
        members[index].append(RequestKey(namespace=candidate.namespace, name=candidate.name))
    total = sum(len(m) for m in members)
    if total > MAX_REQUESTS:
        raise InvalidDocument(
            [FieldError("spec.groups", f"Too many: the groups select {total} requests: at most {MAX_REQUESTS}")]
        )
    groups = [
        OrderedGroup(name=g.name, limit=concurrency_limit(g.max_concurrent or plan.max_concurrent, len(m)), requests=m)
        for g, m in zip(plan.groups, members)
    ]
    return PlanOrder(groups=groups, refused=refused, not_selected=not_selected)
