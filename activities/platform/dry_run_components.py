"""The component requests in a compound request's dry-run output, which its DryRun follows with component DryRuns
(Kratix's compound-dry-run preview): found by their label, matched to the installed Promise serving their kind, and
admitted by its API as the platform would admit them. Only reads.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client

from activities.artifacts.dry_run_diff import OutputFiles, output_texts
from activities.artifacts.store import ArtifactStore
from activities.platform.catalog import fetch_catalog
from domain import dry_run as dr
from domain.errors import InvalidDocument
from domain.labels import PROMISE_NAME
from domain.validation import validate_resource_request


class FindComponentsInput(BaseModel):
    outputs: list[OutputFiles] = Field(default_factory=list)
    # Where a component request that names no namespace goes (the DryRun's, as Kratix has it).
    namespace: str


class ComponentRequest(BaseModel):
    """A component request found in a dry run's output, validated and defaulted by its Promise's API as the platform
    would admit it; `error` says why it could not be (the component then fails without running)."""

    promise: str
    kind: str
    name: str
    namespace: str
    request: dict = Field(default_factory=dict)
    error: str = ""


class FindComponentsResult(BaseModel):
    components: list[ComponentRequest] = Field(default_factory=list)
    # Component requests past MAX_COMPONENTS, not followed.
    more: int = 0


class DryRunComponentActivities:
    def __init__(self, client: Client, artifacts: ArtifactStore):
        self.client = client
        self.artifacts = artifacts

    @activity.defn
    async def find_components(self, input: FindComponentsInput) -> FindComponentsResult:
        """Only reads. A component request whose kind no installed Promise serves is skipped, as Kratix skips it:
        it still shows in the diff as a file."""
        files = {
            f"{o.pipeline}/{path}": text
            for o in input.outputs
            for path, text in output_texts(self.artifacts, o).items()
        }
        catalog = await fetch_catalog(self.client)
        result = FindComponentsResult()
        seen: set[tuple[str, str, str]] = set()
        for doc in dr.component_documents(files):
            api = catalog.find_api(str(doc.get("apiVersion")), str(doc.get("kind")))
            if api is None:
                continue
            metadata = doc["metadata"]
            namespace = metadata.get("namespace") or input.namespace
            key = (api.promise, namespace, metadata["name"])
            if key in seen:
                continue
            seen.add(key)
            if len(result.components) >= dr.MAX_COMPONENTS:
                result.more += 1
                continue
            found = ComponentRequest(promise=api.promise, kind=api.kind, name=metadata["name"], namespace=namespace)
            proposed = {**doc, "metadata": {**metadata, "namespace": namespace}}
            try:
                request = validate_resource_request(api, proposed).to_doc()
            except InvalidDocument as exc:
                found.error = f"the component request is invalid: {exc}"[:4096]
                result.components.append(found)
                continue
            labels = request["metadata"].get("labels") or {}
            request["metadata"]["labels"] = {**labels, PROMISE_NAME: api.promise}
            found.request = request
            result.components.append(found)
        return result
