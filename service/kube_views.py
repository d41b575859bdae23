"""The read-only kinds the Kubernetes API serves that no workflow holds as an object: each is derived, on every read,
from the objects the platform does hold. `VIEWS` is keyed by the ktx kind the registry names (api/kube/registry.py);
the Kubernetes object routes ask a view before the Platform.

- CustomResourceDefinition: Kratix's own (as its CRDs declare them) and the one each installed Promise's `spec.api`
  generates (domain/kube/crd.py).
- Work and WorkPlacement: from each Promise's and resource's placements and pending groups (domain/kube/works.py).
- Namespace: every namespace an object or Secret is in, `default`, `kratix-platform-system`, and the namespaces the
  API's team tokens name (handed in by the caller: they are the API's configuration, not the platform's state), so
  `kubectl get ns` lists where a team may work before it has created anything there.
- Event: the events each object's workflow keeps (domain/kube/events.py).

Each view returns objects in Platform.get's shape (`_ktx` holding at most the resourceVersion), which the routes turn
into Kubernetes objects like any other (domain/kube/objects.py to_kube).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Iterable, Protocol

from domain.errors import NotFound
from domain.kube.crd import established, generated_crd, kratix_crd, kratix_kinds
from domain.kube.events import REPORTERS, RESOURCE_REPORTER, SELECTABLE_FIELDS, events_of
from domain.kube.works import Owner
from domain.layout import PLATFORM_NAMESPACE
from domain.labels import PROMISE_NAME
from service.platform import Platform

# Kratix's own CRDs were installed with the platform; this process's start is the nearest thing ktx knows of that.
_SERVED_SINCE = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
_CATALOG_KINDS = ("Destination", "GitStateStore", "BucketStateStore")
ALWAYS_NAMESPACES = ("default", PLATFORM_NAMESPACE)


class View(Protocol):
    namespaced: bool
    # Fields `--field-selector` may name beyond metadata.name and metadata.namespace.
    selectable_fields: tuple[str, ...]

    async def list(
        self, platform: Platform, namespace: str | None, *, namespaces: Iterable[str] = ()
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

    async def list(
        self, platform: Platform, namespace: str | None, *, namespaces: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
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

    async def all(self, platform: Platform, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        promises, resources, *catalog = await asyncio.gather(
            platform.list("Promise"), platform.all_resources(), *(platform.list(k) for k in _CATALOG_KINDS)
        )
        found = [e for p in promises for e in events_of(p, False, REPORTERS["Promise"])]
        found += [e for r in resources for e in events_of(r, True, RESOURCE_REPORTER)]
        for kind, entries in zip(_CATALOG_KINDS, catalog):
            found += [e for entry in entries for e in events_of(entry, False, REPORTERS[kind])]
        return found


VIEWS: dict[str, View] = {
    "CustomResourceDefinition": CustomResourceDefinitions(),
    "Work": Works(),
    "WorkPlacement": WorkPlacements(),
    "Namespace": Namespaces(),
    "Event": Events(),
}
