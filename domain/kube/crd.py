"""CustomResourceDefinitions as `kubectl get crd` shows them: the one Kratix generates from each Promise's `spec.api`
(internal/controller/promise_controller.go generateCRDAndGVK + setStatusFieldsOnCRD), and Kratix's own
(config/crd/bases, copied into kratix_crds.json by scripts/kratix_crds.py), each with the defaults and status a real
apiserver adds once the CRD is established."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from domain.labels import PROMISE_NAME

_DATA = Path(__file__).with_name("kratix_crds.json")

# Kratix's MaxResourceNameLength: a request's name becomes label values and Job names, so it is capped at 63.
MAX_RESOURCE_NAME_LENGTH = 63

# Kratix gives a Promise API version without additionalPrinterColumns these two.
DEFAULT_COLUMNS: tuple[dict[str, str], ...] = (
    {"name": "message", "type": "string", "jsonPath": ".status.message"},
    {"name": "status", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Reconciled")].message'},
)

_INT64 = {"type": "integer", "format": "int64"}
_CONDITIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "lastTransitionTime": {"type": "string", "format": "datetime"},
            "message": {"type": "string"},
            "reason": {"type": "string"},
            "status": {"type": "string"},
            "type": {"type": "string"},
        },
    },
}
_PIPELINES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "phase": {"type": "string"},
            "message": {"type": "string"},
            "nextRetryAt": {"type": "string"},
            "attempts": _INT64,
            "lastTransitionTime": {"type": "string", "format": "datetime"},
        },
    },
}
# The status schema Kratix writes over whatever `status` the Promise's CRD declared, in every version.
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "message": {"type": "string"},
        "observedGeneration": _INT64,
        "workflows": _INT64,
        "workflowsSucceeded": _INT64,
        "workflowsFailed": _INT64,
        "conditions": _CONDITIONS,
        "kratix": {
            "type": "object",
            "properties": {
                "workflows": {
                    "type": "object",
                    "properties": {
                        "lastSuccessfulConfigureWorkflowTime": {"type": "string"},
                        "pipelines": _PIPELINES,
                        "suspendedGeneration": _INT64,
                    },
                }
            },
        },
    },
}


@cache
def _kratix_crds() -> dict[str, dict[str, Any]]:
    return json.loads(_DATA.read_text())["crds"]


def kratix_crd(kind: str) -> dict[str, Any]:
    """Kratix's own CRD for `kind` (metadata.name and spec only), a fresh copy the caller may change."""
    return copy.deepcopy(_kratix_crds()[kind])


def kratix_kinds() -> list[str]:
    return sorted(_kratix_crds())


def storage_version(spec: dict[str, Any]) -> dict[str, Any]:
    """Kratix's rule (Promise.GetAPI): the version marked storage, else the first listed."""
    versions = spec.get("versions") or [{}]
    return next((v for v in versions if v.get("storage")), versions[0])


def generated_crd(promise_name: str, api: dict[str, Any]) -> dict[str, Any]:
    """What Kratix sends the apiserver for a Promise's `spec.api`: its labels merged with `kratix.io/promise-name`, a
    status subresource, Kratix's status schema and, where a version has none, the default printer columns."""
    crd = copy.deepcopy(api)
    source_meta = crd.get("metadata") or {}
    metadata: dict[str, Any] = {"name": source_meta.get("name") or ""}
    metadata["labels"] = {**(source_meta.get("labels") or {}), PROMISE_NAME: promise_name}
    if source_meta.get("annotations"):
        metadata["annotations"] = dict(source_meta["annotations"])
    spec = crd.get("spec") or {}
    for version in spec.get("versions") or []:
        version["subresources"] = {"status": {}}
        if not version.get("additionalPrinterColumns"):
            version["additionalPrinterColumns"] = [dict(c) for c in DEFAULT_COLUMNS]
        schema = version.setdefault("schema", {}).setdefault("openAPIV3Schema", {"type": "object"})
        schema.setdefault("properties", {})["status"] = copy.deepcopy(STATUS_SCHEMA)
    stored = storage_version(spec)
    if stored.get("schema"):
        _ensure_metadata_schema(stored["schema"]["openAPIV3Schema"])
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": spec,
    }


def _ensure_metadata_schema(schema: dict[str, Any]) -> None:
    """Kratix caps a request's metadata.name at 63 characters in the stored version's schema."""
    metadata = schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
    name = metadata.setdefault("properties", {}).get("name") or {}
    metadata["properties"]["name"] = {
        **name,
        "type": name.get("type") or "string",
        "maxLength": MAX_RESOURCE_NAME_LENGTH,
    }


def established(crd: dict[str, Any], *, uid: str, created: str, resource_version: str) -> dict[str, Any]:
    """The CRD as a real apiserver returns it once established: names and conversion defaulted, metadata filled in,
    and the status the apiextensions controllers write (NamesAccepted and Established, acceptedNames, storedVersions).

    storedVersions holds the current storage version only: ktx keeps one copy of each object, in the version the
    Promise serves now, so no object is stored in any other."""
    crd = copy.deepcopy(crd)
    crd["apiVersion"] = "apiextensions.k8s.io/v1"
    crd["kind"] = "CustomResourceDefinition"
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind") or ""
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    spec.setdefault("scope", "Namespaced")
    spec.setdefault("conversion", {"strategy": "None"})
    metadata = crd.setdefault("metadata", {})
    metadata.update({"uid": uid, "creationTimestamp": created, "resourceVersion": resource_version, "generation": 1})
    accepted = {
        k: names[k] for k in ("kind", "listKind", "plural", "singular", "shortNames", "categories") if k in names
    }
    crd["status"] = {
        "acceptedNames": accepted,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": created,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": created,
            },
        ],
        "storedVersions": [storage_version(spec).get("name", "")],
    }
    return crd
