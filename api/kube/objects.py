"""The Kubernetes object routes: get, list (labelSelector, fieldSelector, Table), create, update, patch (merge, JSON,
strategic merge for v1 kinds, server-side apply), delete, `?dryRun=All` and the status subresource, all answered from
the same application service as the ktx REST routes.

URLs are parsed as the apiserver does, one segment at a time, so `/api/v1/namespaces/{ns}/secrets` and
`/api/v1/namespaces/{name}` are told apart by their shape:
  /api/v1/...                        the core group
  /apis/{group}/{version}/...        a named group
  .../namespaces/{ns}/{plural}[/{name}[/{subresource}]]
  .../{plural}[/{name}[/{subresource}]]
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import yaml
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from activities.stores.secrets import encode_values
from api.kube import errors as ke
from api.kube.authz import KubeCaller, authorize, permitted
from api.kube.registry import BUILTIN, VIEWS, KubeResource, lookup
from api.kube.rollouts import authorize_plan, plan_refusal
from api.kube.warnings import with_warnings
from api.kube.watch import feed_of, watch
from domain.dry_run import live_namespace as dry_run_live_namespace
from domain.errors import Conflict, DocumentTooLarge, FieldError, InvalidDocument, NotFound, StaleResourceVersion
from domain import rollout_plan as rp
from domain.kube import SecretRef, protobuf
from domain.kube.rollout_plans import requested_control
from domain.kube.objects import list_of, to_kube
from domain.kube.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    depth,
)
from domain.kube.selectors import (
    SelectorError,
    field_value,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from domain.kube.table import ColumnPathError, table
from domain.names import LABEL_MAX, NAMESPACE_PATTERN, NAME_PATTERN, SUBDOMAIN_MAX
from service.platform import Platform


router = APIRouter()

TABLE = "as=Table"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
# The apiserver's answer for a custom resource asked for a strategic merge patch (kubectl patch's default type).
CUSTOM_PATCH_TYPES = f"{JSON_PATCH}, {MERGE}, {APPLY}"
# Metadata the server keeps: never taken from a client's document (resourceVersion goes on, as the precondition).
SERVER_FIELDS = (
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "finalizers",
    "selfLink",
    "deletionGracePeriodSeconds",
)
FIELD_PATHS = {"metadata.name", "metadata.namespace"}


@dataclass(frozen=True)
class Target:
    resource: KubeResource
    namespace: str | None
    name: str | None
    subresource: str | None


def _check_name(value: str, what: str) -> None:
    pattern, limit = (NAMESPACE_PATTERN, LABEL_MAX) if what == "namespace" else (NAME_PATTERN, SUBDOMAIN_MAX)
    if len(value) > limit or not pattern.match(value):
        raise ke.bad_request(f"invalid {what} {value[:80]!r}: not a DNS-1123 name")


async def _target(platform: Platform, group: str, version: str, path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if len(parts) > 5:
        raise ke.KubeError("NotFound", "the server could not find the requested resource", {})
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
        _check_name(namespace, "namespace")
    if not parts or len(parts) > 3:
        raise ke.KubeError("NotFound", "the server could not find the requested resource", {})
    resource = await lookup(platform, group, version, parts[0])
    name = parts[1] if len(parts) > 1 else None
    subresource = parts[2] if len(parts) > 2 else None
    if name is not None:
        _check_name(name, "name")
    if subresource is not None and subresource not in resource.subresources:
        raise ke.KubeError("NotFound", "the server could not find the requested resource", {})
    if namespace is not None and not resource.namespaced:
        raise ke.KubeError("NotFound", "the server could not find the requested resource", {})
    return Target(resource, namespace, name, subresource)


def _platform(request: Request) -> Platform:
    return request.app.state.platform


# --- reading ---


async def _get(platform: Platform, caller: Any, target: Target) -> dict[str, Any]:
    resource, name = target.resource, target.name or ""
    namespace = target.namespace or "default"
    view = VIEWS.get(resource.ktx_kind)
    try:
        if view is not None:
            obj = await view.get(
                platform, name, target.namespace if resource.namespaced else None, namespaces=caller.namespaces
            )
        elif resource.ktx_kind == rp.KIND:
            obj = await platform.rollout(name)
        else:
            obj = await platform.get(resource.ktx_kind, name, namespace)
    except NotFound as exc:
        raise ke.not_found(resource.plural, resource.group, name) from exc
    if resource.ktx_kind == "Secret":
        return _secret(platform, caller, obj)
    return to_kube(obj, resource)


def _secret(platform: Platform, caller: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """A Secret as the apiserver shows it: its values (base64) to a caller allowed to get Secrets there, only."""
    metadata = dict(summary["metadata"])
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": summary.get("type", "Opaque")}
    if not permitted(caller, "get", _SECRETS, metadata.get("namespace"), metadata.get("name")):
        return doc
    values = platform.secrets.get(SecretRef(name=metadata["name"], namespace=metadata.get("namespace") or "default"))
    doc["data"] = encode_values(values)
    return doc


async def _list(
    platform: Platform, caller: Any, target: Target, equalities: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    resource = target.resource
    view = VIEWS.get(resource.ktx_kind)
    if view is not None:
        return await view.list(platform, target.namespace, namespaces=caller.namespaces, fields=equalities)
    if resource.ktx_kind == rp.KIND:
        return await platform.rollouts()
    return await platform.list(resource.ktx_kind, namespace=target.namespace)


def _namespace_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def _wants_table(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return TABLE in accept.replace(" ", "") and "g=meta.k8s.io" in accept


def _table_or(request: Request, resource: KubeResource, objects: list[dict[str, Any]], listed: dict[str, Any]) -> Any:
    if not _wants_table(request):
        return JSONResponse(listed)
    return JSONResponse(_table_of(request, resource, objects, listed["metadata"]["resourceVersion"]))


def _table_of(
    request: Request, resource: KubeResource, objects: list[dict[str, Any]], resource_version: str | None
) -> dict[str, Any]:
    include = request.query_params.get("includeObject", "Metadata")
    try:
        return table(
            objects, resource.kind, resource.printer_columns, include_object=include, resource_version=resource_version
        )
    except ColumnPathError:  # a Promise's column this subset cannot read: the default columns, not a 500
        return table(objects, resource.kind, (), include_object=include)


def _selector(request: Request, resource: KubeResource) -> tuple[Callable[[dict[str, Any]], bool], dict[str, str]]:
    """Whether an object (as shown) matches the request's labelSelector and fieldSelector; a 400 if they don't parse.
    Also the selector's `path=value` terms, with which a view may read less (describe's one object's Events)."""
    labels = request.query_params.get("labelSelector") or ""
    fields = request.query_params.get("fieldSelector") or ""
    view = VIEWS.get(resource.ktx_kind)
    allowed = FIELD_PATHS | set(view.selectable_fields if view is not None else ())
    try:
        requirements = parse_label_selector(labels)
        terms = parse_field_selector(fields, allowed)
    except SelectorError as exc:
        raise ke.bad_request(str(exc)) from exc
    value = getattr(view, "field_value", field_value)  # a view may define a field its own way (an Event's source)
    equalities = {t.path: t.value for t in terms if not t.negated}
    return (lambda o: labels_match(requirements, o) and fields_match(terms, o, value)), equalities


