"""Builders for the Kratix documents the lifecycle tests apply, and readers of the state they reach (waiting:
tests/waiting.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from service.platform import Platform
from tests.waiting import eventually  # noqa: F401  (re-exported: the tests import it with the builders)

BEHAVE = "localhost/ktx-test/behave:v0.1.0"
GROUP = "test.ktx.io"


def pipeline(name: str, backoff_limit: int | None = None, **env: Any) -> dict[str, Any]:
    """One `behave` container; env values that are not strings are written as YAML."""
    values = [{"name": k, "value": v if isinstance(v, str) else yaml.safe_dump(v)} for k, v in env.items()]
    spec: dict[str, Any] = {"containers": [{"name": f"{name}-c", "image": BEHAVE, "env": values}]}
    if backoff_limit is not None:
        spec["jobOptions"] = {"backoffLimit": backoff_limit}
    return {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": name}, "spec": spec}


def promise(
    name: str,
    kind: str | None = None,
    *,
    configure: list | None = None,
    delete: list | None = None,
    promise_configure: list | None = None,
    promise_delete: list | None = None,
    selectors: dict | None = None,
    required: list | None = None,
    labels: dict | None = None,
    properties: dict | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "workflows": {
            "resource": {"configure": configure or [], "delete": delete or []},
            "promise": {"configure": promise_configure or [], "delete": promise_delete or []},
        }
    }
    if kind:
        plural = kind.lower() + "s"
        spec["api"] = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": properties or {},
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    if selectors:
        spec["destinationSelectors"] = [{"matchLabels": selectors}]
    if required:
        spec["requiredPromises"] = required
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def resource(
    kind: str, name: str, spec: dict | None = None, labels: dict | None = None, namespace: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec or {},
    }


def git_store_and_destinations(remote: Path, destinations: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    docs = [
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "GitStateStore",
            "metadata": {"name": "default"},
            "spec": {"url": str(remote), "branch": "main"},
        }
    ]
    docs += [
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Destination",
            "metadata": {"name": name, "labels": labels},
            "spec": {"path": name, "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
        }
        for name, labels in destinations.items()
    ]
    return docs


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return (obj.get("status") or {}).get("kratix", {}).get("workflows", {}).get("pipelines", [])


def phases(obj: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p.get("phase", "") for p in _entries(obj)}


def pipeline_entry(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next((p for p in _entries(obj) if p["name"] == name), {})


def runs(obj: dict[str, Any], pipeline: str, action: str = "configure") -> int:
    return obj["_ktx"]["runCounts"].get(f"{action}/{pipeline}", 0)


async def get(platform: Platform, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
    return await platform.get(kind, name, namespace)
