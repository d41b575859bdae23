"""OpenAPI v3 schemas, written by hand, for the Kubernetes kinds ktx serves that no Promise or Kratix CRD describes:
object and list metadata, Secret, Namespace, Event and CustomResourceDefinition. They hold the fields ktx serves of
each kind, with descriptions shortened from Kubernetes' own, so `kubectl explain` says what they mean."""

from __future__ import annotations

from typing import Any

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"

_TIME = {"type": "string", "format": "date-time"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}


def _s(type_: str, description: str, **more: Any) -> dict[str, Any]:
    return {"type": type_, "description": description, **more}


def _time(description: str) -> dict[str, Any]:
    return {**_TIME, "description": description}


def ref(name: str, description: str = "") -> dict[str, Any]:
    """A property naming another schema, as the apiserver writes one: an allOf around the $ref, so the property can
    carry its own description."""
    prop: dict[str, Any] = {"allOf": [{"$ref": f"#/components/schemas/{name}"}]}
    if description:
        prop["description"] = description
    return prop


_OBJECT_META: dict[str, Any] = {
    "type": "object",
    "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users "
    "must create.",
    "properties": {
        "name": _s("string", "Name must be unique within a namespace. Cannot be updated."),
        "generateName": _s("string", "An optional prefix the server uses to generate a unique name."),
        "namespace": _s("string", "The namespace the object lives in; empty for cluster-scoped objects."),
        "uid": _s("string", "The unique identifier of this object for its whole life; set by the server."),
        "resourceVersion": _s(
            "string",
            "An opaque value that represents the internal version of this object, used for optimistic concurrency, "
            "change detection and watch. Set by the server.",
        ),
        "generation": _s(
            "integer", "A sequence number representing a specific generation of the desired state.", format="int64"
        ),
        "creationTimestamp": _time("When this object was created, in RFC3339 form, UTC. Set by the server."),
        "deletionTimestamp": _time(
            "When this object will be deleted: set by the server when a graceful deletion is requested, while "
            "finalizers remain."
        ),
        "labels": {**_STRING_MAP, "description": "Map of string keys and values to organize and select objects."},
        "annotations": {
            **_STRING_MAP,
            "description": "Unstructured key value map stored with a resource, set by external tools.",
        },
        "finalizers": {
            "type": "array",
            "items": {"type": "string", "default": ""},
            "description": "Must be empty before the object is deleted from the registry.",
            "x-kubernetes-list-type": "set",
        },
    },
}

_LIST_META: dict[str, Any] = {
    "type": "object",
    "description": "ListMeta describes metadata that synthetic resources must have, including lists.",
    "properties": {
        "resourceVersion": _s("string", "The version of the list, to watch for changes from."),
        "continue": _s("string", "Set when the list was cut short: pass it back to read the rest."),
    },
}

_SECRET: dict[str, Any] = {
    "type": "object",
    "description": "Secret holds secret data of a certain type. The total bytes of the values in the Data field "
    "must be less than MaxSecretSize bytes.",
    "properties": {
        "data": {
            "type": "object",
            "additionalProperties": {"type": "string", "format": "byte"},
            "description": "The secret data, base64 encoded. ktx never returns the values, only the keys.",
        },
        "stringData": {**_STRING_MAP, "description": "Write-only convenience: merged into data on write."},
        "type": _s("string", "Used to facilitate programmatic handling of secret data."),
        "immutable": _s("boolean", "If set to true, the data of this Secret cannot be updated."),
    },
}

_NAMESPACE: dict[str, Any] = {
    "type": "object",
    "description": "Namespace provides a scope for Names.",
    "properties": {
        "spec": {
            "type": "object",
            "description": "Spec defines the behavior of the Namespace.",
            "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}},
        },
        "status": {
            "type": "object",
            "description": "Status describes the current status of a Namespace.",
            "properties": {
                "phase": _s("string", "The current lifecycle phase of the namespace.", enum=["Active", "Terminating"])
            },
        },
    },
}

_OBJECT_REFERENCE: dict[str, Any] = {
    "type": "object",
    "description": "The object this event is about.",
    "properties": {
        "apiVersion": _s("string", "API version of the referent."),
        "kind": _s("string", "Kind of the referent."),
        "name": _s("string", "Name of the referent."),
        "namespace": _s("string", "Namespace of the referent."),
        "uid": _s("string", "UID of the referent."),
        "resourceVersion": _s("string", "Specific resourceVersion to which this reference is made, if any."),
    },
}

_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "Event is a report of an event somewhere in the cluster.",
    "required": ["metadata", "involvedObject"],
    "properties": {
        "involvedObject": _OBJECT_REFERENCE,
        "reason": _s("string", "A short, machine understandable string that gives the reason for the transition."),
        "message": _s("string", "A human-readable description of the status of this operation."),
        "type": _s("string", "Type of this event (Normal, Warning)."),
        "count": _s("integer", "The number of times this event has occurred.", format="int32"),
        "firstTimestamp": _time("The time at which the event was first recorded."),
        "lastTimestamp": _time("The time at which the most recent occurrence of this event was recorded."),
        "source": {
            "type": "object",
            "description": "The component reporting this event.",
            "properties": {"component": _s("string", "Component from which the event is generated.")},
        },
        "reportingComponent": _s("string", "Name of the controller that emitted this Event."),
        "reportingInstance": _s("string", "ID of the controller instance."),
        "action": _s("string", "What action was taken/failed regarding to the Regarding object."),
    },
}

_CRD: dict[str, Any] = {
    "type": "object",
    "description": "CustomResourceDefinition represents a resource that should be exposed on the API server. Its "
    "name MUST be in the format <.spec.name>.<.spec.group>. ktx serves the one each Promise's spec.api generates, "
    "read-only.",
    "properties": {
        "spec": {
            "type": "object",
            "description": "Spec describes how the user wants the resources to appear.",
            "properties": {
                "group": _s("string", "The API group of the defined custom resource."),
                "names": {
                    "type": "object",
                    "description": "The resource and kind names for the custom resource.",
                    "properties": {
                        "kind": _s("string", "The serialized kind of the resource."),
                        "listKind": _s("string", "The serialized kind of the list for this resource."),
                        "plural": _s("string", "The plural name of the resource to serve."),
                        "singular": _s("string", "The singular name of the resource."),
                        "shortNames": {"type": "array", "items": {"type": "string"}, "description": "Short names."},
                        "categories": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Grouped resources this custom resource belongs to (e.g. 'all').",
                        },
                    },
                },
                "scope": _s("string", "Whether the resource is cluster-scoped or namespace-scoped."),
                "versions": {
                    "type": "array",
                    "description": "The API versions of the defined custom resource.",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
                "conversion": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "description": "The actual state of the CustomResourceDefinition.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
    },
}

# Component schema name -> schema, for the kinds of the core and apiextensions groups.
BUILTIN_KINDS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("", "Secret"): ("io.k8s.api.core.v1.Secret", _SECRET),
    ("", "Namespace"): ("io.k8s.api.core.v1.Namespace", _NAMESPACE),
    ("", "Event"): ("io.k8s.api.core.v1.Event", _EVENT),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        _CRD,
    ),
}
META_SCHEMAS: dict[str, dict[str, Any]] = {OBJECT_META: _OBJECT_META, LIST_META: _LIST_META}
