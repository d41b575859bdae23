"""Object status as Kratix writes it: the status.yaml merge, conditions, pipeline phases and the summary phase."""

from __future__ import annotations

import copy
import json
from typing import Any

from domain.errors import FieldError, InvalidDocument
from domain.kube.patch import merge_patch

PENDING_MESSAGE = "Pending"
RESOURCE_REQUESTED = "Resource requested"
PROMISE_CONFIGURED = "Promise configured"

CONFIGURE_COMPLETED = "ConfigureWorkflowCompleted"
RECONCILED = "Reconciled"
AVAILABLE = "Available"
DELETE_COMPLETED = "DeleteWorkflowCompleted"
WORKS_SUCCEEDED = "WorksSucceeded"


# A status lives in the object's workflow state and memo and in every pipeline's input, each a Temporal payload of at
# most 2 MB, beside a document of up to 1 MiB: 256 KiB (as JSON) of status, merged, is more than any real status
# needs (Kubernetes' whole object is at most 1.5 MB) and keeps those payloads under Temporal's 256 KB-per-field
# warning's order of magnitude. Depth 32: a status is a few levels deep; the bound keeps recursive readers (merge,
# JSON encoding, the CLI) far from Python's recursion limit.
STATUS_MAX_BYTES = 256 * 1024
STATUS_MAX_DEPTH = 32


def json_size(value: Any) -> int:
    """Bytes as compact JSON, as the value travels in Temporal payloads."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def check_status_file(incoming: Any) -> dict[str, Any] | None:
    """What a pipeline's status.yaml must be before it may touch an object's status; raises InvalidDocument.

    Kratix reads it into a map (anything else fails the pipeline); the fields the platform reads back itself
    (`conditions`, `healthStatus`) must have the shapes it reads."""
    if incoming is None:
        return None
    if not isinstance(incoming, dict):
        raise InvalidDocument(
            [FieldError("status.yaml", f"must be a map of status fields, not a {_json_type(incoming)}")]
        )
    if "kratix" in incoming:
        raise InvalidDocument(
            [FieldError("status.yaml.kratix", "the 'kratix' key is reserved and cannot be set by a pipeline")]
        )
    conditions = incoming.get("conditions")
    if conditions is not None:
        if not isinstance(conditions, list):
            raise InvalidDocument(
                [FieldError("status.yaml.conditions", f"must be a list of conditions, not a {_json_type(conditions)}")]
            )
        for index, condition in enumerate(conditions):
            if not isinstance(condition, dict) or not isinstance(condition.get("type"), str):
                raise InvalidDocument(
                    [FieldError(f"status.yaml.conditions[{index}]", "must be a map with a string `type`")]
                )
    if "healthStatus" in incoming and not isinstance(incoming["healthStatus"], dict):
        raise InvalidDocument([FieldError("status.yaml.healthStatus", "must be a map")])
    if _depth(incoming) > STATUS_MAX_DEPTH:
        raise InvalidDocument([FieldError("status.yaml", f"nested deeper than {STATUS_MAX_DEPTH} levels")])
    size = json_size(incoming)
    if size > STATUS_MAX_BYTES:
        raise InvalidDocument(
            [FieldError("status.yaml", f"is {size} bytes as JSON, over the limit of {STATUS_MAX_BYTES}")]
        )
    return incoming


def _depth(value: Any) -> int:
    """Levels of nesting, without recursion (a hostile value may be deeper than the interpreter's stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > STATUS_MAX_DEPTH:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def merge_status_file(
    status: dict[str, Any], incoming: dict[str, Any] | None, *, promise_workflow: bool
) -> dict[str, Any]:
    """Merge a pipeline's status.yaml into the status.

    Kratix semantics: top-level keys replace wholesale, `conditions` merge by type, a `kratix` key is an error,
    and a promise workflow may only set `message`. The merged status stays within STATUS_MAX_BYTES.
    """
    merged = copy.deepcopy(status)
    incoming = check_status_file(incoming)
    if incoming is None:
        return merged
    for key, value in incoming.items():
        if promise_workflow and key != "message":
            continue
        if key == "conditions" and isinstance(value, list):
            by_type = {c.get("type"): c for c in merged.get("conditions", []) if isinstance(c, dict)}
            for condition in value:
                if isinstance(condition, dict):
                    by_type[condition.get("type")] = condition
            merged["conditions"] = list(by_type.values())
        else:
            merged[key] = copy.deepcopy(value)
    size = json_size(merged)
    if size > STATUS_MAX_BYTES:
        # Conditions merge by type, so runs can add up: the limit is on what the object would carry.
        raise InvalidDocument(
            [
                FieldError(
                    "status.yaml",
                    f"merged into the status, it would be {size} bytes as JSON, over the limit of {STATUS_MAX_BYTES}",
                )
            ]
        )
    return merged


