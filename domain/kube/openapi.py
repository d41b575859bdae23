"""The OpenAPI v3 documents a Kubernetes apiserver publishes at /openapi/v3: an index of group-versions, and one
document per group-version with a path per served resource and a component schema per kind.

kubectl reads them for `explain` (it finds the kind through the `x-kubernetes-group-version-kind` of a path's
operation, then the component schema carrying the same GVK) and, before `apply`/`create`/`edit`, to learn that the
server validates fields itself (a PATCH operation listing the `fieldValidation` query parameter); otherwise it falls
back to validating on the client against /openapi/v2.

A kind's schema is, in order: the one the resource carries (a Promise's API: its CRD's openAPIV3Schema), Kratix's
own CRD schema for platform.kratix.io kinds, or the hand-written one of builtin_schemas.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Iterable, Protocol

from domain.kube.builtin_schemas import BUILTIN_KINDS, LIST_META, META_SCHEMAS, OBJECT_META, ref
from domain.kube.crd import STATUS_SCHEMA, kratix_crd, kratix_kinds, storage_version
from domain.names import KRATIX_GROUP

_API_VERSION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized "
    "schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this from the "
    "endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_LIST_METADATA = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


class Served(Protocol):
    """What the documents need of a served resource (api/kube/registry.py's KubeResource has it)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...]
    subresources: tuple[str, ...]
    schema: dict[str, Any] | None
    promise: str  # the Promise serving this API, "" for the platform's own kinds


def group_version_path(group: str, version: str) -> str:
    """The index key kubectl looks up: `api/v1` for the core group, `apis/<group>/<version>` for the others."""
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def schema_name(group: str, version: str, kind: str) -> str:
    """The component name the apiserver gives a kind: Kubernetes' Go package path for its own groups, the reversed
    group for a CRD's (marketplace.kratix.io -> io.kratix.marketplace.v1alpha1.Redis)."""
    builtin = BUILTIN_KINDS.get((group, kind))
    if builtin:
        return builtin[0]
    return ".".join([*reversed(group.split(".")), version, kind])


def kind_schema(resource: Served) -> dict[str, Any]:
    if resource.promise:
        # As Kratix's generated CRD has it: the Promise's schema with Kratix's status in place of its own.
        schema = copy.deepcopy(resource.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
        schema.setdefault("properties", {})["status"] = copy.deepcopy(STATUS_SCHEMA)
        return schema
    if resource.schema:
        return copy.deepcopy(resource.schema)
    if resource.group == KRATIX_GROUP and resource.kind in kratix_kinds():
        spec = kratix_crd(resource.kind)["spec"]
        version = next((v for v in spec["versions"] if v["name"] == resource.version), storage_version(spec))
        return copy.deepcopy(version["schema"]["openAPIV3Schema"])
    builtin = BUILTIN_KINDS.get((resource.group, resource.kind))
    if builtin:
        return copy.deepcopy(builtin[1])
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _gvk(resource: Served) -> dict[str, str]:
    return {"group": resource.group, "kind": resource.kind, "version": resource.version}


def object_schema(resource: Served) -> dict[str, Any]:
    """The kind's schema as the apiserver publishes it: apiVersion, kind and a metadata pointing at ObjectMeta (a
    CRD may only constrain metadata.name, which the apiserver checks, not documents), tagged with the GVK."""
    schema = kind_schema(resource)
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string", "description": _API_VERSION}
    properties["kind"] = {"type": "string", "description": _KIND}
    properties["metadata"] = ref(OBJECT_META, _METADATA)
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [_gvk(resource)]
    return schema


def _list_schema(resource: Served, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{resource.kind}List is a list of {resource.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION},
            "kind": {"type": "string", "description": _KIND},
            "metadata": ref(LIST_META, _LIST_METADATA),
            "items": {"type": "array", "items": ref(item)},
        },
        "x-kubernetes-group-version-kind": [{**_gvk(resource), "kind": f"{resource.kind}List"}],
    }


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": True}}


_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted (All).")
_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor or entity that is making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server handles unknown or duplicate fields in the request: Ignore, Warn or Strict.",
)
_WRITE_PARAMETERS = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
_LIST_PARAMETERS = [
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("limit", "The maximum number of responses to return for a list call.", "integer"),
    _query("continue", "The continue token of a previous list call that was cut short."),
    _query("resourceVersion", "Which resourceVersion the list or watch is served from."),
    _query("watch", "Watch for changes to the described resources.", "boolean"),
]


