"""The read-only kinds the Kubernetes API serves that no workflow holds as an object: each is derived, on every read,
from the objects the platform does hold. `VIEWS` is keyed by the ktx kind the registry names (api/kube/registry.py);
the Kubernetes object routes ask a view before the Platform.

- CustomResourceDefinition: Kratix's own (as its CRDs declare them) and the one each installed Promise's `spec.api`
  generates (domain/kube/crd.py).
- Work and WorkPlacement: from each Promise's and resource's placements and pending groups (domain/kube/works.py).
- Namespace: listed, every namespace an object or Secret is in, `default`, `kratix-platform-system`, and the
  caller's own namespaces (a team token's, handed in by the route: they are the API's configuration, not the
  platform's state), so `kubectl get ns` lists where a team may work before it has created anything there; got by
  name, any well-formed namespace (ktx needs no namespace created before objects go into it).
- Event: the events each object's workflow keeps (domain/kube/events.py).

Each view returns objects in Platform.get's shape (`_ktx` holding at most the resourceVersion), which the routes turn
into Kubernetes objects like any other (domain/kube/objects.py to_kube).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Iterable, Mapping, Protocol

from domain.errors import NotFound
from domain.kube.crd import established, generated_crd, kratix_crd, kratix_kinds
from domain.kube.events import REPORTERS, RESOURCE_REPORTER, SELECTABLE_FIELDS, event_field_value, events_of
from domain.kube.works import Owner
from domain.layout import PLATFORM_NAMESPACE
from domain.labels import PROMISE_NAME
from domain.names import LABEL_MAX, NAMESPACE_PATTERN
from service.platform import Platform

# Kratix's own CRDs were installed with the platform; this process's start is the nearest thing ktx knows of that.
_SERVED_SINCE = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
_CATALOG_KINDS = ("Destination", "GitStateStore", "BucketStateStore")
_DERIVED_KINDS = ("CustomResourceDefinition", "Work", "WorkPlacement", "Namespace", "Event")
ALWAYS_NAMESPACES = ("default", PLATFORM_NAMESPACE)


class View(Protocol):
    namespaced: bool
    # Fields `--field-selector` may name beyond metadata.name and metadata.namespace.
    selectable_fields: tuple[str, ...]

    async def list(
        self,
        platform: Platform,
        namespace: str | None,
        *,
        namespaces: Iterable[str] = (),
        fields: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]: ...

    async def get(
        self, platform: Platform, name: str, namespace: str | None, *, namespaces: Iterable[str] = ()
    ) -> dict[str, Any]: ...


class _View:
    kind = ""
    namespaced = True
    selectable_fields: tuple[str, ...] = ()

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def narrowed(
        self, platform: Platform, namespace: str | None, fields: Mapping[str, str]
    ) -> list[dict[str, Any]] | None:
        """What a field selector's equalities leave, read without reading everything; None when they narrow nothing
        this view can use. The route still applies the whole selector."""
        return None

    async def list(
        self,
        platform: Platform,
        namespace: str | None,
        *,
        namespaces: Iterable[str] = (),
        fields: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        found = await self.narrowed(platform, namespace, fields) if fields else None
        if found is None:
            found = await self.all(platform, namespaces)
        if self.namespaced and namespace:
            found = [o for o in found if o["metadata"].get("namespace") == namespace]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    async def get(
        self, platform: Platform, name: str, namespace: str | None, *, namespaces: Iterable[str] = ()
    ) -> dict[str, Any]:
        for obj in await self.list(platform, namespace, namespaces=namespaces):
            if obj["metadata"]["name"] == name:
                return obj
        raise NotFound(f'{self.kind.lower()} "{name}" not found')


def _rv(obj: dict[str, Any]) -> dict[str, Any]:
    version = (obj.get("_ktx") or {}).get("resourceVersion")
    return {} if version is None else {"resourceVersion": version}


def promise_crd(promise: dict[str, Any]) -> dict[str, Any] | None:
    """The CRD an installed Promise's API generates, as the apiserver shows it; None for a Promise without an API."""
    api = (promise.get("spec") or {}).get("api")
    if not isinstance(api, dict):
        return None
    meta = promise.get("metadata") or {}
    name = str((api.get("metadata") or {}).get("name") or "")
    try:
        uid = str(uuid.uuid5(uuid.UUID(str(meta.get("uid"))), name))
    except ValueError:
        uid = str(uuid.uuid5(uuid.NAMESPACE_OID, name))
    version = (promise.get("_ktx") or {}).get("resourceVersion")
    crd = established(
        generated_crd(str(meta.get("name", "")), api),
        uid=uid,
        created=str(meta.get("creationTimestamp") or _SERVED_SINCE),
        resource_version="" if version is None else str(version),
    )
    if version is None:
        del crd["metadata"]["resourceVersion"]
    crd["_ktx"] = _rv(promise)
    return crd