# --- writing ---


async def _body(request: Request) -> Any:
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if content_type == protobuf.CONTENT_TYPE:
            value = _protobuf_secret(raw)
        elif content_type in ("application/yaml", APPLY) or (content_type == "" and raw[:1] not in (b"{", b"[")):
            value = await run_in_threadpool(yaml.safe_load, raw.decode())
        elif content_type.startswith("application/") and content_type.endswith("json"):
            value = json.loads(raw)
        else:
            raise ke.unsupported_media_type(content_type)
        depth(value)
    except protobuf.ProtobufError as exc:
        raise ke.unsupported_media_type(f"{content_type} ({exc})") from exc
    except (ValueError, yaml.YAMLError, PatchError, RecursionError) as exc:
        raise ke.bad_request(f"the request body could not be decoded: {str(exc)[:300]}") from exc
    return value


def _protobuf_secret(raw: bytes) -> dict[str, Any]:
    """The one body kubectl sends as protobuf to these routes: `kubectl create secret`'s v1 Secret."""
    secret = protobuf.decode_object(raw, protobuf.SECRET)
    if (secret.get("apiVersion"), secret.get("kind")) != ("v1", "Secret"):
        raise protobuf.ProtobufError(f"only a v1 Secret is read as protobuf, not {secret.get('kind')!r}")
    if "data" in secret:
        secret["data"] = {k: base64.b64encode(v).decode() for k, v in secret["data"].items()}
    return secret


