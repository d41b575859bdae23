"""Core v1 Events, as `kubectl describe` and `kubectl get events` read them, built from the short event list each
object's workflow keeps in its memo (domain/events.py): one Event per entry, about that object.

Kratix records through the events.k8s.io API, whose core v1 view carries `reportingComponent` (the controller's
recorder name, below) and an `eventTime`; ktx fills the older fields too (`source.component`, `firstTimestamp`,
`lastTimestamp`, `count`), which kubectl's describe and table printers read first. An event about a cluster-scoped
object (a Promise, a Destination, a state store) lives in the `default` namespace, as the apiserver's recorders put
it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from domain.kube.selectors import field_value
from domain.kube.works import derived_uid

# cmd/main.go's mgr.GetEventRecorder names, by the kind each controller reconciles.
REPORTERS = {
    "Promise": "PromiseController",
    "PromiseRelease": "PromiseReleaseController",
    "Destination": "DestinationController",
    "GitStateStore": "GitStateStoreController",
    "BucketStateStore": "BucketStateStoreController",
    "HealthRecord": "HealthRecordController",
    "Work": "WorkController",
    "WorkPlacement": "WorkPlacementController",
}
RESOURCE_REPORTER = "ResourceRequestController"  # the dynamic controller of every Promise's API

# What `--field-selector` may name for Events, as the apiserver's event strategy (GetAttrs) lists them.
SELECTABLE_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
_NAME_MAX = 253
_SUFFIX = 17  # "." and 16 hex digits


def event_field_value(event: dict[str, Any], path: str) -> str:
    """A selectable field's value; `source` is the reporting component, as the apiserver's event field set has it."""
    if path == "source":
        return str((event.get("source") or {}).get("component") or "")
    return field_value(event, path)


def _nanos(timestamp: str) -> int:
    try:
        moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return 0
    return int(moment.timestamp()) * 1_000_000_000


def _name(involved: str, first_seen: str, index: int) -> str:
    """The recorder's `<object>.<first timestamp in nanoseconds, hex>`; the entry's index keeps two events of the
    same second apart (the memo's timestamps have whole seconds)."""
    return f"{involved[: _NAME_MAX - _SUFFIX]}.{_nanos(first_seen) + index:016x}"


def involved_object(obj: dict[str, Any], namespaced: bool) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "name": meta.get("name", "")}
    if namespaced:
        ref["namespace"] = meta.get("namespace") or "default"
    if meta.get("uid"):
        ref["uid"] = meta["uid"]
    version = (obj.get("_ktx") or {}).get("resourceVersion")
    if version is not None:
        ref["resourceVersion"] = str(version)
    return ref


def events_of(obj: dict[str, Any], namespaced: bool, reporter: str) -> list[dict[str, Any]]:
    """One core v1 Event per entry of the object's memo events, oldest first."""
    involved = involved_object(obj, namespaced)
    namespace = involved.get("namespace") or "default"
    ktx = obj.get("_ktx") or {}
    owner_uid = involved.get("uid") or str(uuid.uuid5(uuid.NAMESPACE_OID, f"{involved['kind']}/{involved['name']}"))
    found = []
    for index, entry in enumerate(ktx.get("events") or []):
        first, last = str(entry.get("first_seen") or ""), str(entry.get("last_seen") or "")
        name = _name(involved["name"], first, index)
        event: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": derived_uid(owner_uid, name),
                "creationTimestamp": first,
            },
            "involvedObject": involved,
            "reason": entry.get("reason", ""),
            "message": entry.get("message", ""),
            "type": entry.get("type", "Normal"),
            "count": int(entry.get("count") or 1),
            "firstTimestamp": first,
            "lastTimestamp": last or first,
            "source": {"component": reporter},
            "reportingComponent": reporter,
            "reportingInstance": "",
            "action": entry.get("reason", ""),
            "_ktx": {} if "resourceVersion" not in involved else {"resourceVersion": involved["resourceVersion"]},
        }
        found.append(event)
    return found
