"""A hostile client at the HTTP API: bodies that are not text, Promise schemas that would break every request, kinds
that would break a visibility query, and Temporal going away. Each answer is a 4xx naming the problem (503 for
Temporal), quickly, and nothing accepted changes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import yaml

from api.app import create_app
from tests.integration.test_bad_input import api, refused, snapshot  # noqa: F401  (api is a fixture)
from tests.integration.test_faults import DevServer, namespace_client
from tests.kratix_documents import promise, resource
from worker.settings import Settings

HEAD = "apiVersion: test.ktx.io/v1\nkind: Widget\nmetadata: {name: first}\n"


@pytest.mark.parametrize(
    "body, phrase",
    [
        ((HEAD + "spec: {size: s}\n").encode("utf-16"), "the body is UTF-16"),
        (HEAD.encode() + b"spec: {size: \xff}\n", "the body is not UTF-8: byte 0xff"),
        (HEAD.encode() + b'spec: {size: "a\x00b"}\n', "unacceptable character #x0000"),
        (HEAD.encode() + b"spec: {size: a\x01b}\n", "unacceptable character #x0001"),
        ((HEAD + "spec: {size: " + "9" * 4301 + "}\n").encode(), "integer too large: more than 4300 digits"),
        (
            (
                '{"apiVersion": "test.ktx.io/v1", "kind": "Widget", "metadata": {"name": "first"}, '
                '"spec": {"size": "\\ud800"}}'
            ).encode(),
            "lone UTF-16 surrogate",
        ),
        ((HEAD + "spec: {size: .inf}\n").encode(), "has no JSON equivalent"),
        ((HEAD + "spec:\n  size: s\n  size: m\n").encode(), "duplicate key 'size' in a mapping"),
        ((HEAD + "spec:\n  size: s\n  size: m\n").encode(), "line 6"),
    ],
)
async def test_bodies_that_are_not_json_text_are_refused_400(api: httpx.AsyncClient, body: bytes, phrase: str) -> None:  # noqa: F811
    answer = await refused(api, await snapshot(api), 400, body, phrase)
    assert answer["document"] is None


@pytest.mark.parametrize(
    "schema, field, reason",
    [
        ({"type": "banana"}, "properties.size.type", "Unsupported value: 'banana'"),
        ({"type": "string", "pattern": "(?<=x)y"}, "properties.size.pattern", "not an RE2 regular expression"),
        ({"type": "string", "minLength": "x"}, "properties.size.minLength", "non-negative integer"),
        ({"type": "string", "enum": 5}, "properties.size.enum", "must be of type array"),
        ({"type": "integer", "multipleOf": 0}, "properties.size.multipleOf", "greater than zero"),
        ({"type": "object", "properties": ["a"]}, "properties.size.properties", "must be a map"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"},
            "properties.size.required",
            "list",
        ),
    ],
)
async def test_a_promise_whose_schema_would_break_its_requests_is_refused_422(
    api: httpx.AsyncClient,  # noqa: F811  (the fixture)
    schema: dict,
    field: str,
    reason: str,
) -> None:
    doc = promise("widgets", "Widget", properties={"size": schema})
    answer = await refused(api, await snapshot(api), 422, yaml.safe_dump(doc))
    expected = f"spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.{field}"
    assert any(e["field"] == expected and reason in e["reason"] for e in answer["errors"]), answer["errors"]
    # The installed Promise still serves and validates as before.
    response = await api.post("/apply", content=yaml.safe_dump(resource("Widget", "second", {"size": "m"})))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "names, field",
    [
        ({"kind": "gadget", "plural": "gadgets"}, "spec.api.spec.names.kind"),
        ({"kind": 'Ev"il', "plural": "evils"}, "spec.api.spec.names.kind"),
        ({"kind": "Gadget", "plural": "gad/gets"}, "spec.api.spec.names.plural"),
    ],
)
async def test_a_promise_with_names_kubernetes_refuses_is_422(api: httpx.AsyncClient, names: dict, field: str) -> None:  # noqa: F811
    doc = promise("gadgets", "Gadget")
    doc["spec"]["api"]["spec"]["names"] = {**names, "singular": "gadget"}
    doc["spec"]["api"]["metadata"]["name"] = f"{names['plural']}.test.ktx.io"
    answer = await refused(api, await snapshot(api), 422, yaml.safe_dump(doc))
    assert any(e["field"] == field for e in answer["errors"]), answer["errors"]
    assert (await api.get("/objects/promise/gadgets")).status_code == 404


async def test_a_catastrophic_pattern_neither_stalls_nor_lets_through(api: httpx.AsyncClient) -> None:  # noqa: F811
    doc = promise("patterns", "Pattern", properties={"name": {"type": "string", "pattern": "^(a+)+$"}})
    assert (await api.post("/apply", content=yaml.safe_dump(doc))).status_code == 200
    hostile = resource("Pattern", "p", {"name": "a" * 28 + "b"})
    started = time.perf_counter()
    response, health = await asyncio.gather(api.post("/apply", content=yaml.safe_dump(hostile)), api.get("/healthz"))
    assert response.status_code == 422 and "should match '^(a+)+$'" in response.text, response.text
    assert health.status_code == 200
    assert time.perf_counter() - started < 2  # Python's `re` took 7 s here


@pytest.mark.parametrize(
    "path",
    [
        '/objects/Ev"il',
        '/objects/Ev"il/x',
        "/objects/a b",
        "/objects/widget/x'y",
        "/objects/widget/first\\",
        '/objects/promise/p"',
        "/objects/" + "k" * 300,
    ],
)
async def test_kinds_and_names_that_cannot_exist_are_4xx(api: httpx.AsyncClient, path: str) -> None:  # noqa: F811
    response = await api.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)


async def test_temporal_down_is_503_with_the_reason_at_once(tmp_path: Path) -> None:
    """Every route that needs Temporal answers 503 within seconds (it was a bare 500 after 6 to 10 s)."""
    server = DevServer(tmp_path / "temporal.db").start()
    try:
        await namespace_client(server.address, "default")  # registers the search attributes the API's queries use
        settings = Settings(home=tmp_path / "api", temporal_address=server.address, task_queue="ktx-down")
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ktx", timeout=60) as http,
        ):
            assert (await http.get("/objects/promise")).status_code == 200
            server.kill()
            for method, path, body in [
                ("GET", "/objects/promise", None),
                ("GET", "/objects/promise/p", None),
                ("GET", "/objects/destination", None),
                ("DELETE", "/objects/promise/p", None),
                ("POST", "/apply", yaml.safe_dump(promise("p", "Pea"))),
                ("POST", "/objects/promise/p/labels", '{"set": {"a": "b"}}'),
            ]:
                started = time.perf_counter()
                response = await http.request(
                    method, path, content=body, headers={"content-type": "application/json"} if "labels" in path else {}
                )
                took = time.perf_counter() - started
                assert response.status_code == 503, (method, path, response.status_code, response.text)
                assert "Temporal is unavailable" in response.json()["message"], response.text
                assert response.headers["retry-after"] == "5"
                assert took < 5, (method, path, took)
            assert (await http.get("/healthz")).status_code == 200  # liveness is not Temporal's
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