def kratix_crds() -> list[dict[str, Any]]:
    found = []
    for kind in kratix_kinds():
        crd = kratix_crd(kind)
        name = crd["metadata"]["name"]
        found.append(
            established(crd, uid=str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), created=_SERVED_SINCE, resource_version="1")
        )
    return found


class CustomResourceDefinitions(_View):
    kind = "CustomResourceDefinition"
    namespaced = False

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        generated = [promise_crd(p) for p in await platform.list("Promise")]
        return kratix_crds() + [c for c in generated if c is not None]


async def _owners(platform: Platform) -> list[Owner]:
    promises, resources = await asyncio.gather(platform.list("Promise"), platform.all_resources())
    owners = [Owner(p, p["metadata"]["name"]) for p in promises]
    owners += [Owner(r, ((r.get("metadata") or {}).get("labels") or {}).get(PROMISE_NAME, "")) for r in resources]
    return owners


class Works(_View):
    kind = "Work"

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        return [w for owner in await _owners(platform) for w in owner.works()]


class WorkPlacements(_View):
    kind = "WorkPlacement"

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        return [w for owner in await _owners(platform) for w in owner.workplacements()]


class Namespaces(_View):
    kind = "Namespace"
    namespaced = False

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        resources = await platform.all_resources()
        created: dict[str, str] = {}
        for obj in resources:
            meta = obj.get("metadata") or {}
            namespace, when = meta.get("namespace") or "default", str(meta.get("creationTimestamp") or _SERVED_SINCE)
            created[namespace] = min(created.get(namespace, when), when)
        for namespace in [
            *ALWAYS_NAMESPACES,
            *namespaces,
            *(s.namespace for s in platform.secrets.summaries()),
        ]:
            created.setdefault(namespace, _SERVED_SINCE)
        return [_namespace(name, when) for name, when in created.items()]

    async def get(
        self, platform: Platform, name: str, namespace: str | None, *, namespaces: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Any well-formed namespace exists: ktx takes objects into a namespace without its being created first, and
        kubectl asks for the namespace when an object is not found in it (cli-runtime Info.Get), so a 404 here
        would turn `kubectl apply` into a new namespace into `namespaces "x" not found`."""
        try:
            return await super().get(platform, name, namespace, namespaces=namespaces)
        except NotFound:
            if len(name) > LABEL_MAX or not NAMESPACE_PATTERN.match(name):
                raise
            return _namespace(name, _SERVED_SINCE)


def _namespace(name: str, created: str) -> dict[str, Any]:
    """As the apiserver shows one: the `kubernetes.io/metadata.name` label it sets, the `kubernetes` finalizer."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"namespace.{name}")),
            "creationTimestamp": created,
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
        "_ktx": {},
    }


class Events(_View):
    kind = "Event"
    selectable_fields = SELECTABLE_FIELDS

    @staticmethod
    def field_value(event: dict[str, Any], path: str) -> str:
        return event_field_value(event, path)

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        promises, releases, resources, *catalog = await asyncio.gather(
            platform.list("Promise"),
            platform.list("PromiseRelease"),
            platform.all_resources(),
            *(platform.list(k) for k in _CATALOG_KINDS),
        )
        found = [e for p in promises for e in events_of(p, False, REPORTERS["Promise"])]
        found += [e for r in releases for e in events_of(r, False, REPORTERS["PromiseRelease"])]
        found += [e for r in resources for e in events_of(r, True, RESOURCE_REPORTER)]
        for kind, entries in zip(_CATALOG_KINDS, catalog):
            found += [e for entry in entries for e in events_of(entry, False, REPORTERS[kind])]
        return found

    async def narrowed(
        self, platform: Platform, namespace: str | None, fields: Mapping[str, str]
    ) -> list[dict[str, Any]] | None:
        """`kubectl describe` asks for one object's events (involvedObject name, kind, namespace, uid): that object
        alone is read, not every object on the platform."""
        kind, name = fields.get("involvedObject.kind"), fields.get("involvedObject.name")
        if not kind or not name:
            return None
        if kind in _DERIVED_KINDS:
            return []  # nothing records events about the derived kinds
        cluster_scoped = kind in ("Promise", "PromiseRelease") or kind in _CATALOG_KINDS
        where = "default" if cluster_scoped else fields.get("involvedObject.namespace") or namespace
        if where is None:
            return None  # a request in any namespace: which one holds it is not known without looking
        try:
            obj = await platform.get(kind, name, where)
        except NotFound:
            return []
        reporter = REPORTERS[kind] if cluster_scoped else RESOURCE_REPORTER
        return events_of(obj, not cluster_scoped, reporter)


VIEWS: dict[str, View] = {
    "CustomResourceDefinition": CustomResourceDefinitions(),
    "Work": Works(),
    "WorkPlacement": WorkPlacements(),
    "Namespace": Namespaces(),
    "Event": Events(),
}