def _document(resource: KubeResource, target: Target, body: Any) -> dict[str, Any]:
    """A client's object checked against the URL it was sent to, without the fields the server keeps, and in the
    version it is stored as (conversion `None`: the same object)."""
    if not isinstance(body, dict):
        raise ke.bad_request("the request body must be an object")
    if body.get("apiVersion") not in (None, resource.api_version) or body.get("kind") not in (None, resource.kind):
        raise ke.bad_request(
            f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version "
            f"({resource.api_version})"
            if body.get("apiVersion") != resource.api_version
            else f"the kind in the data ({body.get('kind')}) does not match the expected kind ({resource.kind})"
        )
    document = dict(body)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        raise ke.invalid(
            resource.kind,
            resource.group,
            "",
            [FieldError("metadata.name", "Required value: name or generateName is required")],
        )
    metadata = {k: v for k, v in metadata.items() if k not in SERVER_FIELDS}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ke.invalid(
            resource.kind,
            resource.group,
            "",
            [FieldError("metadata.name", "Required value: name or generateName is required")],
        )
    if target.name is not None and name != target.name:
        raise ke.bad_request(f"the name of the object ({name}) does not match the name on the URL ({target.name})")
    if resource.namespaced:
        namespace = target.namespace or metadata.get("namespace") or "default"
        if metadata.get("namespace") not in (None, "", namespace):
            raise ke.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    document["metadata"] = metadata
    version = resource.storage_version or resource.version
    document["apiVersion"] = f"{resource.group}/{version}" if resource.group else version
    document["kind"] = resource.kind
    return document


async def _store(
    platform: Platform, caller: Any, resource: KubeResource, document: dict[str, Any], dry_run: bool
) -> tuple[dict[str, Any], list[str]]:
    """Admission and storage through the service, its refusals as Status documents; the document as admitted, and
    admission's warnings."""
    name = str(document["metadata"].get("name"))
    live = dry_run_live_namespace(document)
    if live is not None:
        # A DryRun reads the live request it diffs against: only one who may preview there may name it.
        authorize(caller, "create", resource, live, name)
    try:
        if resource.ktx_kind == rp.KIND:
            authorize_plan(caller, "create", resource, document)
            if dry_run:
                await platform.preview_rollout(document)
            else:
                await platform.create_rollout(document)
            return document, []
        if dry_run:
            return await platform.admit(document), []
        applied = await platform.apply(document)
        return document, applied.warnings
    except InvalidDocument as exc:
        raise ke.invalid(resource.kind, resource.group, name, exc.errors) from exc
    except StaleResourceVersion as exc:
        raise ke.conflict(resource.plural, resource.group, name, str(exc)) from exc
    except NotFound as exc:
        raise ke.KubeError(
            "NotFound", str(exc), {"name": name, "group": resource.group, "kind": resource.plural}
        ) from exc
    except Conflict as exc:
        raise ke.conflict(resource.plural, resource.group, name, str(exc)) from exc
    except DocumentTooLarge as exc:
        raise ke.KubeError("RequestEntityTooLarge", str(exc)) from exc


def _dry_run(request: Request) -> bool:
    values = request.query_params.getlist("dryRun")
    if any(v != "All" for v in values):
        raise ke.bad_request(f"Invalid dryRun value {values!r}: only 'All' is supported")
    return bool(values)


