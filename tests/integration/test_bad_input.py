"""Bad input through the HTTP API: each refused with a clear 4xx naming the field and reason, nothing accepted lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import yaml

from service.platform import DEFAULT_MAX_DOCUMENT, Platform
from tests.integration.test_health_metrics import api_for
from tests.kratix_documents import GROUP, condition, eventually, git_store_and_destinations, promise, resource
from tests.unit.test_input_limits import billion_laughs

LIMIT = 64 * 1024
DOCUMENT_LIMIT = 16 * 1024
ACCEPTED = [
    ("promise", "widgets", None),
    ("widget", "first", "default"),
    ("destination", "dev", None),
    ("gitstatestore", "default", None),
]


@pytest_asyncio.fixture
async def api(platform: Platform, git_remote: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a small body limit, a store, a Destination, a pipeline-less Promise and one of its resources."""
    async with api_for(platform, tmp_path, api_max_body=LIMIT, api_max_document=DOCUMENT_LIMIT) as (_, http):
        docs = [
            *git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}),
            promise("widgets", "Widget"),
            resource("Widget", "first", {"size": "s"}),
        ]
        for doc in docs:  # one by one: the resource needs the Promise's API registered first
            response = await http.post("/apply", content=yaml.safe_dump(doc))
            assert response.status_code == 200, response.text
        yield http


async def snapshot(http: httpx.AsyncClient) -> dict[tuple[str, str], dict]:
    found = {}
    for kind, name, namespace in ACCEPTED:
        response = await http.get(f"/objects/{kind}/{name}", params={"namespace": namespace} if namespace else {})
        assert response.status_code == 200, response.text
        obj = response.json()
        found[(kind, name)] = {"spec": obj.get("spec"), "labels": obj["metadata"].get("labels")}
    return found


async def widgets(http: httpx.AsyncClient, *names: str) -> dict[str, int]:
    """Whether each exists, read one by one: a list may lag behind a workflow started a moment ago."""
    return {
        name: (await http.get(f"/objects/widget/{name}", params={"namespace": "default"})).status_code for name in names
    }


async def refused(http: httpx.AsyncClient, before: dict, status: int, body: str | bytes, *phrases: str) -> dict:
    response = await http.post("/apply", content=body)
    assert response.status_code == status, response.text
    answer = response.json()
    for phrase in phrases:
        assert phrase in response.text, (phrase, answer)
    assert await snapshot(http) == before, "a refusal changed an accepted object"
    return answer


