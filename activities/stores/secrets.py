"""Secret providers: Kubernetes-shaped Secrets kept on disk, readable by the platform's user only (the embedded
stack), or as Kubernetes Secrets (activities/stores/kube_secrets.py) so API and worker pods share them.

Values enter through the API (never through Temporal), are read by activities when they need credentials, and
leave only as the credentials themselves: workflows carry `secretRef` names, never values.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from domain.documents import SecretRef


class SecretSummary(BaseModel):
    """What the API may show of a Secret: never its values."""

    name: str
    namespace: str
    type: str = "Opaque"
    keys: list[str] = Field(default_factory=list)


class SecretNotFound(LookupError):
    def __init__(self, ref: SecretRef):
        super().__init__(f"Secret {ref.name} not found in namespace {ref.namespace}")


class SecretProvider(Protocol):
    def put(self, namespace: str, name: str, data: dict[str, bytes], type_: str = "Opaque") -> str:
        """What changed, as kubectl apply reports it: "created", "configured" or "unchanged"."""
        ...

    def get(self, ref: SecretRef) -> dict[str, bytes]:
        """Raises SecretNotFound."""
        ...

    def version(self, ref: SecretRef) -> str:
        """Changes whenever the Secret is rewritten, so cached writers are rebuilt with new credentials (no values
        hashed)."""
        ...

    def delete(self, namespace: str, name: str) -> bool: ...

    def summaries(self) -> list[SecretSummary]: ...


def encode_values(data: dict[str, bytes]) -> dict[str, str]:
    """Kubernetes' `data` encoding, sorted so equal Secrets compare and serialise equal."""
    return {k: base64.b64encode(v).decode() for k, v in sorted(data.items())}


def decode_values(data: dict[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


class SecretSettings(Protocol):
    """What choosing a provider reads of the process's settings (worker/settings.py's Settings)."""

    @property
    def secret_provider(self) -> str: ...

    @property
    def secrets_namespace(self) -> str: ...

    @property
    def secrets_dir(self) -> Path: ...


def secret_store_for(settings: SecretSettings) -> SecretProvider:
    """The one place the API and the worker choose their provider, so both always read and write the same Secrets."""
    if settings.secret_provider == "kubernetes":
        # Imported here: the kubernetes client is heavy and only this provider needs it.
        from activities.kube_client import kube_api_client
        from activities.stores.kube_secrets import KubeSecretStore

        return KubeSecretStore(kube_api_client(), settings.secrets_namespace)
    return SecretStore(settings.secrets_dir)


class SecretStore:
    """The file provider."""

    def __init__(self, root: Path):
        self.root = root

    def _file(self, namespace: str, name: str) -> Path:
        return self.root / namespace / f"{name}.json"

    def put(self, namespace: str, name: str, data: dict[str, bytes], type_: str = "Opaque") -> str:
        target = self._file(namespace, name)
        encoded = {"type": type_, "data": encode_values(data)}
        body = json.dumps(encoded, sort_keys=True).encode()
        if target.exists() and target.read_bytes() == body:
            return "unchanged"
        action = "configured" if target.exists() else "created"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        staging = target.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        staging.replace(target)
        return action

    def get(self, ref: SecretRef) -> dict[str, bytes]:
        target = self._file(ref.namespace, ref.name)
        if not target.exists():
            raise SecretNotFound(ref)
        return decode_values(json.loads(target.read_bytes())["data"])

    def version(self, ref: SecretRef) -> str:
        try:
            stat = self._file(ref.namespace, ref.name).stat()
        except FileNotFoundError:
            return "missing"
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def delete(self, namespace: str, name: str) -> bool:
        target = self._file(namespace, name)
        if not target.exists():
            return False
        target.unlink()
        return True

    def summaries(self) -> list[SecretSummary]:
        found = []
        for path in sorted(self.root.glob("*/*.json")) if self.root.exists() else []:
            raw = json.loads(path.read_bytes())
            found.append(
                SecretSummary(
                    name=path.stem, namespace=path.parent.name, type=raw.get("type", "Opaque"), keys=sorted(raw["data"])
                )
            )
        return found