async def _written(
    platform: Platform, caller: Any, target: Target, document: dict[str, Any], dry_run: bool
) -> dict[str, Any]:
    """What a write answers: the object as stored now, or (dry run) the admitted document as it would be."""
    if dry_run:
        return to_kube({**document, "_ktx": {}}, target.resource)
    name = document["metadata"]["name"]
    try:
        return await _get(platform, caller, Target(target.resource, document["metadata"].get("namespace"), name, None))
    except ke.KubeError:
        return to_kube({**document, "_ktx": {}}, target.resource)


def _read_only(target: Target, verb: str) -> None:
    if not target.resource.allows(verb) or target.resource.ktx_kind in VIEWS and verb not in ("get", "list", "watch"):
        raise ke.method_not_allowed(verb, target.resource.plural, target.resource.group)


# --- routes ---


async def _route(request: Request, caller: Any, group: str, version: str, path: str) -> Any:
    platform = _platform(request)
    target = await _target(platform, group, version, path)
    resource = target.resource
    method = request.method
    if method == "GET":
        if target.name is None:
            verb = "watch" if request.query_params.get("watch") in ("1", "true") else "list"
            _read_only(target, verb)
            # `-A` without a cluster-wide grant lists the namespaces the caller may list, as the ktx REST list does;
            # a caller who may list in none is refused as the apiserver refuses it.
            across = resource.namespaced and target.namespace is None and not permitted(caller, verb, resource, None)
            if not across or not caller.namespaces:
                authorize(caller, verb, resource, target.namespace, None)
            selected, equalities = _selector(request, resource)

            def visible(obj: dict[str, Any]) -> bool:
                if resource.ktx_kind == rp.KIND:
                    return plan_refusal(caller, verb, obj) is None  # a team lists the plans it manages
                if not resource.namespaced:
                    return True
                namespace = _namespace_of(obj)
                if target.namespace is not None:
                    return namespace == target.namespace
                return not across or permitted(caller, verb, resource, namespace)

            def shown(obj: dict[str, Any]) -> dict[str, Any]:
                return _secret(platform, caller, obj) if resource.ktx_kind == "Secret" else to_kube(obj, resource)

            async def current() -> list[dict[str, Any]]:
                return [o for o in await _list(platform, caller, target, equalities) if visible(o)]

            if verb == "watch":
                # As the apiserver: a watch asked for as a Table streams each object as a one-row Table.
                render = (
                    (lambda o: _table_of(request, resource, [o], (o.get("metadata") or {}).get("resourceVersion")))
                    if _wants_table(request)
                    else None
                )
                return await watch(request, resource, current, shown, lambda o: visible(o) and selected(o), render)
            items = [item for item in map(shown, await current()) if selected(item)]
            # The feed's position, not the newest item's: a watch from it misses nothing, and is never too old.
            listed = list_of(items, resource, str(feed_of(request).position))
            return _table_or(request, resource, items, listed)
        _read_only(target, "get")
        authorize(caller, "get", resource, target.namespace, target.name, target.subresource)
        obj = await _get(platform, caller, target)
        if resource.ktx_kind == rp.KIND:
            authorize_plan(caller, "get", resource, obj)
        if _wants_table(request):
            return _table_or(request, resource, [obj], list_of([obj], resource))
        return JSONResponse(obj)
    if method == "POST":
        if target.name is not None:
            raise ke.method_not_allowed("create", resource.plural, resource.group)
        _read_only(target, "create")
        return await _create(request, caller, target)
    if target.name is None:
        raise ke.method_not_allowed(method.lower(), resource.plural, resource.group)
    if method == "PUT":
        _read_only(target, "update")
        authorize(caller, "update", resource, target.namespace, target.name, target.subresource)
        return await _update(request, caller, target, await _body(request))
    if method == "PATCH":
        _read_only(target, "patch")
        authorize(caller, "patch", resource, target.namespace, target.name, target.subresource)
        return await _patch(request, caller, target)
    if method == "DELETE":
        _read_only(target, "delete")
        authorize(caller, "delete", resource, target.namespace, target.name)
        return await _delete(request, caller, target)
    raise ke.method_not_allowed(method.lower(), resource.plural, resource.group)


