"""The Kubernetes object routes answered as the apiserver answers them, request by request: Status documents with
the right reason, code and details; refusals of malformed and oversized input (4xx, never 5xx, nothing stored); dry
runs; preconditions; deletion while a delete pipeline runs; what a team token sees; and the `kubernetes` Python
client's CRUD and status patch, unchanged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest
import yaml

from service.platform import Platform
from tests.integration.test_api_auth import OWN, OTHER, PLATFORM_TOKEN, TEAM_TOKEN, as_, served, write_tokens
from tests.integration.test_health_metrics import api_for
from tests.kratix_documents import GROUP, git_store_and_destinations, pipeline, promise, resource
from tests.waiting import eventually

WIDGETS = f"/apis/{GROUP}/v1"
MERGE = {"Content-Type": "application/merge-patch+json"}


def widget(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return resource("Widget", name, spec=spec, namespace=namespace)


def status_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["code"] == response.status_code, body
    return body


@pytest.fixture
async def kube(platform: Platform, tmp_path: Path, git_remote: Path, pipeline_images):
    """The API with a tokens file, a store and Destination, the Widget Promise (whose delete pipeline waits for the
    `open` label) and a Widget in each team namespace."""
    gated = pipeline("gated-delete", GATE_LABEL="open", CONTROL={"suspend": True, "message": "waiting for open"})
    async with api_for(
        platform, tmp_path, api_host="0.0.0.0", api_tokens_file=write_tokens(tmp_path / "tokens.yaml")
    ) as (app, http):
        http.headers.update(as_(PLATFORM_TOKEN))
        for doc in [
            *git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}),
            promise("widgets", "Widget", delete=[gated]),
        ]:
            response = await http.post("/apply", content=yaml.safe_dump(doc))
            assert response.status_code == 200, response.text
        await platform.wait_condition("promise", "widgets", "default", "Available", timeout=120)
        for namespace in (OWN, OTHER):
            created = await http.post(f"{WIDGETS}/namespaces/{namespace}/widgets", json=widget("first", namespace))
            assert created.status_code == 201, created.text
        yield app, http


async def test_statuses_name_what_was_refused(kube: tuple[Any, httpx.AsyncClient], platform: Platform) -> None:
    _, http = kube
    missing = await http.get(f"{WIDGETS}/namespaces/{OWN}/widgets/nope")
    assert missing.status_code == 404
    assert status_of(missing) | {"metadata": {}} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'widgets.{GROUP} "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": GROUP, "kind": "widgets"},
        "code": 404,
    }
    assert status_of(await http.get("/apis/nothing.example.com/v1/things"))["reason"] == "NotFound"
    assert status_of(await http.get("/openapi/v2"))["reason"] == "NotFound"  # the app's own 404, as a Status

    again = await http.post(f"{WIDGETS}/namespaces/{OWN}/widgets", json=widget("first", OWN))
    assert status_of(again)["reason"] == "AlreadyExists" and again.status_code == 409
    assert status_of(again)["message"] == f'widgets.{GROUP} "first" already exists'

    elsewhere = await http.post(f"{WIDGETS}/namespaces/{OWN}/widgets", json=widget("x", OTHER))
    assert elsewhere.status_code == 400 and "does not match the namespace" in status_of(elsewhere)["message"]
    unnamed = await http.post(
        f"{WIDGETS}/namespaces/{OWN}/widgets", json={"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {}}
    )
    assert unnamed.status_code == 422
    assert status_of(unnamed)["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        }
    ]
    wrong_kind = await http.post(f"{WIDGETS}/namespaces/{OWN}/widgets", json={**widget("y", OWN), "apiVersion": "v1"})
    assert wrong_kind.status_code == 400

    # malformed and hostile bodies: 400s, never a 500, nothing stored
    for body in (b"{not json", b"[" * 100_000, json.dumps(_nested(200)).encode()):
        refused = await http.post(
            f"{WIDGETS}/namespaces/{OWN}/widgets", content=body, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 400, refused.text
        assert status_of(refused)["reason"] == "BadRequest"
    huge = await http.post(
        f"{WIDGETS}/namespaces/{OWN}/widgets",
        content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and status_of(huge)["reason"] == "RequestEntityTooLarge"

    url = f"{WIDGETS}/namespaces/{OWN}/widgets/first"
    strategic = await http.patch(
        url, json={"spec": {}}, headers={"Content-Type": "application/strategic-merge-patch+json"}
    )
    assert strategic.status_code == 415 and status_of(strategic)["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json"
    )
    bad_op = await http.patch(
        url, json=[{"op": "remove", "path": "/spec/missing"}], headers={"Content-Type": "application/json-patch+json"}
    )
    assert bad_op.status_code == 422 and status_of(bad_op)["reason"] == "Invalid"
    too_many = [{"op": "test", "path": "/kind", "value": "Widget"}] * 1001
    assert (
        await http.patch(url, json=too_many, headers={"Content-Type": "application/json-patch+json"})
    ).status_code == 422
    ssa = await http.patch(
        url, content=yaml.safe_dump(widget("first", OWN)), headers={"Content-Type": "application/apply-patch+yaml"}
    )
    assert ssa.status_code == 400 and "fieldManager" in status_of(ssa)["message"]
    selector = await http.get(f"{WIDGETS}/widgets", params={"labelSelector": "a in (b"})
    assert selector.status_code == 400 and status_of(selector)["reason"] == "BadRequest"
    assert (await http.get(f"{WIDGETS}/namespaces/Not_A_Name/widgets")).status_code == 400
    unchanged = await platform.get("widget", "first", OWN)
    assert unchanged["spec"] == {} and "missing" not in json.dumps(unchanged["spec"])


def _nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_dry_runs_store_nothing_and_preconditions_hold(
    kube: tuple[Any, httpx.AsyncClient], platform: Platform
) -> None:
    _, http = kube
    dry = await http.post(f"{WIDGETS}/namespaces/{OWN}/widgets", params={"dryRun": "All"}, json=widget("dry", OWN))
    assert dry.status_code == 201 and dry.json()["metadata"]["name"] == "dry"
    assert dry.json()["metadata"]["labels"]["kratix.io/promise-name"] == "widgets"  # as admission would default it
    assert (await http.get(f"{WIDGETS}/namespaces/{OWN}/widgets/dry")).status_code == 404
    assert (
        await http.post(f"{WIDGETS}/namespaces/{OWN}/widgets", params={"dryRun": "Maybe"}, json=widget("d", OWN))
    ).status_code == 400
    url = f"{WIDGETS}/namespaces/{OWN}/widgets/first"
    dry_patch = await http.patch(url, params={"dryRun": "All"}, json={"spec": {"size": "xl"}}, headers=MERGE)
    assert dry_patch.status_code == 200 and dry_patch.json()["spec"] == {"size": "xl"}
    assert (await platform.get("widget", "first", OWN))["spec"] == {}

    current = (await http.get(url)).json()
    stale = {**current, "metadata": {**current["metadata"], "resourceVersion": "1"}, "spec": {"size": "s"}}
    refused = await http.put(url, json=stale)
    assert refused.status_code == 409 and status_of(refused)["reason"] == "Conflict"
    assert status_of(refused)["message"].startswith(f'Operation cannot be fulfilled on widgets.{GROUP} "first"')
    fresh = await http.put(url, json={**current, "spec": {"size": "s"}})
    assert fresh.status_code == 200, fresh.text
    assert (await platform.get("widget", "first", OWN))["spec"] == {"size": "s"}


async def test_a_delete_answers_the_object_until_its_delete_pipeline_ends(
    kube: tuple[Any, httpx.AsyncClient], platform: Platform
) -> None:
    _, http = kube
    url = f"{WIDGETS}/namespaces/{OTHER}/widgets/first"
    await platform.wait_condition("widget", "first", OTHER, "Reconciled", timeout=120)
    deleting = await http.delete(url, params={"propagationPolicy": "Foreground"})
    assert deleting.status_code == 200, deleting.text
    meta = deleting.json()["metadata"]
    assert meta["deletionTimestamp"] and "kratix.io/delete-workflows" in meta["finalizers"]
    suspended = await eventually(
        lambda: http.get(url),
        lambda r: "kratix.io/workflow-suspended" in (r.json()["metadata"].get("labels") or {}),
        what="the delete pipeline suspended",
    )
    assert suspended.json()["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    # labelling a deleting object works (kubectl label sends a merge patch): the gate opens, the delete goes on
    opened = await http.patch(
        url, json={"metadata": {"labels": {"open": "true", "kratix.io/workflow-suspended": None}}}, headers=MERGE
    )
    assert opened.status_code == 200, opened.text
    await eventually(lambda: http.get(url), lambda r: r.status_code == 404, what="the widget gone")

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    assert (await http.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret)).status_code == 201
    gone = await http.delete(f"/api/v1/namespaces/{OWN}/secrets/s")
    assert gone.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "s", "kind": "secrets"},
    }
    assert status_of(await http.delete(f"/api/v1/namespaces/{OWN}/secrets/s"))["reason"] == "NotFound"


async def test_a_team_token_sees_its_namespaces_and_no_secrets(kube: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = kube
    team = as_(TEAM_TOKEN)
    listed = await http.get(f"{WIDGETS}/widgets", headers=team)
    assert listed.status_code == 200 and [i["metadata"]["namespace"] for i in listed.json()["items"]] == [OWN]
    everyone = await http.get(f"{WIDGETS}/widgets")
    assert sorted(i["metadata"]["namespace"] for i in everyone.json()["items"]) == sorted([OWN, OTHER])
    other = await http.get(f"{WIDGETS}/namespaces/{OTHER}/widgets/first", headers=team)
    assert other.status_code == 403 and status_of(other)["reason"] == "Forbidden"
    assert status_of(other)["details"] == {"group": GROUP, "kind": "widgets", "name": "first"}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "stringData": {"k": "v"}}
    assert (await http.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret, headers=team)).status_code == 403
    assert (await http.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret)).status_code == 201
    assert (await http.get(f"/api/v1/namespaces/{OWN}/secrets/t")).json()["data"] == {"k": "dg=="}
    assert (await http.get(f"/api/v1/namespaces/{OWN}/secrets", headers=team)).status_code == 403
    unauthenticated = await http.get(f"{WIDGETS}/widgets", headers={"Authorization": "Bearer nope"})
    assert unauthenticated.status_code == 401 and status_of(unauthenticated)["reason"] == "Unauthorized"


async def test_the_kubernetes_python_client_works_unchanged(
    kube: tuple[Any, httpx.AsyncClient], platform: Platform
) -> None:
    app, _ = kube
    with served(app) as url:
        config = kubernetes.client.Configuration(
            host=url, api_key={"authorization": PLATFORM_TOKEN}, api_key_prefix={"authorization": "Bearer"}
        )

        def crud() -> dict[str, Any]:
            with kubernetes.client.ApiClient(config) as client:
                custom = kubernetes.client.CustomObjectsApi(client)
                custom.create_namespaced_custom_object(GROUP, "v1", OWN, "widgets", widget("py", OWN, size="m"))
                found = custom.list_namespaced_custom_object(
                    GROUP, "v1", OWN, "widgets", label_selector="kratix.io/promise-name=widgets"
                )
                assert sorted(i["metadata"]["name"] for i in found["items"]) == ["first", "py"]
                custom.patch_namespaced_custom_object(GROUP, "v1", OWN, "widgets", "py", {"spec": {"size": "l"}})
                # what kratix-sdk's publish_status calls
                custom.patch_namespaced_custom_object_status(
                    GROUP, "v1", OWN, "widgets", "py", {"status": {"endpoint": "e"}}
                )
                try:
                    custom.get_namespaced_custom_object(GROUP, "v1", OWN, "widgets", "absent")
                except kubernetes.client.ApiException as exc:
                    assert exc.status == 404 and json.loads(exc.body)["reason"] == "NotFound"
                else:
                    raise AssertionError("a missing object was found")
                core = kubernetes.client.CoreV1Api(client)
                core.create_namespaced_secret(
                    OWN, kubernetes.client.V1Secret(metadata={"name": "py"}, string_data={"k": "v"})
                )
                assert core.read_namespaced_secret("py", OWN).data == {"k": "dg=="}
                return custom.get_namespaced_custom_object(GROUP, "v1", OWN, "widgets", "py")

        # The client blocks: in a thread, so this loop keeps running the worker meanwhile.
        obj = await asyncio.to_thread(crud)
    assert obj["spec"] == {"size": "l"} and obj["status"]["endpoint"] == "e"
    assert (await platform.get("widget", "py", OWN))["status"]["endpoint"] == "e"
