"""A stand-in for the Kubernetes API server's core/v1 ServiceAccount and rbac.authorization.k8s.io/v1 Role,
RoleBinding, ClusterRole and ClusterRoleBinding endpoints, served by tests/servers/kube_jobs.py's FakeKube. Shapes
follow the API reference (https://kubernetes.io/docs/reference/kubernetes-api/authorization-resources/):

- `POST .../namespaces/{ns}/serviceaccounts|roles|rolebindings`, `POST .../clusterroles|clusterrolebindings`: 201, 409
  `AlreadyExists` when the name is taken; `GET`, `PUT` and `DELETE` on `.../{name}` (404 `NotFound`);
- `GET` on a collection lists it (`...List`) with `labelSelector` equality requirements; ServiceAccounts, Roles and
  RoleBindings also across every namespace (`/api/v1/serviceaccounts`, `/apis/rbac.authorization.k8s.io/v1/roles`,
  `.../rolebindings`);
- every object written is checked against Kubernetes' OpenAPI schema (kubernetes-validate, strict: an unknown field
  is refused), and its namespace against the path's: 422 `Invalid` otherwise;
- a binding's `roleRef` cannot change (422 `Invalid`, "cannot change roleRef"), as the API server's validation says;
- every object gets `uid`, `resourceVersion` and `creationTimestamp`.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import latest_version

from tests.servers.kube_api import status

_NAMESPACED = re.compile(
    r"/(?:api/v1|apis/rbac\.authorization\.k8s\.io/v1)/namespaces/([^/]+)/(serviceaccounts|roles|rolebindings)"
    r"(?:/([^/]+))?"
)
_CLUSTER = re.compile(
    r"/apis/rbac\.authorization\.k8s\.io/v1/(clusterroles|clusterrolebindings|roles|rolebindings)(?:/([^/]+))?"
)
KINDS = {
    "serviceaccounts": ("ServiceAccount", "v1"),
    "roles": ("Role", "rbac.authorization.k8s.io/v1"),
    "rolebindings": ("RoleBinding", "rbac.authorization.k8s.io/v1"),
    "clusterroles": ("ClusterRole", "rbac.authorization.k8s.io/v1"),
    "clusterrolebindings": ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
}
_NAMESPACED_KINDS = ("serviceaccounts", "roles", "rolebindings")


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _kind_name(plural: str) -> str:
    """What the API server calls the resource in its messages (`roles.rbac.authorization.k8s.io`)."""
    return plural if plural == "serviceaccounts" else f"{plural}.rbac.authorization.k8s.io"


class FakeRbac:
    def __init__(self, now: Any):
        self.now = now
        # (plural, namespace or "", name) -> object
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.revision = 0
        self.writes: list[tuple[str, str, str, str]] = []  # (method, plural, namespace, name)

    def has_service_account(self, namespace: str, name: str) -> bool:
        # Kubernetes makes `default` in every namespace.
        return name == "default" or ("serviceaccounts", namespace, name) in self.objects

    def stored(self, plural: str, namespace: str = "") -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objects.items()) if p == plural and ns == namespace]

    def get(self, plural: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        found = self.objects.get((plural, namespace, name))
        return copy.deepcopy(found) if found else None

    def put(self, plural: str, obj: dict[str, Any]) -> None:
        """Stores an object as someone other than the runner made it (a platform team's ServiceAccount)."""
        meta = obj["metadata"]
        self.objects[plural, meta.get("namespace", ""), meta["name"]] = self._stamped(copy.deepcopy(obj))

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any] | None:
        if match := _NAMESPACED.fullmatch(path):
            namespace, plural, name = match.groups()
            if (plural == "serviceaccounts") != path.startswith("/api/v1/"):
                return None
        elif path == "/api/v1/serviceaccounts":
            if method != "GET":
                return None
            return self._list("serviceaccounts", None, query.get("labelSelector", ""))
        elif match := _CLUSTER.fullmatch(path):
            plural, name = match.groups()
            namespace = ""
            if plural in _NAMESPACED_KINDS:
                if method != "GET" or name is not None:
                    return None
                return self._list(plural, None, query.get("labelSelector", ""))
        else:
            return None
        if name is None:
            if method == "GET":
                return self._list(plural, namespace, query.get("labelSelector", ""))
            if method == "POST":
                return self._create(plural, namespace, body)
            return 405, status(405, "MethodNotAllowed", f"{method} is not supported on {plural}")
        key = (plural, namespace, name)
        current = self.objects.get(key)
        if current is None:
            return 404, status(404, "NotFound", f'{_kind_name(plural)} "{name}" not found', name, kind=plural)
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "PUT":
            return self._replace(plural, namespace, name, current, body)
        if method == "DELETE":
            del self.objects[key]
            self.writes.append(("DELETE", plural, namespace, name))
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported on {plural}")

    def _list(self, plural: str, namespace: str | None, selector: str) -> tuple[int, Any]:
        kind, api_version = KINDS[plural]
        items = [
            copy.deepcopy(o)
            for (p, ns, _), o in sorted(self.objects.items())
            if p == plural
            and (namespace is None or ns == namespace)
            and _matches(o["metadata"].get("labels") or {}, selector)
        ]
        return 200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": {}, "items": items}

    def _invalid(self, plural: str, namespace: str, body: Any) -> tuple[int, Any] | None:
        kind, api_version = KINDS[plural]
        name = (body.get("metadata") or {}).get("name") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("kind") != kind or body.get("apiVersion") != api_version:
            return 400, status(400, "BadRequest", f"the body is not a {api_version} {kind}")
        if (body["metadata"].get("namespace") or namespace) != namespace:
            return 400, status(400, "BadRequest", "the namespace of the provided object does not match the request's")
        try:
            kubernetes_validate.validate(body, latest_version(), strict=True)
        except kubernetes_validate.ValidationError as exc:
            return 422, status(422, "Invalid", f'{kind} "{name}" is invalid: {exc.message}', name, kind=plural)
        return None

    def _stamped(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.revision += 1
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", self.now())
        meta["resourceVersion"] = str(self.revision)
        return obj

    def _create(self, plural: str, namespace: str, body: Any) -> tuple[int, Any]:
        if refused := self._invalid(plural, namespace, body):
            return refused
        name = body["metadata"]["name"]
        if (plural, namespace, name) in self.objects:
            return 409, status(409, "AlreadyExists", f'{_kind_name(plural)} "{name}" already exists', name, kind=plural)
        obj = copy.deepcopy(body)
        if namespace:
            obj["metadata"]["namespace"] = namespace
        obj["metadata"].pop("resourceVersion", None)
        self.objects[plural, namespace, name] = self._stamped(obj)
        self.writes.append(("POST", plural, namespace, name))
        return 201, copy.deepcopy(obj)

    def _replace(self, plural: str, namespace: str, name: str, current: dict[str, Any], body: Any) -> tuple[int, Any]:
        if refused := self._invalid(plural, namespace, body):
            return refused
        if body["metadata"]["name"] != name:
            return 400, status(400, "BadRequest", "the name of the object does not match the name on the URL")
        if "roleRef" in current and body.get("roleRef") != current["roleRef"]:
            return 422, status(
                422,
                "Invalid",
                f'{KINDS[plural][0]} "{name}" is invalid: roleRef: Invalid value: cannot change roleRef',
                name,
                kind=plural,
            )
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            namespace=namespace or None,
            uid=current["metadata"]["uid"],
            creationTimestamp=current["metadata"]["creationTimestamp"],
        )
        if not namespace:
            obj["metadata"].pop("namespace")
        self.objects[plural, namespace, name] = self._stamped(obj)
        self.writes.append(("PUT", plural, namespace, name))
        return 200, copy.deepcopy(obj)