async def _create(request: Request, caller: Any, target: Target) -> Any:
    platform, resource = _platform(request), target.resource
    document = _document(resource, target, await _body(request))
    document["metadata"].pop("resourceVersion", None)  # a create has no precondition
    name, namespace = document["metadata"]["name"], document["metadata"].get("namespace")
    authorize(caller, "create", resource, namespace, name)
    if await _exists(platform, caller, Target(resource, namespace, name, None)):
        raise ke.already_exists(resource.plural, resource.group, name)
    dry_run = _dry_run(request)
    document, warnings = await _store(platform, caller, resource, document, dry_run)
    return with_warnings(
        JSONResponse(await _written(platform, caller, target, document, dry_run), status_code=201), warnings
    )


async def _exists(platform: Platform, caller: Any, target: Target) -> bool:
    try:
        await _get(platform, caller, target)
    except ke.KubeError as exc:
        if exc.reason == "NotFound":
            return False
        raise
    return True


async def _update(request: Request, caller: Any, target: Target, body: Any) -> Any:
    platform, resource = _platform(request), target.resource
    if target.subresource == "status":
        if not isinstance(body, dict):
            raise ke.bad_request("the request body must be an object")
        _document(resource, target, body)  # the same checks of apiVersion, kind, name and namespace
        return await _write_status(request, caller, target, body.get("status") or {}, replace=True)
    current = await _get(platform, caller, target)
    document = _document(resource, target, body)
    if resource.ktx_kind == rp.KIND:
        return await _change_plan(request, caller, target, current, document)
    if resource.ktx_kind == "Secret" and "data" not in document and "stringData" not in document:
        document["data"] = current.get("data") or {}
    dry_run = _dry_run(request)
    document, warnings = await _store(platform, caller, resource, document, dry_run)
    return with_warnings(JSONResponse(await _written(platform, caller, target, document, dry_run)), warnings)


async def _patch(request: Request, caller: Any, target: Target) -> Any:
    platform, resource = _platform(request), target.resource
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type == STRATEGIC and resource.group:
        raise ke.KubeError(
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: {CUSTOM_PATCH_TYPES}",
        )
    if content_type not in (MERGE, JSON_PATCH, STRATEGIC, APPLY):
        raise ke.unsupported_media_type(content_type)
    patch = await _body(request)
    if content_type == APPLY:
        return await _server_side_apply(request, caller, target, patch)
    current = await _get(platform, caller, target)
    if target.subresource == "status" and content_type == MERGE:
        # Sent on as the merge patch it is, so the workflow merges it atomically with whatever a pipeline writes.
        if not isinstance(patch, dict):
            raise ke.bad_request("a merge patch of the status must be an object")
        return await _write_status(request, caller, target, patch.get("status") or {}, replace=False)
    try:
        if content_type == MERGE:
            patched = apply_merge_patch(current, patch)
        elif content_type == JSON_PATCH:
            patched = apply_json_patch(current, patch)
        else:
            patched = apply_strategic_merge_patch(current, patch)
    except PatchError as exc:
        raise ke.KubeError("Invalid" if content_type == JSON_PATCH else "BadRequest", str(exc)) from exc
    if target.subresource == "status":
        status = patched.get("status") if isinstance(patched, dict) else None
        return await _write_status(request, caller, target, status or {}, replace=True)
    if isinstance(patched, dict):
        live = (current.get("metadata") or {}).get("resourceVersion")
        metadata = patched.get("metadata")
        # A patch is a precondition only when it names a resourceVersion of its own, as with the apiserver.
        if isinstance(metadata, dict) and metadata.get("resourceVersion") == live:
            metadata.pop("resourceVersion", None)
    if resource.ktx_kind == rp.KIND:
        return await _change_plan(request, caller, target, current, _document(resource, target, patched))
    if _only_labels_changed(resource, current, patched) and not _dry_run(request):
        return await _relabel(request, caller, target, current, patched)
    return await _update_with(request, caller, target, patched)


