"""The Kubernetes API's shapes, pure: the objects ktx serves as a Kubernetes API server, their discovery and OpenAPI
documents, selectors, patches, tables and access rules. Nothing here talks to Temporal or HTTP.

The package also holds the Kubernetes-shaped base models every document kind builds on (`KubeModel`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields kept (Kubernetes objects grow fields)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StrictKubeModel(KubeModel):
    # Kratix decodes Pipelines strictly: an unknown field is an error, not silently dropped.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SecretRef(KubeModel):
    name: str
    namespace: str = "default"
