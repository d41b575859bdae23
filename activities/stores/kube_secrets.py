"""The Kubernetes secret provider: each ktx Secret is a v1 Secret in one namespace, so every API and worker pod reads
and writes the same values. The pods' service account needs get, list, create, update and delete on secrets there.

Calls are synchronous, like the file provider's, and bounded by a timeout so an unreachable API server fails the
request instead of hanging it.
"""

from __future__ import annotations

import hashlib
import logging
import re

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from activities.stores.secrets import SecretNotFound, SecretSummary, decode_values, encode_values
from domain.documents import SecretRef

MANAGED_BY = "app.kubernetes.io/managed-by"
NAMESPACE_KEY = "ktx.io/secret-namespace"
NAME_KEY = "ktx.io/secret-name"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Each conflict means another writer changed the Secret since our read; a fresh read settles it, unless they keep at it.
_ATTEMPTS = 5
_TIMEOUT = (5, 30)  # connect, read (seconds)

# The client logs every response body at DEBUG, Secret values included: never log them, whatever the root level.
logging.getLogger("kubernetes.client.rest").setLevel(logging.INFO)


def _hashed(value: str, limit: int) -> str:
    """A readable prefix of `value` and a hash of all of it, within `limit` characters."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    prefix = re.sub(r"[^a-z0-9]+", "-", value.lower())[: limit - len(digest) - 1].strip("-")
    return f"{prefix}-{digest}" if prefix else digest


def object_name(namespace: str, name: str) -> str:
    plain = f"ktx.{namespace}.{name}"
    # Dots separate, not dashes: a namespace has none, so `team-a`/`x` and `team`/`a-x` never share an object. Hashed
    # names start `ktx-`, so they never meet a plain one either.
    if _DNS_LABEL.fullmatch(namespace) and _SUBDOMAIN.fullmatch(name) and len(plain) <= 253:
        return plain
    return _hashed(plain, 253)


def label_value(value: str) -> str:
    return value if len(value) <= 63 and _LABEL_VALUE.fullmatch(value) else _hashed(value, 63)


class KubeSecretStore:
    def __init__(self, api_client: client.ApiClient, namespace: str = "ktx-system"):
        self.api = client.CoreV1Api(api_client)
        self.namespace = namespace

    def _read(self, namespace: str, name: str) -> client.V1Secret | None:
        try:
            return self.api.read_namespaced_secret(
                object_name(namespace, name), self.namespace, _request_timeout=_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def put(self, namespace: str, name: str, data: dict[str, bytes], type_: str = "Opaque") -> str:
        attempts = 0
        while True:
            try:
                return self._put_once(namespace, name, encode_values(data), type_)
            except ApiException as exc:
                attempts += 1
                # 409: created, changed or deleted by another writer since our read; 404: deleted before our replace.
                if exc.status not in (404, 409) or attempts == _ATTEMPTS:
                    raise

    def _put_once(self, namespace: str, name: str, data: dict[str, str], type_: str) -> str:
        labels = {MANAGED_BY: "ktx", NAMESPACE_KEY: label_value(namespace), NAME_KEY: label_value(name)}
        annotations = {NAMESPACE_KEY: namespace, NAME_KEY: name}
        current = self._read(namespace, name)
        if current is None:
            self._create(namespace, name, data, type_, labels, annotations)
            return "created"
        meta = current.metadata
        # Labels and annotations others added (backup tools, reflectors) are kept; ours are restored if edited away.
        labels = {**(meta.labels or {}), **labels}
        annotations = {**(meta.annotations or {}), **annotations}
        if (current.type or "Opaque", current.data or {}, meta.labels or {}, meta.annotations or {}) == (
            type_,
            data,
            labels,
            annotations,
        ):
            return "unchanged"
        if (current.type or "Opaque") != type_:
            # A Secret's type is immutable: replace the object, provided nobody changed it since our read.
            preconditions = client.V1Preconditions(resource_version=meta.resource_version)
            self.api.delete_namespaced_secret(
                meta.name,
                self.namespace,
                body=client.V1DeleteOptions(preconditions=preconditions),
                _request_timeout=_TIMEOUT,
            )
            self._create(namespace, name, data, type_, labels, annotations)
            return "configured"
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=meta.name, labels=labels, annotations=annotations, resource_version=meta.resource_version
            ),
            type=type_,
            data=data,
        )
        self.api.replace_namespaced_secret(meta.name, self.namespace, body, _request_timeout=_TIMEOUT)
        return "configured"

    def _create(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        type_: str,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> None:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=object_name(namespace, name), labels=labels, annotations=annotations),
            type=type_,
            data=data,
        )
        self.api.create_namespaced_secret(self.namespace, body, _request_timeout=_TIMEOUT)

    def get(self, ref: SecretRef) -> dict[str, bytes]:
        found = self._read(ref.namespace, ref.name)
        if found is None:
            raise SecretNotFound(ref)
        return decode_values(found.data)

    def version(self, ref: SecretRef) -> str:
        found = self._read(ref.namespace, ref.name)
        return "missing" if found is None else found.metadata.resource_version

    def delete(self, namespace: str, name: str) -> bool:
        try:
            self.api.delete_namespaced_secret(object_name(namespace, name), self.namespace, _request_timeout=_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def summaries(self) -> list[SecretSummary]:
        # Our name label too: other Secrets ktx manages in this namespace (deployment credentials) are not users'.
        listed = self.api.list_namespaced_secret(
            self.namespace, label_selector=f"{MANAGED_BY}=ktx,{NAME_KEY}", _request_timeout=_TIMEOUT
        )
        found = [
            SecretSummary(
                name=s.metadata.annotations[NAME_KEY],
                namespace=s.metadata.annotations[NAMESPACE_KEY],
                type=s.type or "Opaque",
                keys=sorted(s.data or {}),
            )
            for s in listed.items
            if {NAME_KEY, NAMESPACE_KEY} <= set(s.metadata.annotations or {})
        ]
        return sorted(found, key=lambda s: (s.namespace, s.name))
