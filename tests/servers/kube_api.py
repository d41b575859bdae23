"""What every Kubernetes API stand-in shares: errors as `Status` objects, bearer-token auth and a kubeconfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.servers.saas import FakeApi


def status(code: int, reason: str, message: str, name: str | None = None, kind: str = "secrets") -> dict[str, Any]:
    """A failure `Status`; `kind` is the resource's plural (`details.kind`), as the API server fills it."""
    found: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name is not None:
        found["details"] = {"name": name, "kind": kind}
    return found


class FakeKubeApiServer(FakeApi):
    """What every Kubernetes API stand-in shares: bearer-token auth, 401 as a `Status`, and a kubeconfig pointing at
    it."""

    # The apiserver reads a body without Content-Type as its first supported media type, JSON.
    untyped_bodies_are_json = True

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Any:
        return status(401, "Unauthorized", "Unauthorized")

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "ktx", "user": {"token": self.token}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ktx"}}],
                }
            )
        )
        return path