def _operation(resource: Served, action: str, schema: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    operation: dict[str, Any] = {
        "operationId": f"{action}{resource.kind}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": body}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(resource),
    }
    if action in ("post", "put"):
        operation["requestBody"] = {"content": body, "required": True}
    if action == "patch":
        # Strategic merge is the apiserver's for its own kinds only; kubectl apply picks its patch type from this.
        types = _PATCH_TYPES + (("application/strategic-merge-patch+json",) if not resource.group else ())
        operation["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in types}, "required": True}
        operation["parameters"] = [*parameters, _query("force", "Force is going to force Apply requests.", "boolean")]
    return operation


def _paths(resource: Served, item: str, listed: str) -> dict[str, Any]:
    prefix = "/" + group_version_path(resource.group, resource.version)
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{resource.plural}"
        if resource.namespaced
        else (f"{prefix}/{resource.plural}")
    )
    verbs = set(resource.verbs)
    paths: dict[str, Any] = {}
    listing: dict[str, Any] = {}
    if "list" in verbs:
        listing["get"] = _operation(resource, "list", listed, _LIST_PARAMETERS)
    if "create" in verbs:
        listing["post"] = _operation(resource, "post", item, _WRITE_PARAMETERS)
    if listing:
        paths[collection] = listing
    if resource.namespaced and "list" in verbs:
        paths[f"{prefix}/{resource.plural}"] = {"get": _operation(resource, "list", listed, _LIST_PARAMETERS)}
    named: dict[str, Any] = {}
    for verb, action, parameters in (
        ("get", "get", []),
        ("update", "put", _WRITE_PARAMETERS),
        ("patch", "patch", _WRITE_PARAMETERS),
        ("delete", "delete", [_DRY_RUN]),
    ):
        if verb in verbs:
            named[action] = _operation(resource, action, item, parameters)
    if named:
        paths[f"{collection}/{{name}}"] = named
    if "status" in resource.subresources and "patch" in verbs:
        paths[f"{collection}/{{name}}/status"] = {
            "get": _operation(resource, "get", item, []),
            "patch": _operation(resource, "patch", item, _WRITE_PARAMETERS),
        }
    return paths


def group_version_document(group: str, version: str, resources: Iterable[Served]) -> dict[str, Any]:
    """The /openapi/v3/<group_version_path> document for the resources served in that group-version."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = copy.deepcopy(META_SCHEMAS)
    for resource in sorted(resources, key=lambda r: r.plural):
        item = schema_name(group, version, resource.kind)
        listed = f"{item}List"
        schemas[item] = object_schema(resource)
        schemas[listed] = _list_schema(resource, item)
        paths.update(_paths(resource, item, listed))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "ktx"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def documents(resources: Iterable[Served]) -> dict[str, dict[str, Any]]:
    """Every group-version's document, keyed by its index path."""
    grouped: dict[tuple[str, str], list[Served]] = {}
    for resource in resources:
        grouped.setdefault((resource.group, resource.version), []).append(resource)
    return {
        group_version_path(group, version): group_version_document(group, version, members)
        for (group, version), members in sorted(grouped.items())
    }


def encode(document: dict[str, Any]) -> bytes:
    """One canonical encoding, so a document's hash names its bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def document_hash(document: dict[str, Any]) -> str:
    """The apiserver's `hash` query value: the SHA-512 of the document, upper-case hex. kubectl caches a document by
    it, so a changed document (a Promise installed, upgraded) must change its URL."""
    return hashlib.sha512(encode(document)).hexdigest().upper()


def index(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The /openapi/v3 discovery document."""
    return {
        "paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={document_hash(doc)}"} for path, doc in docs.items()
        }
    }