async def test_oversized_bodies_are_refused_before_parsing(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    big = yaml.safe_dump(resource("Widget", "first", {"size": "x" * LIMIT}))
    answer = await refused(api, before, 413, big, f"over the limit of {LIMIT} bytes", "64 KiB", "KTX_API_MAX_BODY")
    assert answer["errors"] == []

    async def chunked():  # no Content-Length: counted as it arrives
        for _ in range(LIMIT // 4096 + 2):
            yield b"#" * 4096

    response = await api.post("/apply", content=chunked())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and f"over the limit of {LIMIT} bytes" in response.json()["message"]

    # Routes whose JSON body FastAPI parses get the same 413, not "error parsing the body".
    response = await api.post(
        "/objects/widget/first/labels",
        content=b'{"set": {"a": "' + b"b" * LIMIT + b'"}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert await snapshot(api) == before


async def test_alias_bomb_is_refused_at_once(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    started = time.perf_counter()
    await refused(api, before, 400, billion_laughs(), "YAML aliases expand to", "aliases may add at most 100000 nodes")
    assert time.perf_counter() - started < 2  # the parse itself takes milliseconds (unit test); the rest is reads


@pytest.mark.parametrize(
    "body, phrases",
    [
        ("kind: Widget\nmetadata: {name: [oops\n", ["malformed YAML"]),
        ("- just\n- a list\n", ["expected a mapping, got list"]),
        ("metadata: {name: x}\n", ["missing apiVersion, kind"]),
        ("", ["no documents in the request body"]),
        ("apiVersion: test.ktx.io/v1\nkind: Widget\nx: " + "[" * 200 + "]" * 200, ["nested deeper than 100 levels"]),
        (
            "apiVersion: test.ktx.io/v1\nkind: Widget\nmetadata: {name: first}\nspec: {data: !!binary aGk=}\n",
            ["has no JSON equivalent"],
        ),
    ],
)
async def test_malformed_documents_are_refused_400(api: httpx.AsyncClient, body: str, phrases: list[str]) -> None:
    answer = await refused(api, await snapshot(api), 400, body, *phrases)
    assert answer["document"] is None


async def test_wrong_api_version_or_kind(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    stale = promise("widgets", "Widget", labels={"changed": "yes"})
    stale["apiVersion"] = "platform.kratix.io/v1beta1"
    answer = await refused(api, before, 422, yaml.safe_dump(stale), "Unsupported value: 'platform.kratix.io/v1beta1'")
    assert answer["errors"] == [
        {
            "field": "apiVersion",
            "reason": "Unsupported value: 'platform.kratix.io/v1beta1': "
            "Promise is served as 'platform.kratix.io/v1alpha1'",
        }
    ]
    secret = {"apiVersion": "v2", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    await refused(api, before, 422, yaml.safe_dump(secret), '"field":"apiVersion"', "Secret is served as 'v1'")
    other_version = resource("Widget", "first", {"size": "changed"})
    other_version["apiVersion"] = f"{GROUP}/v2"
    answer = await refused(api, before, 422, yaml.safe_dump(other_version))
    assert answer["errors"] == [
        {"field": "apiVersion", "reason": f"Unsupported value: '{GROUP}/v2': supported values: '{GROUP}/v1'"}
    ]


async def test_kind_of_a_promise_not_installed_is_404(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    answer = await refused(
        api,
        before,
        404,
        yaml.safe_dump(resource("Gadget", "g")),
        f"no Promise serves kind 'Gadget' in '{GROUP}/v1'; is the Promise installed?",
    )
    assert answer["document"] == 0
    for path in ("/objects/gadget", "/objects/gadget/g"):
        response = await api.get(path)
        assert response.status_code == 404 and "the server doesn't have a resource type 'gadget'" in response.text


@pytest.mark.parametrize(
    "doc, field, reason",
    [
        (resource("Widget", "Bad_Name"), "metadata.name", "RFC 1123 subdomain"),
        (resource("Widget", "w" * 64), "metadata.name", "must be no more than 63 characters"),
        (resource("Widget", "ok", namespace="team.a"), "metadata.namespace", "RFC 1123 label"),
        (resource("Widget", "ok", labels={"n": 1}), "metadata.labels['n']", "a label value must be a string"),
        # Labels and annotation keys by Kubernetes' grammar, on every kind: they become selector terms and search keys.
        (resource("Widget", "ok", labels={"team/a/b": "x"}), "metadata.labels['team/a/b']", "Invalid value"),
        (resource("Widget", "ok", labels={"team": "-x"}), "metadata.labels['team']", "a valid label must be"),
        (resource("Widget", "ok", labels={"t" * 64: "x"}), f"metadata.labels['{'t' * 64}']", "Invalid value"),
        (
            {**resource("Widget", "ok"), "metadata": {"name": "ok", "annotations": {"a b": "x"}}},
            "metadata.annotations['a b']",
            "Invalid value",
        ),
        (
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "Destination",
                "metadata": {"name": "dev2", "labels": {"env": "dev prod"}},
                "spec": {"path": "d2", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
            },
            "metadata.labels['env']",
            "a valid label must be",
        ),
        ({**resource("Widget", "ok"), "metadata": {"name": 7}}, "metadata.name", "must be of type string"),
        ({**resource("Widget", "ok"), "metadata": "ok"}, "metadata", "must be of type object"),
        (promise("Widgets", "Widget"), "metadata.name", "RFC 1123 subdomain"),
        (promise("p" * 64), "metadata.name", "must be no more than 63 characters"),
        (
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "Destination",
                "metadata": {"name": "Dev"},
                "spec": {"path": "d", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
            },
            "metadata.name",
            "RFC 1123",
        ),
        (
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "GitStateStore",
                "metadata": {"name": "-x"},
                "spec": {"url": "file:///nowhere"},
            },
            "metadata.name",
            "RFC 1123 subdomain",
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a..b"}, "stringData": {"k": "v"}},
            "metadata.name",
            "RFC 1123 subdomain",
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "NS"}},
            "metadata.namespace",
            "RFC 1123 label",
        ),
        (
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "HealthRecord",
                "metadata": {"name": "h"},
                "data": {"promiseRef": {"name": "widgets"}, "resourceRef": {"name": "first/../x"}, "state": "healthy"},
            },
            "data.resourceRef.name",
            "RFC 1123 subdomain",
        ),
    ],
)
async def test_names_that_are_not_dns_1123_are_refused_422(
    api: httpx.AsyncClient, doc: dict, field: str, reason: str
) -> None:
    answer = await refused(api, await snapshot(api), 422, yaml.safe_dump(doc), "is invalid")
    assert answer["document"] == 0
    assert any(e["field"] == field and reason in e["reason"] for e in answer["errors"]), answer["errors"]


async def test_refusal_keeps_earlier_documents_and_starts_none_after(api: httpx.AsyncClient) -> None:
    body = yaml.safe_dump_all(
        [resource("Widget", "second"), resource("Widget", "Bad_Name"), resource("Widget", "third")]
    )
    answer = await refused(api, await snapshot(api), 422, body, "metadata.name")
    assert answer["document"] == 1
    assert await widgets(api, "second", "third") == {"second": 200, "third": 404}


async def test_a_document_over_the_per_document_limit_is_refused_413_with_its_index(api: httpx.AsyncClient) -> None:
    """The body fits, one document does not: it would not fit in Temporal's payloads."""
    big = resource("Widget", "big", {"blob": "x" * DOCUMENT_LIMIT})
    body = yaml.safe_dump_all([resource("Widget", "small"), big, resource("Widget", "after")])
    assert len(body) < LIMIT
    answer = await refused(
        api,
        await snapshot(api),
        413,
        body,
        f"over the limit of {DOCUMENT_LIMIT} bytes per document",
        "KTX_API_MAX_DOCUMENT",
    )
    assert answer["document"] == 1
    assert await widgets(api, "small", "big", "after") == {"small": 200, "big": 404, "after": 404}


@pytest.mark.parametrize("params", [{"namespace": 'x" OR KtxKind != "'}, {"namespace": "A"}, {"promise": 'p"'}])
async def test_query_names_that_cannot_exist_are_refused_422(api: httpx.AsyncClient, params: dict) -> None:
    # They would otherwise be spliced into a Temporal visibility query.
    response = await api.get("/objects/widget", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", next(iter(params))]
    assert (await api.get("/objects/widget/first", params={"namespace": "Default"})).status_code == 422


async def test_a_document_just_under_the_default_limit_lives_through_temporal(
    platform: Platform, git_remote: Path
) -> None:
    """The default per-document limit is safe: such a resource is stored, reconciled and read back whole."""
    for doc in [*git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}), promise("widgets", "Widget")]:
        await platform.apply(doc)
    await platform.wait_condition("promise", "widgets", "default", "Available", timeout=60)
    blob = "x" * (DEFAULT_MAX_DOCUMENT - 4096)
    await platform.apply(resource("Widget", "large", {"blob": blob}))
    await platform.wait_condition("widget", "large", "default", "Reconciled", timeout=120)
    await platform.apply(resource("Widget", "large", {"blob": blob, "size": "m"}))  # and updated once more
    # Reconciled is still true from the first run: observedGeneration 2 says the update itself was reconciled.
    got = await eventually(
        lambda: platform.get("widget", "large"),
        lambda o: o["status"].get("observedGeneration") == 2 and condition(o, "Reconciled").get("status") == "True",
        timeout=120,
        what="the updated widget reconciled",
    )
    assert got["spec"] == {"blob": blob, "size": "m"}