def patch_status(status: dict[str, Any], patch: Any, *, replace: bool = False) -> dict[str, Any]:
    """A write to the status subresource (kubectl, kratix-sdk's publish_status): a JSON merge patch onto the status,
    or with `replace` the whole new status (PUT). Kratix's own `kratix` key stays the platform's either way; the
    result is bounded as a pipeline's status.yaml is. Raises InvalidDocument naming the field."""
    if not isinstance(patch, dict):
        raise InvalidDocument([FieldError("status", f"must be an object, not a {_json_type(patch)}")])
    if "kratix" in patch:
        raise InvalidDocument(
            [FieldError("status.kratix", "Forbidden: the platform's own status, set by the platform")]
        )
    if _depth(patch) > STATUS_MAX_DEPTH:
        raise InvalidDocument([FieldError("status", f"nested deeper than {STATUS_MAX_DEPTH} levels")])
    conditions = patch.get("conditions")
    if conditions is not None and (
        not isinstance(conditions, list)
        or not all(isinstance(c, dict) and isinstance(c.get("type"), str) for c in conditions)
    ):
        raise InvalidDocument([FieldError("status.conditions", "must be a list of maps, each with a string `type`")])
    if replace:
        merged = copy.deepcopy(patch)
        if "kratix" in status:
            merged["kratix"] = copy.deepcopy(status["kratix"])
    else:
        merged = merge_patch(status, patch)
    size = json_size(merged)
    if size > STATUS_MAX_BYTES:
        raise InvalidDocument(
            [FieldError("status", f"would be {size} bytes as JSON, over the limit of {STATUS_MAX_BYTES}")]
        )
    return merged


def get_condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == type_), None)


