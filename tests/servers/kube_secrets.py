"""A stand-in for the Kubernetes API server's core/v1 Secret endpoints, as the `kubernetes` client calls them, with the
documented behaviour (https://kubernetes.io/docs/reference/using-api/api-concepts/) ktx relies on:

- `POST /api/v1/namespaces/{ns}/secrets` creates: 201, or 409 `AlreadyExists` when the name is taken;
- `GET .../secrets/{name}` reads: 200, or 404 `NotFound`;
- `GET .../secrets?labelSelector=` lists a `SecretList` (equality, inequality and existence requirements; items carry
  no kind/apiVersion, as the real server sends them);
- `PUT .../secrets/{name}` replaces: 409 `Conflict` when `metadata.resourceVersion` is stale (optimistic concurrency),
  422 `Invalid` when `type` changes (it is immutable), 404 when missing; an update that changes nothing keeps the
  resourceVersion;
- `DELETE .../secrets/{name}`: a `Status` with `status: Success`, 409 when `preconditions.resourceVersion` is stale;
- every write takes the next resourceVersion from one counter (etcd's revision); every error is a `Status` object;
- names must be DNS-1123 subdomains, labels valid keys and values, data keys valid and values base64 (422 `Invalid`);
- a request without the bearer token gets 401 `Unauthorized`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from tests.servers.kube_api import FakeKubeApiServer, status

_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_MAX_DATA = 1024 * 1024


def not_found(name: str) -> tuple[int, dict[str, Any]]:
    return 404, status(404, "NotFound", f'secrets "{name}" not found', name)


def conflict(name: str, message: str) -> tuple[int, dict[str, Any]]:
    return 409, status(409, "Conflict", f'Operation cannot be fulfilled on secrets "{name}": {message}', name)


class FakeKubeSecrets(FakeKubeApiServer):
    def __init__(self, token: str):
        super().__init__(token)
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.revision = 0
        self.interleaved: list[tuple[str, str, Callable[[], None]]] = []

    def path(self, namespace: str, name: str | None = None) -> str:
        return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")

    def before_next(self, method: str, path: str, action: Callable[[], None]) -> None:
        """Run `action` just before serving the next `method` on `path`: another writer getting in between a client's
        read and its write."""
        self.interleaved.append((method, path, action))

    def write(self, namespace: str, secret: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Create or replace as another client (kubectl, another replica) would, bypassing HTTP (for `before_next`)."""
        name = secret["metadata"]["name"]
        if (namespace, name) in self.secrets:
            return self._replace(namespace, name, secret)
        return self._create(namespace, secret)

    def stored(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.secrets.get((namespace, name)))

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        hook = next((h for h in self.interleaved if h[:2] == (method, path)), None)
        if hook is not None:
            self.interleaved.remove(hook)
            hook[2]()
        matched = _PATH.fullmatch(path)
        if matched is None:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        namespace, name = matched.groups()
        if name is None and method == "GET":
            return self._list(namespace, query.get("labelSelector", ""))
        if name is None and method == "POST":
            return self._create(namespace, body)
        if name is not None and method == "GET":
            found = self.stored(namespace, name)
            return (200, found) if found is not None else not_found(name)
        if name is not None and method == "PUT":
            return self._replace(namespace, name, body)
        if name is not None and method == "DELETE":
            return self._delete(namespace, name, body)
        return 405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _create(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        secret = self._normalised(namespace, body)
        if isinstance(secret, tuple):
            return secret
        name = secret["metadata"]["name"]
        if (namespace, name) in self.secrets:
            return 409, status(409, "AlreadyExists", f'secrets "{name}" already exists', name)
        secret["metadata"].update(
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_revision(),
            creationTimestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self.secrets[namespace, name] = secret
        return 201, copy.deepcopy(secret)

    def _replace(self, namespace: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        secret = self._normalised(namespace, body)
        if isinstance(secret, tuple):
            return secret
        if secret["metadata"]["name"] != name:
            return 400, status(
                400,
                "BadRequest",
                f"the name of the object ({secret['metadata']['name']}) does not match the name on the URL ({name})",
            )
        current = self.secrets.get((namespace, name))
        if current is None:
            return not_found(name)
        wanted = secret["metadata"].get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return conflict(
                name, "the object has been modified; please apply your changes to the latest version and try again"
            )
        if secret["type"] != current["type"]:
            return 422, status(
                422,
                "Invalid",
                f'Secret "{name}" is invalid: type: Invalid value: "{secret["type"]}": field is immutable',
                name,
            )
        for field in ("uid", "resourceVersion", "creationTimestamp"):
            secret["metadata"][field] = current["metadata"][field]
        if secret != current:
            secret["metadata"]["resourceVersion"] = self._next_revision()
            self.secrets[namespace, name] = secret
        return 200, copy.deepcopy(secret)

    def _delete(self, namespace: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        current = self.secrets.get((namespace, name))
        if current is None:
            return not_found(name)
        wanted = (body.get("preconditions") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return conflict(
                name,
                f"Precondition failed: ResourceVersion in precondition: {wanted}, "
                f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}",
            )
        del self.secrets[namespace, name]
        self._next_revision()
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "kind": "secrets", "uid": current["metadata"]["uid"]},
        }

    def _list(self, namespace: str, selector: str) -> tuple[int, dict[str, Any]]:
        requirements = []
        for term in filter(None, (t.strip() for t in selector.split(","))):
            parsed = re.fullmatch(r"!([-A-Za-z0-9_./]+)|([-A-Za-z0-9_./]+)(?:\s*(!=|==|=)\s*([-A-Za-z0-9_.]*))?", term)
            if parsed is None:
                return 400, status(400, "BadRequest", f"unable to parse requirement: {term!r}")
            requirements.append(parsed.groups())
        items = []
        for (ns, _), secret in sorted(self.secrets.items()):
            labels = secret["metadata"].get("labels") or {}
            if ns == namespace and all(_matches(labels, *r) for r in requirements):
                items.append({k: v for k, v in copy.deepcopy(secret).items() if k not in ("kind", "apiVersion")})
        return 200, {
            "kind": "SecretList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self.revision)},
            "items": items,
        }

    def _next_revision(self) -> str:
        self.revision += 1
        return str(self.revision)

    def _normalised(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | tuple[int, dict[str, Any]]:
        """The object as the server would store it (defaults applied), or the refusal the server would send."""
        metadata = dict(body.get("metadata") or {})
        name = str(metadata.get("name") or "")
        if metadata.get("namespace") not in (None, namespace):
            return 400, status(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        problems = []
        if len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
            problems.append(
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            )
        for key, value in (metadata.get("labels") or {}).items():
            prefix, _, label = key.rpartition("/")
            if (
                (prefix and (len(prefix) > 253 or not _SUBDOMAIN.fullmatch(prefix)))
                or len(label) > 63
                or not _LABEL_NAME.fullmatch(label)
            ):
                problems.append(
                    f'metadata.labels: Invalid value: "{key}": name part must consist of alphanumeric characters'
                )
            if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
                problems.append(
                    f'metadata.labels: Invalid value: "{value}": a valid label must be an empty string or consist '
                    "of at most 63 alphanumeric characters, '-', '_' or '.'"
                )
        size = 0
        for key, value in (body.get("data") or {}).items():
            if not _DATA_KEY.fullmatch(key):
                problems.append(
                    f'data[{key}]: Invalid value: "{key}": a valid config key must consist of alphanumeric '
                    "characters, '-', '_' or '.'"
                )
            try:
                size += len(base64.b64decode(value, validate=True))
            except binascii.Error:
                problems.append(f"data[{key}]: Invalid value: illegal base64 data")  # never echo a value
        if size > _MAX_DATA:
            problems.append(f"data: Too long: must have at most {_MAX_DATA} bytes")
        if problems:
            return 422, status(422, "Invalid", f'Secret "{name}" is invalid: ' + ", ".join(problems), name)
        metadata["namespace"] = namespace
        return {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": metadata,
            "type": body.get("type") or "Opaque",
            "data": dict(body.get("data") or {}),
        }


def _matches(
    labels: dict[str, str], absent: str | None, key: str | None, operator: str | None, value: str | None
) -> bool:
    if absent is not None:
        return absent not in labels
    if operator is None:
        return key in labels
    # `!=` also matches objects without the label, as in Kubernetes.
    return (labels.get(key or "") == value) if operator in ("=", "==") else (labels.get(key or "") != value)
