"""The OpenAPI v3 documents kubectl reads for `explain` and to learn that the server validates fields: what its
templates and verifiers look up (kubectl pkg/explain/v2/templates/plaintext.tmpl, cli-runtime
query_param_verifier_v3.go) is there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.kube import openapi
from domain.kube.crd import STATUS_SCHEMA


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    subresources: tuple[str, ...] = ("status",)
    schema: dict[str, Any] | None = None
    promise: str = ""


REDIS = Resource(
    "marketplace.kratix.io",
    "v1alpha1",
    "Redis",
    "redis",
    True,
    schema={
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "string", "description": "How big."}}}
        },
    },
    promise="redis",
)
PROMISE = Resource("platform.kratix.io", "v1alpha1", "Promise", "promises", False)
WORK = Resource(
    "platform.kratix.io", "v1alpha1", "Work", "works", True, verbs=("get", "list", "watch"), subresources=()
)
EVENT = Resource("", "v1", "Event", "events", True, verbs=("get", "list", "watch"), subresources=())


def resolve(document: dict, ref: str) -> dict:
    return document["components"]["schemas"][ref.removeprefix("#/components/schemas/")]


def test_index_names_each_group_version_with_a_hash_of_its_document():
    docs = openapi.documents([REDIS, PROMISE, WORK, EVENT])
    assert set(docs) == {"apis/marketplace.kratix.io/v1alpha1", "apis/platform.kratix.io/v1alpha1", "api/v1"}
    index = openapi.index(docs)
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    assert url == f"/openapi/v3/api/v1?hash={openapi.document_hash(docs['api/v1'])}"
    changed = openapi.documents([REDIS.__class__(**{**REDIS.__dict__, "schema": {"type": "object"}})])
    assert (
        openapi.index(changed)["paths"]["apis/marketplace.kratix.io/v1alpha1"]
        != index["paths"]["apis/marketplace.kratix.io/v1alpha1"]
    )


def test_explain_finds_the_kind_through_its_path_and_component():
    doc = openapi.documents([REDIS])["apis/marketplace.kratix.io/v1alpha1"]
    gvk = {"group": "marketplace.kratix.io", "kind": "Redis", "version": "v1alpha1"}
    path = doc["paths"]["/apis/marketplace.kratix.io/v1alpha1/namespaces/{namespace}/redis/{name}"]
    assert path["get"]["x-kubernetes-group-version-kind"] == gvk
    (schema,) = [
        s for s in doc["components"]["schemas"].values() if gvk in s.get("x-kubernetes-group-version-kind", [])
    ]
    assert schema["properties"]["spec"]["properties"]["size"]["description"] == "How big."
    assert schema["properties"]["status"] == STATUS_SCHEMA, "Kratix's status schema, as its generated CRD has it"
    meta = resolve(doc, schema["properties"]["metadata"]["allOf"][0]["$ref"])
    assert "labels" in meta["properties"]
    listed = doc["paths"]["/apis/marketplace.kratix.io/v1alpha1/redis"]["get"]
    assert listed["x-kubernetes-action"] == "list"


def test_patch_declares_field_validation_so_kubectl_validates_on_the_server():
    doc = openapi.documents([PROMISE])["apis/platform.kratix.io/v1alpha1"]
    patch = doc["paths"]["/apis/platform.kratix.io/v1alpha1/promises/{name}"]["patch"]
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][2].items()
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Promise"
    promise = doc["components"]["schemas"]["io.kratix.platform.v1alpha1.Promise"]
    assert "destinationSelectors" in promise["properties"]["spec"]["properties"], "Kratix's own CRD schema"


def test_read_only_kinds_have_no_write_operations_and_core_kinds_keep_kubernetes_names():
    docs = openapi.documents([WORK, EVENT])
    work = docs["apis/platform.kratix.io/v1alpha1"]["paths"]
    assert set(work["/apis/platform.kratix.io/v1alpha1/namespaces/{namespace}/works/{name}"]) == {"get"}
    assert set(work["/apis/platform.kratix.io/v1alpha1/namespaces/{namespace}/works"]) == {"get"}
    core = docs["api/v1"]
    assert "/api/v1/namespaces/{namespace}/events" in core["paths"]
    event = core["components"]["schemas"]["io.k8s.api.core.v1.Event"]
    assert "involvedObject" in event["properties"]
