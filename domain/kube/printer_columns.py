"""The columns `kubectl get` shows for each kind, in the CRD `additionalPrinterColumns` shape (name, type, jsonPath,
description): Kratix's own kinds take theirs from Kratix's CRDs, a Promise's API from its CRD (Kratix's two defaults
when it declares none), and the read-only kinds ktx derives what a real apiserver's table shows for them."""

from __future__ import annotations

from typing import Any

from domain.kube.crd import DEFAULT_COLUMNS, kratix_crd, kratix_kinds, storage_version

Column = dict[str, str]


def _kratix_columns(kind: str) -> tuple[Column, ...]:
    return tuple(storage_version(kratix_crd(kind)["spec"]).get("additionalPrinterColumns") or ())


# What the apiserver's own table convertors print after NAME. A CRD's is the default convertor's "Created At", the
# raw timestamp (not an age). An Event's OBJECT is `kind/name` there; a JSONPath cannot join two fields, so the name
# alone is shown, with the kind in -o wide.
_DERIVED: dict[str, tuple[Column, ...]] = {
    "CustomResourceDefinition": ({"name": "Created At", "type": "string", "jsonPath": ".metadata.creationTimestamp"},),
    "Namespace": (
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    "Event": (
        {"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp"},
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Reason", "type": "string", "jsonPath": ".reason"},
        {"name": "Object", "type": "string", "jsonPath": ".involvedObject.name"},
        {"name": "Message", "type": "string", "jsonPath": ".message"},
        {"name": "Kind", "type": "string", "jsonPath": ".involvedObject.kind", "priority": 1},
        {"name": "Source", "type": "string", "jsonPath": ".source.component", "priority": 1},
        {"name": "First Seen", "type": "date", "jsonPath": ".firstTimestamp", "priority": 1},
        {"name": "Count", "type": "integer", "jsonPath": ".count", "priority": 1},
    ),
}

PRINTER_COLUMNS: dict[str, tuple[Column, ...]] = {
    **{kind: _kratix_columns(kind) for kind in kratix_kinds()},
    **_DERIVED,
}


def promise_api_columns(api: dict[str, Any], version: str) -> tuple[Column, ...]:
    """A Promise API version's columns as Kratix's generated CRD has them: its own, else Kratix's defaults."""
    versions = (api.get("spec") or {}).get("versions") or []
    found = next((v for v in versions if v.get("name") == version), {})
    return tuple(found.get("additionalPrinterColumns") or DEFAULT_COLUMNS)
