"""The platform's objects as a Kubernetes API server shows them: Platform.get's shape without ktx's bookkeeping,
under the apiVersion asked for, with the metadata the apiserver keeps (resourceVersion, finalizers,
deletionTimestamp)."""

from __future__ import annotations

import copy
from typing import Any, Protocol

from domain.kube.rollout_plans import with_progress
from domain.rollout_plan import KIND as ROLLOUT_PLAN

KRATIX = "kratix.io/"
# Kratix's finalizers (internal/controller/promise_controller.go promiseFinalizers, in that order), each where Kratix
# sets it: the API ones only on a Promise with an API, delete-workflows only with a Promise delete pipeline.
_PROMISE_FINALIZERS = (
    ("resource-request-cleanup", "api"),
    ("dynamic-controller-dependant-resources-cleanup", "api"),
    ("api-crd-cleanup", "api"),
    ("dependencies-cleanup", ""),
    ("workflows-cleanup", ""),
    ("delete-workflows", "delete"),
    ("revision-cleanup", ""),
)
# dynamic_resource_request_controller.go getRRFinalizers: every resource request gets all four.
RESOURCE_FINALIZERS = tuple(
    KRATIX + f for f in ("work-cleanup", "workflows-cleanup", "delete-workflows", "resource-binding-cleanup")
)
DESTINATION_FINALIZER = KRATIX + "destination-cleanup"  # only with `spec.cleanup: all`
HEALTH_RECORD_FINALIZER = KRATIX + "health-record-cleanup"
PROMISE_RELEASE_FINALIZER = KRATIX + "promise-cleanup"


class Served(Protocol):
    """What `to_kube` needs of the resource an object is served as (api.kube.registry.KubeResource)."""

    @property
    def api_version(self) -> str: ...

    kind: str
    namespaced: bool
    ktx_kind: str
    promise: str  # the Promise serving the API, "" for the platform's own kinds


def promise_finalizers(promise: dict[str, Any]) -> list[str]:
    spec = promise.get("spec") or {}
    workflows = ((spec.get("workflows") or {}).get("promise") or {}) if isinstance(spec, dict) else {}
    has = {"": True, "api": bool(spec.get("api")), "delete": bool(workflows.get("delete"))}
    return [KRATIX + name for name, needs in _PROMISE_FINALIZERS if has[needs]]


def finalizers(obj: dict[str, Any], resource: Served) -> list[str]:
    """The finalizers Kratix's controllers put on an object of this kind."""
    if resource.promise:
        return list(RESOURCE_FINALIZERS)
    ktx_kind = resource.ktx_kind
    if ktx_kind == "Promise":
        return promise_finalizers(obj)
    if ktx_kind == "Destination":
        return [DESTINATION_FINALIZER] if (obj.get("spec") or {}).get("cleanup") == "all" else []
    if ktx_kind == "HealthRecord":
        return [HEALTH_RECORD_FINALIZER]
    if ktx_kind == "PromiseRelease":
        return [PROMISE_RELEASE_FINALIZER]
    return []


def deletion_timestamp(obj: dict[str, Any]) -> str | None:
    """When deletion was asked for: the workflow stamps it on the object; older objects have only the event."""
    stamped = (obj.get("metadata") or {}).get("deletionTimestamp")
    if stamped:
        return str(stamped)
    events = (obj.get("_ktx") or {}).get("events") or []
    asked = [e for e in events if isinstance(e, dict) and e.get("reason") == "DeleteRequested"]
    return str(asked[-1].get("first_seen")) if asked else None


def to_kube(obj: dict[str, Any], resource: Served) -> dict[str, Any]:
    """Drops `_ktx`, sets apiVersion to the version asked for (conversion `None`: the same object under each served
    version), metadata.resourceVersion from the workflow's, and Kratix's finalizers."""
    ktx = obj.get("_ktx") or {}
    out = copy.deepcopy({k: v for k, v in obj.items() if k != "_ktx"})
    out["apiVersion"] = resource.api_version
    out["kind"] = resource.kind
    metadata = out.setdefault("metadata", {})
    if not resource.namespaced:
        metadata.pop("namespace", None)
    elif not metadata.get("namespace"):
        metadata["namespace"] = "default"
    version = ktx.get("resourceVersion")
    if version is not None:
        metadata["resourceVersion"] = str(version)
    found = finalizers(out, resource)
    if found and not metadata.get("finalizers"):
        metadata["finalizers"] = found
    deleting = deletion_timestamp(obj)
    if deleting:
        metadata["deletionTimestamp"] = deleting
        metadata.setdefault("deletionGracePeriodSeconds", 0)
    if not out.get("status"):
        out.pop("status", None)  # the apiserver shows no status until a controller writes one
    if resource.ktx_kind == ROLLOUT_PLAN:
        out = with_progress(out)
    return out


def list_of(items: list[dict[str, Any]], resource: Served, resource_version: str | None = None) -> dict[str, Any]:
    """A `<Kind>List` as the apiserver sends it; the list's resourceVersion is the newest of its items'."""
    if resource_version is None:
        versions = [int(v) for i in items if str(v := (i.get("metadata") or {}).get("resourceVersion", "")).isdigit()]
        resource_version = str(max(versions)) if versions else "0"
    return {
        "apiVersion": resource.api_version,
        "kind": f"{resource.kind}List",
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    }