def set_condition(status: dict[str, Any], type_: str, value: str, reason: str, message: str, now: str) -> None:
    """Kubernetes semantics: lastTransitionTime moves only when the condition's status changes."""
    conditions = status.setdefault("conditions", [])
    existing = get_condition(status, type_)
    condition = {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": now}
    if existing is None:
        conditions.append(condition)
        return
    if existing.get("status") == value and existing.get("lastTransitionTime"):
        condition["lastTransitionTime"] = existing["lastTransitionTime"]
    existing.clear()
    existing.update(condition)


def pipelines_status(status: dict[str, Any]) -> list[dict[str, Any]]:
    return status.setdefault("kratix", {}).setdefault("workflows", {}).setdefault("pipelines", [])


def reset_pipelines(status: dict[str, Any], names: list[str]) -> None:
    status.setdefault("kratix", {}).setdefault("workflows", {})["pipelines"] = [
        {"name": n, "phase": "Pending"} for n in names
    ]


def set_pipeline_phase(status: dict[str, Any], name: str, phase: str, now: str, message: str | None = None) -> None:
    """A finished (not suspended) pipeline sheds the retry bookkeeping of its suspended attempts, as Kratix does."""
    for entry in pipelines_status(status):
        if entry["name"] == name:
            entry["phase"] = phase
            entry["lastTransitionTime"] = now
            if message:
                entry["message"] = message
            else:
                entry.pop("message", None)
            if phase in ("Succeeded", "Failed"):
                entry.pop("attempts", None)
                entry.pop("nextRetryAt", None)


def mark_suspended(
    status: dict[str, Any], name: str, now: str, message: str, generation: int, next_retry_at: str | None
) -> None:
    """The status-writer's suspend: phase, message, and for retryAfter the attempt count and next retry time."""
    for entry in pipelines_status(status):
        if entry["name"] == name:
            entry.update(phase="Suspended", lastTransitionTime=now)
            if message:
                entry["message"] = message
            else:
                entry.pop("message", None)
            if next_retry_at:
                entry["nextRetryAt"] = next_retry_at
                entry["attempts"] = int(entry.get("attempts", 0)) + 1
            else:
                entry.pop("nextRetryAt", None)
                entry.pop("attempts", None)
    status.setdefault("kratix", {}).setdefault("workflows", {})["suspendedGeneration"] = generation
    set_condition(status, RECONCILED, "Unknown", "WorkflowSuspended", "Suspended", now)


def mark_configure_resumed(status: dict[str, Any], now: str) -> None:
    """Resuming a suspended workflow resets the message and Reconciled, and keeps the finished pipelines' phases."""
    status["message"] = PENDING_MESSAGE
    set_condition(status, CONFIGURE_COMPLETED, "False", "PipelinesInProgress", "Pipelines are still in progress", now)
    set_condition(status, RECONCILED, "Unknown", "WorkflowPending", "Pending", now)


def mark_paused(status: dict[str, Any], now: str, *, promise: bool) -> None:
    set_condition(status, RECONCILED, "Unknown", "PausedReconciliation", "Paused", now)
    if promise:
        status["status"] = "Unavailable"
        set_condition(status, AVAILABLE, "False", "PausedReconciliation", "Paused", now)


def mark_delete_started(status: dict[str, Any], pipeline: str) -> None:
    """Kratix replaces the pipeline list with the delete pipeline while deleting."""
    status.setdefault("kratix", {}).setdefault("workflows", {})["pipelines"] = [{"name": pipeline, "phase": "Pending"}]


def mark_delete_failed(status: dict[str, Any], pipeline: str, now: str, error: str) -> None:
    set_pipeline_phase(status, pipeline, "Failed", now, error)
    set_condition(
        status, DELETE_COMPLETED, "False", "DeleteWorkflowFailed", f"The Delete Pipeline has failed: {error}", now
    )


def mark_delete_suspended(status: dict[str, Any], now: str) -> None:
    set_condition(status, DELETE_COMPLETED, "False", "DeleteWorkflowSuspended", "The delete workflow is suspended", now)


def mark_configure_started(status: dict[str, Any], pipelines: list[str], now: str) -> None:
    status["message"] = PENDING_MESSAGE
    status["workflows"] = len(pipelines)
    status["workflowsSucceeded"] = 0
    status["workflowsFailed"] = 0
    reset_pipelines(status, pipelines)
    set_condition(status, CONFIGURE_COMPLETED, "False", "PipelinesInProgress", "Pipelines are still in progress", now)
    set_condition(status, RECONCILED, "Unknown", "WorkflowPending", "Pending", now)


def configure_failed_message(pipeline: str) -> str:
    return f"A Configure Pipeline has failed: {pipeline}"


def mark_configure_failed(status: dict[str, Any], pipeline: str, now: str, message: str) -> None:
    status["workflowsFailed"] = 1
    set_pipeline_phase(status, pipeline, "Failed", now, message)
    set_condition(
        status, CONFIGURE_COMPLETED, "False", "ConfigureWorkflowFailed", configure_failed_message(pipeline), now
    )
    set_condition(status, RECONCILED, "False", "ConfigureWorkflowFailed", "Failing", now)


def mark_configure_succeeded(status: dict[str, Any], now: str, *, promise_workflow: bool) -> None:
    """After the last pipeline: `message: Pending` becomes the Kratix success message."""
    if status.get("message", PENDING_MESSAGE) == PENDING_MESSAGE:
        status["message"] = PROMISE_CONFIGURED if promise_workflow else RESOURCE_REQUESTED
    status["workflowsSucceeded"] = status.get("workflows", 0)
    status["workflowsFailed"] = 0
    set_condition(status, CONFIGURE_COMPLETED, "True", "PipelinesExecutedSuccessfully", "Pipelines completed", now)
    workflows = status.setdefault("kratix", {}).setdefault("workflows", {})
    workflows.pop("suspendedGeneration", None)
    transition = get_condition(status, CONFIGURE_COMPLETED)["lastTransitionTime"]  # type: ignore[index]
    workflows["lastSuccessfulConfigureWorkflowTime"] = transition
    status["lastSuccessfulConfigureWorkflowTime"] = transition


# With no ResourceBindings yet, every request follows the Promise's latest revision, as an unpinned Kratix binding does.
LATEST_BINDING_VERSION = "latest"


def mark_versions(
    status: dict[str, Any], promise_version: str, binding_version: str = LATEST_BINDING_VERSION
) -> list[str]:
    """Kratix's `promiseVersion` and `resourceBindingVersion` after a successful configure; the fields that changed."""
    wanted = {"promiseVersion": promise_version, "resourceBindingVersion": binding_version}
    changed = [key for key, value in wanted.items() if status.get(key) != value]
    status.update(wanted)
    return changed


def mark_works(
    status: dict[str, Any],
    now: str,
    pending_groups: list[str],
    failing: str | None = None,
    misplaced: list[str] | None = None,
) -> None:
    """WorksSucceeded and Reconciled from where the outputs landed (Kratix precedence: failed > misplaced >
    pending > ready).

    Misplaced output is still written and updated, so the object stays Reconciled; only WorksSucceeded says so.
    """
    if failing:
        set_condition(
            status,
            WORKS_SUCCEEDED,
            "False",
            "WorksFailing",
            f"Some works associated with this resource failed: [{failing}]",
            now,
        )
        set_condition(status, RECONCILED, "False", "WorksFailing", "Failing", now)
    elif misplaced:
        message = f"Target destination no longer matches destinationSelectors for: [{', '.join(misplaced)}]"
        set_condition(status, WORKS_SUCCEEDED, "False", "DestinationSelectorMismatch", message, now)
        set_condition(status, RECONCILED, "True", "Reconciled", "Reconciled", now)
    elif pending_groups:
        message = f"Some works associated with this resource are not ready: [{', '.join(pending_groups)}]"
        set_condition(status, WORKS_SUCCEEDED, "Unknown", "WorksPending", message, now)
        set_condition(status, RECONCILED, "Unknown", "WorksPending", "Pending", now)
    else:
        set_condition(
            status, WORKS_SUCCEEDED, "True", "WorksSucceeded", "All works associated with this resource are ready", now
        )
        set_condition(status, RECONCILED, "True", "Reconciled", "Reconciled", now)


def summary_phase(status: dict[str, Any], deleting: bool = False) -> str:
    """A one-word phase for search attributes and `ktx get` filtering."""
    if deleting:
        return "Deleting"
    reconciled = get_condition(status, RECONCILED)
    if reconciled is None:
        return "Pending"
    if reconciled["status"] == "True":
        return "Reconciled"
    if reconciled["status"] == "False":
        return "Failed"
    return {"WorkflowPending": "Running", "PausedReconciliation": "Paused", "WorkflowSuspended": "Suspended"}.get(
        reconciled.get("reason", ""), "Pending"
    )
