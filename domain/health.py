"""HealthRecords (`platform.kratix.io/v1alpha1`) and how they fold into a resource's `status.healthStatus`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from domain.errors import FieldError, InvalidDocument
from domain.names import LABEL_MAX, NAME_PATTERN, SUBDOMAIN_MAX
from domain.validation import object_at, validate_name, validate_namespace

# Kratix's order, worst first: the aggregate is the worst record's state; no records means ready.
STATES = ("unhealthy", "degraded", "unknown", "healthy", "ready")


class ResourceRef(BaseModel):
    name: str
    namespace: str = "default"


class HealthRecord(BaseModel):
    name: str
    namespace: str
    promise: str
    resource: ResourceRef
    state: str
    last_run: Any = None
    details: Any = None
    document: dict[str, Any] = Field(default_factory=dict)


def read_health_record(doc: dict[str, Any]) -> HealthRecord:
    meta = object_at(doc, "metadata")
    data = object_at(doc, "data")
    resource = object_at(doc, "data.resourceRef")
    promise = object_at(doc, "data.promiseRef").get("name")
    errors: list[FieldError] = []
    errors += validate_name("metadata.name", meta.get("name"), max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN)
    if meta.get("namespace") is not None:
        errors += validate_namespace(meta["namespace"])
    # The references name a workflow (resource/<promise>/<namespace>/<name>): only names that can exist get there.
    errors += validate_name("data.promiseRef.name", promise, max_length=LABEL_MAX, pattern=NAME_PATTERN)
    errors += validate_name("data.resourceRef.name", resource.get("name"), max_length=LABEL_MAX, pattern=NAME_PATTERN)
    if resource.get("namespace") is not None:
        errors += validate_namespace(resource["namespace"], "data.resourceRef.namespace")
    state = data.get("state")
    if state not in STATES:
        errors.append(FieldError("data.state", f"Unsupported value: {state!r}: supported values: {', '.join(STATES)}"))
    if errors:
        raise InvalidDocument(errors)
    namespace = meta.get("namespace") or "default"
    return HealthRecord(
        name=meta["name"],
        namespace=namespace,
        promise=promise,
        resource=ResourceRef(name=resource["name"], namespace=resource.get("namespace") or namespace),
        state=state,
        last_run=data.get("lastRun"),
        details=data.get("details"),
        document={**doc, "metadata": {**meta, "namespace": namespace}},
    )


def health_status(records: list[HealthRecord]) -> dict[str, Any]:
    state = min((r.state for r in records), key=STATES.index, default="ready")
    return {
        "state": state,
        "healthRecords": [
            {
                "state": r.state,
                "lastRun": r.last_run,
                "source": {"name": r.name, "namespace": r.namespace},
                "details": r.details,
            }
            for r in sorted(records, key=lambda r: (r.namespace, r.name))
        ],
    }