def _labels(obj: Any) -> dict[str, Any]:
    labels = ((obj.get("metadata") or {}) if isinstance(obj, dict) else {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _only_labels_changed(resource: KubeResource, current: dict[str, Any], patched: Any) -> bool:
    """A patch that changes labels alone (kubectl label, pause and unpause) on an object whose workflow takes label
    changes: sent as one, so it works while the object is deleting too (removing kratix.io/workflow-suspended is how
    a suspended delete resumes), as labelling a terminating object does in Kubernetes."""
    if not (resource.ktx_kind == "Promise" or resource.promise) or not isinstance(patched, dict):
        return False
    if (patched.get("metadata") or {}).get("resourceVersion"):
        return False  # a precondition: through apply, which checks it
    if _labels(patched) == _labels(current) or not all(isinstance(v, str) for v in _labels(patched).values()):
        return False

    def rest(obj: dict[str, Any]) -> dict[str, Any]:
        metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("labels", "resourceVersion")}
        return {**obj, "metadata": metadata}

    return rest(patched) == rest(current)


async def _relabel(
    request: Request, caller: Any, target: Target, current: dict[str, Any], patched: dict[str, Any]
) -> Any:
    platform, resource = _platform(request), target.resource
    old, new = _labels(current), _labels(patched)
    name = target.name or ""
    with _refusals(resource, name):
        await platform.label(
            resource.ktx_kind,
            name,
            target.namespace or "default",
            set={k: v for k, v in new.items() if old.get(k) != v},
            remove=[k for k in old if k not in new],
        )
    return JSONResponse(await _get(platform, caller, target))


@contextmanager
def _refusals(resource: KubeResource, name: str) -> Iterator[None]:
    """The service's refusals of a change to one object, as the Status documents the apiserver answers."""
    try:
        yield
    except InvalidDocument as exc:
        raise ke.invalid(resource.kind, resource.group, name, exc.errors) from exc
    except NotFound as exc:
        raise ke.not_found(resource.plural, resource.group, name) from exc
    except Conflict as exc:
        raise ke.conflict(resource.plural, resource.group, name, str(exc)) from exc


async def _write_status(request: Request, caller: Any, target: Target, status: Any, *, replace: bool) -> Any:
    """The status subresource: only status changes (anything else in the body is ignored, as the apiserver does)."""
    platform, resource = _platform(request), target.resource
    name, namespace = target.name or "", target.namespace or "default"
    if not isinstance(status, dict):
        raise ke.invalid(resource.kind, resource.group, name, [FieldError("status", "must be an object")])
    if _dry_run(request):
        current = await _get(platform, caller, target)
        return JSONResponse(
            {**current, "status": status if replace else apply_merge_patch(current.get("status") or {}, status)}
        )
    try:
        await platform.patch_status(resource.ktx_kind, name, namespace, status, replace=replace)
    except InvalidDocument as exc:
        raise ke.invalid(resource.kind, resource.group, name, exc.errors) from exc
    except NotFound as exc:
        raise ke.not_found(resource.plural, resource.group, name) from exc
    except Conflict as exc:
        raise ke.method_not_allowed("update status", resource.plural, resource.group) from exc
    return JSONResponse(await _get(platform, caller, target))


async def _change_plan(
    request: Request, caller: Any, target: Target, current: dict[str, Any], wanted: dict[str, Any]
) -> Any:
    """A write to a RolloutPlan that exists: its control annotation (domain/kube/rollout_plans.py) sent to the plan's
    workflow, nothing for a write that changes nothing, 409 for one that would change the plan."""
    platform, resource = _platform(request), target.resource
    name = target.name or ""
    authorize_plan(caller, "patch", resource, current)
    with _refusals(resource, name):
        control = requested_control(current, wanted)
        if control is not None and not _dry_run(request):
            await platform.control_rollout(name, control)
    return JSONResponse(await _get(platform, caller, target))


async def _update_with(request: Request, caller: Any, target: Target, body: Any) -> Any:
    platform, resource = _platform(request), target.resource
    document = _document(resource, target, body)
    if resource.ktx_kind == rp.KIND:
        return await _change_plan(request, caller, target, await _get(platform, caller, target), document)
    dry_run = _dry_run(request)
    document, warnings = await _store(platform, caller, resource, document, dry_run)
    return with_warnings(JSONResponse(await _written(platform, caller, target, document, dry_run)), warnings)


async def _server_side_apply(request: Request, caller: Any, target: Target, applied: Any) -> Any:
    """Server-side apply, simplified: the applied configuration merged onto the live object (RFC 7386 semantics: maps
    merge, lists are replaced), or created from it. No managedFields are kept, so fields a manager stops applying
    stay on the object and no conflicts between managers are reported (`force` is accepted and changes nothing)."""
    platform, resource = _platform(request), target.resource
    if not request.query_params.get("fieldManager"):
        raise ke.bad_request("PATCH with application/apply-patch+yaml requires the fieldManager query parameter")
    if not isinstance(applied, dict):
        raise ke.bad_request("the applied configuration must be an object")
    document = _document(resource, target, applied)
    if not await _exists(platform, caller, target):
        authorize(caller, "create", resource, target.namespace, target.name)
        dry_run = _dry_run(request)
        document["metadata"].pop("resourceVersion", None)
        document, warnings = await _store(platform, caller, resource, document, dry_run)
        return with_warnings(
            JSONResponse(await _written(platform, caller, target, document, dry_run), status_code=201), warnings
        )
    current = await _get(platform, caller, target)
    merged = apply_merge_patch(current, {k: v for k, v in document.items() if k != "status"})
    merged["metadata"].pop("resourceVersion", None)
    return await _update_with(request, caller, target, merged)


async def _delete(request: Request, caller: Any, target: Target) -> Any:
    platform, resource = _platform(request), target.resource
    name, namespace = target.name or "", target.namespace or "default"
    policy = request.query_params.get("propagationPolicy")
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise ke.bad_request(f"propagationPolicy {policy[:40]!r} is not one of Orphan, Background, Foreground")
    if resource.ktx_kind == rp.KIND:
        authorize_plan(caller, "delete", resource, await _get(platform, caller, target))
    if _dry_run(request):
        obj = await _get(platform, caller, target)
        return JSONResponse(obj)
    try:
        if resource.ktx_kind == rp.KIND:
            # The plan's workflow ends at once, or refuses (409 naming the phase) while requests run.
            await platform.control_rollout(name, "delete")
        else:
            await platform.delete(resource.ktx_kind, name, namespace)
    except NotFound as exc:
        raise ke.not_found(resource.plural, resource.group, name) from exc
    except Conflict as exc:
        raise ke.conflict(resource.plural, resource.group, name, str(exc)) from exc
    try:
        obj = None if resource.ktx_kind == rp.KIND else await platform.get(resource.ktx_kind, name, namespace)
    except NotFound:
        obj = None
    if obj is not None and resource.ktx_kind not in ("Secret",) and obj.get("metadata", {}).get("deletionTimestamp"):
        # Finalizers hold it while its delete pipeline runs: the apiserver answers with the object, marked deleting.
        return JSONResponse(to_kube(obj, resource))
    details = {"name": name, "kind": resource.plural, **({"group": resource.group} if resource.group else {})}
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})


_SECRETS = next(r for r in BUILTIN if r.ktx_kind == "Secret")

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@router.api_route("/api/v1/{path:path}", methods=_METHODS)
async def core(path: str, request: Request, caller: KubeCaller) -> Response:
    return await _route(request, caller, "", "v1", path)


@router.api_route("/apis/{group}/{version}/{path:path}", methods=_METHODS)
async def named(group: str, version: str, path: str, request: Request, caller: KubeCaller) -> Response:
    return await _route(request, caller, group, version, path)
