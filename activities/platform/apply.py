"""The platform as a Destination: Kratix documents a pipeline wrote for it are applied back into the platform.

This is what a GitOps agent on the platform cluster does for Kratix's compound Promises; here the platform does it
itself, right after the state-store write, and removes what it applied once the documents are gone.
"""

from __future__ import annotations

from typing import Any, Protocol

import yaml
from pydantic import BaseModel, Field
from temporalio import activity

from activities.artifacts.store import ArtifactStore
from activities.stores.writes import GroupWrite
from domain.catalog import Catalog
from domain.errors import Conflict, InvalidDocument, NotFound

PLATFORM_DESTINATION = "ktx.io/platform-destination"


class AppliedRef(BaseModel):
    kind: str
    name: str
    namespace: str = "default"


class ApplyBackInput(BaseModel):
    labels: dict[str, str] = Field(default_factory=dict)
    write: GroupWrite | None = None
    previous: list[AppliedRef] = Field(default_factory=list)


class ApplyBackResult(BaseModel):
    applied: list[AppliedRef] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


class AppliedObject(Protocol):
    kind: str
    name: str
    namespace: str | None


class PlatformOperations(Protocol):
    """What applying back needs of the platform: the application service (service/platform.py's Platform), which
    the worker hands in, so this activity imports nothing above its layer. It refuses with InvalidDocument, NotFound
    or Conflict (domain/errors.py)."""

    async def catalog(self) -> Catalog: ...

    async def apply(self, document: dict[str, Any]) -> AppliedObject: ...

    async def delete(self, kind: str, name: str, namespace: str = "default") -> Any: ...


class PlatformApplyActivities:
    def __init__(self, platform: PlatformOperations, artifacts: ArtifactStore):
        self.platform = platform
        self.refusals = (InvalidDocument, NotFound, Conflict)
        self.artifacts = artifacts

    def _documents(self, write: GroupWrite | None) -> list[dict[str, Any]]:
        if write is None:
            return []
        texts = [self.artifacts.path(write.artifact, f).read_text() for f in write.files] if write.artifact else []
        texts += list(write.inline.values())
        return [d for text in texts for d in yaml.safe_load_all(text) if isinstance(d, dict)]

    @activity.defn
    async def apply_to_platform(self, input: ApplyBackInput) -> ApplyBackResult:
        """Idempotent: applying an unchanged document changes nothing, deleting a gone object is a no-op."""
        catalog = await self.platform.catalog()
        result = ApplyBackResult()
        for doc in self._documents(input.write):
            served = catalog.find_api(str(doc.get("apiVersion")), str(doc.get("kind")))
            if served is None and doc.get("apiVersion") != "platform.kratix.io/v1alpha1":
                continue  # not a platform kind: it is for a GitOps agent, if any
            metadata = doc.setdefault("metadata", {})
            if served is not None:
                metadata.setdefault("labels", {}).update(
                    {k: v for k, v in input.labels.items() if k not in metadata["labels"]}
                )
            try:
                applied = await self.platform.apply(doc)
            except self.refusals as exc:
                result.errors.append(f"{doc.get('kind')}/{metadata.get('name')}: {exc}")
                continue
            result.applied.append(
                AppliedRef(kind=applied.kind, name=applied.name, namespace=applied.namespace or "default")
            )
        kept = {(r.kind, r.name, r.namespace) for r in result.applied}
        for ref in input.previous:
            if (ref.kind, ref.name, ref.namespace) not in kept:
                try:
                    await self.platform.delete(ref.kind, ref.name, ref.namespace)
                except self.refusals:
                    pass  # already gone, or its Promise is: nothing left to remove
        return result
