"""The Kratix labels and annotations the platform reads or writes on Promises and resources."""

from __future__ import annotations

import json
import re

from domain.errors import FieldError, InvalidDocument

MANUAL_RECONCILIATION = "kratix.io/manual-reconciliation"
RECONCILE_RESOURCES = "kratix.io/reconcile-resources"
PAUSED = "kratix.io/paused"
WORKFLOW_SUSPENDED = "kratix.io/workflow-suspended"
PROMISE_VERSION = "kratix.io/promise-version"
PROMISE_NAME = "kratix.io/promise-name"
RECONCILIATION_INTERVAL = "kratix.io/reconciliation-interval"

COMPONENT_OF_PROMISE = "kratix.io/component-of-promise-name"
COMPONENT_OF_RESOURCE = "kratix.io/component-of-resource-name"
COMPONENT_OF_NAMESPACE = "kratix.io/component-of-resource-namespace"

# Set by the platform while a pipeline is suspended; a user removes it to resume, so a re-apply must not drop it.
PLATFORM_OWNED = (WORKFLOW_SUSPENDED,)


def is_true(labels: dict[str, str], key: str) -> bool:
    return labels.get(key) == "true"


# Kubernetes' label grammar (apimachinery validation.IsQualifiedName / IsValidLabelValue): a label becomes a
# selector term, a search key and a Job label, so only what Kubernetes would store gets in.
LABEL_NAME_MAX = 63
LABEL_PREFIX_MAX = 253
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# All of one object's labels, as JSON: they live in its document, memo and every update, Temporal payloads of at most
# 2 MB beside a document of up to 1 MiB. Kubernetes caps annotations at the same 256 KiB.
LABELS_MAX_BYTES = 256 * 1024


def label_key_error(key: object) -> str | None:
    """Why `key` is not a Kubernetes label key, or None."""
    if not isinstance(key, str):
        return f"Invalid value: {key!r}: a label key must be a string"
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return f"Invalid value: {_shown(key)}: prefix part must be non-empty"
    if prefix and (len(prefix) > LABEL_PREFIX_MAX or not _LABEL_PREFIX.fullmatch(prefix)):
        return (
            f"Invalid value: {_shown(key)}: prefix part must be a lowercase RFC 1123 subdomain of at most "
            f"{LABEL_PREFIX_MAX} characters"
        )
    if not name or len(name) > LABEL_NAME_MAX or not _LABEL_NAME.fullmatch(name):
        return (
            f"Invalid value: {_shown(key)}: name part must be at most {LABEL_NAME_MAX} characters, alphanumeric, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def label_value_error(value: object) -> str | None:
    """Why `value` is not a Kubernetes label value, or None."""
    if not isinstance(value, str):
        return f"Invalid value: {_shown(value)}: a label value must be a string"
    if value and (len(value) > LABEL_NAME_MAX or not _LABEL_NAME.fullmatch(value)):
        return (
            f"Invalid value: {_shown(value)}: a valid label must be an empty string or consist of alphanumeric "
            f"characters, '-', '_' or '.', at most {LABEL_NAME_MAX} of them, and must start and end with an "
            "alphanumeric character"
        )
    return None


def label_errors(field: str, labels: object) -> list[FieldError]:
    """An error for each bad entry of a label map (a selector's matchLabels, a label change's `set`)."""
    if not isinstance(labels, dict):
        return [FieldError(field, f"Invalid value: {_shown(labels)}: must be a map of label keys to string values")]
    found = []
    for key, value in labels.items():
        reason = label_key_error(key) or label_value_error(value)
        if reason:
            found.append(FieldError(f"{field}[{_shown(key)}]", reason))
    return found


def metadata_errors(metadata: dict[str, object]) -> list[FieldError]:
    """A document's labels and annotation keys by Kubernetes' grammar, each map at most LABELS_MAX_BYTES as JSON, as
    the apiserver checks every object's metadata: labels become selector terms and search keys, and both travel in
    every Temporal payload the object does."""
    errors: list[FieldError] = []
    labels, annotations = metadata.get("labels"), metadata.get("annotations")
    if labels is not None:
        errors += label_errors("metadata.labels", labels)
    if isinstance(annotations, dict):
        errors += [
            FieldError(f"metadata.annotations[{_shown(key)}]", reason)
            for key in annotations
            if (reason := label_key_error(key))
        ]
    for field, value in (("metadata.labels", labels), ("metadata.annotations", annotations)):
        if isinstance(value, dict) and not errors:
            size = len(json.dumps(value, separators=(",", ":")).encode())
            if size > LABELS_MAX_BYTES:
                errors.append(
                    FieldError(field, f"Too long: {size} bytes as JSON, over the limit of {LABELS_MAX_BYTES}")
                )
    return errors[:_ERRORS_SHOWN]


def check_label_change(set_: dict[str, str], remove: list[str], current: dict[str, str] | None = None) -> None:
    """A label change (`ktx label`) by Kubernetes' grammar, and the labels it leaves within LABELS_MAX_BYTES; raises
    InvalidDocument naming each field. `current` is the object's labels, when known (the workflow knows them)."""
    errors = label_errors("set", set_)
    errors += [
        FieldError(f"remove[{index}]", reason) for index, key in enumerate(remove) if (reason := label_key_error(key))
    ]
    if errors:
        raise InvalidDocument(errors[:_ERRORS_SHOWN])
    removed = set(remove)
    result = {k: v for k, v in (current or {}).items() if k not in removed} | set_
    size = len(json.dumps(result, separators=(",", ":")).encode())
    if size > LABELS_MAX_BYTES:
        raise InvalidDocument(
            [
                FieldError(
                    "set", f"the object's labels would be {size} bytes as JSON, over the limit of {LABELS_MAX_BYTES}"
                )
            ]
        )


# Enough to see what is wrong; a change with thousands of bad labels would otherwise answer with a message as large.
_ERRORS_SHOWN = 20


def _shown(value: object, limit: int = 80) -> str:
    """A refused value quoted in an error, cut short: the error travels in status and responses, the value may be
    huge."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
