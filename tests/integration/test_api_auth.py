"""Bearer-token authentication and role-based authorisation of the API: every route against every kind of caller,
through the real app on a real Temporal dev server and worker."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from api.app import _visible_tree, create_app
from api.auth import AuthConfigError
from service.platform import Platform
from domain.access import LOOPBACK, Principal
from tests.cli_process import run_ktx
from tests.integration.test_health_metrics import api_for, closed_port
from tests.kratix_documents import eventually, git_store_and_destinations, promise, resource
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OWN, OTHER = "team-a", "team-b"
SECRET_VALUE = "s3cr3t-value-never-returned"
PLATFORM_TOKEN, TEAM_TOKEN, UNKNOWN_TOKEN = (secrets.token_urlsafe(32) for _ in range(3))
TEAM_NAME = "team-a-ci"


def write_tokens(path: Path) -> Path:
    entries = [
        {"name": "platform-admin", "role": "platform", "sha256": hashlib.sha256(PLATFORM_TOKEN.encode()).hexdigest()},
        {
            "name": TEAM_NAME,
            "role": "team",
            "namespaces": [OWN],
            "sha256": hashlib.sha256(TEAM_TOKEN.encode()).hexdigest(),
        },
    ]
    path.write_text(yaml.safe_dump(entries))
    return path


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def secret(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"password": SECRET_VALUE},
    }


def health_record(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "HealthRecord",
        "metadata": {"name": "hr", "namespace": namespace},
        "data": {
            "promiseRef": {"name": "widgets"},
            "resourceRef": {"name": "first", "namespace": namespace},
            "state": "healthy",
        },
    }


def rollout_plan(namespaces: list[str], name: str = "widgets-v2", promise: str = "widgets") -> dict[str, Any]:
    group = {"name": "only", **({"namespaces": namespaces} if namespaces else {"selector": {"matchLabels": {}}})}
    return {
        "apiVersion": "platform.ktx.dev/v1alpha1",
        "kind": "RolloutPlan",
        "metadata": {"name": name},
        "spec": {"promiseRef": {"name": promise}, "fromVersion": "v1", "toVersion": "v2", "groups": [group]},
    }


def gadgets(version: str) -> dict[str, Any]:
    return promise("gadgets", "Gadget", labels={"kratix.io/promise-version": version})


async def _create_plan(http: httpx.AsyncClient, namespace: str) -> int:
    document = rollout_plan([namespace], name=f"gadgets-{namespace}", promise="gadgets")
    response = await http.post("/rollouts", content=yaml.safe_dump(document), headers=as_(PLATFORM_TOKEN))
    return response.status_code


@dataclass
class Recorded:
    """Every response the tests saw, to search for the things that must never be in one."""

    texts: list[str]

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.texts.append("\n".join([response.text, *(f"{k}: {v}" for k, v in response.headers.items())]))


@asynccontextmanager
async def secured_api(
    platform: Platform, tmp_path: Path, remote: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Recorded]]:
    """The API as deployed (0.0.0.0, a tokens file) holding a store, a Destination, the Widget Promise, a Widget and a
    HealthRecord in each team namespace, and a Secret, all applied with the platform token."""
    recorded = Recorded([])
    async with api_for(
        platform, tmp_path, api_host="0.0.0.0", api_tokens_file=write_tokens(tmp_path / "tokens.yaml")
    ) as (_, http):
        http.event_hooks["response"].append(recorded.hook)
        docs = [
            *git_store_and_destinations(remote, {"dev": {"env": "dev"}}),
            promise("widgets", "Widget"),
            resource("Widget", "first", namespace=OWN),
            resource("Widget", "first", namespace=OTHER),
            health_record(OWN),
            health_record(OTHER),
            secret("creds", OWN),
            gadgets("v1"),
            gadgets("v2"),
        ]
        for doc in docs:  # one by one: the resources need the Promise's API registered first
            response = await http.post("/apply", content=yaml.safe_dump(doc), headers=as_(PLATFORM_TOKEN))
            assert response.status_code == 200, response.text
        # A plan in each team namespace, by the platform: no Gadget requests, so each succeeds at once and lets go
        # of the Promise for the next (a signal, a moment behind).
        for namespace in (OWN, OTHER):
            await eventually(lambda: _create_plan(http, namespace), lambda code: code == 200, what="plan created")
        for kind in ("widgets", "healthrecords"):  # lists follow Temporal's visibility store, a moment behind
            await eventually(
                lambda: _listed(http, kind),
                lambda found: {o["metadata"]["namespace"] for o in found} == {OWN, OTHER},
                what=f"{kind} of both namespaces listed",
            )
        yield http, recorded


async def _listed(http: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    return (await http.get(f"/objects/{kind}", headers=as_(PLATFORM_TOKEN))).json()


# (route id, method, path, params, body) with {ns} the namespace the caller aims at. Order matters: deletes last.
ROUTES: list[tuple[str, str, str, dict[str, Any], Any]] = [
    ("healthz", "GET", "/healthz", {}, None),
    ("readyz", "GET", "/readyz", {}, None),
    ("metrics", "GET", "/metrics", {}, None),
    ("apply widget", "POST", "/apply", {}, resource("Widget", "second", namespace="{ns}")),
    ("list widgets -n", "GET", "/objects/widgets", {"namespace": "{ns}"}, None),
    ("list widgets -A", "GET", "/objects/widgets", {}, None),
    ("get widget", "GET", "/objects/widget/first", {"namespace": "{ns}"}, None),
    ("label widget", "POST", "/objects/widget/first/labels", {"namespace": "{ns}"}, {"set": {"touched": "yes"}}),
    ("reconcile widget", "POST", "/objects/widget/first/reconcile", {"namespace": "{ns}"}, None),
    ("logs widget", "GET", "/objects/widget/first/logs", {"namespace": "{ns}"}, None),
    ("tree widget", "GET", "/objects/widget/first/tree", {"namespace": "{ns}"}, None),
    (
        "wait widget",
        "GET",
        "/objects/widget/first/wait",
        {"namespace": "{ns}", "condition": "Reconciled", "timeout": 60},
        None,
    ),
    ("get healthrecord", "GET", "/objects/healthrecord/hr", {"namespace": "{ns}"}, None),
    ("list healthrecords -A", "GET", "/objects/healthrecords", {}, None),
    (
        "apply healthrecord",
        "POST",
        "/apply",
        {},
        {**health_record("{ns}"), "data": {**health_record("{ns}")["data"], "state": "degraded"}},
    ),
    ("list promises", "GET", "/objects/promises", {"namespace": "{ns}"}, None),
    ("get promise", "GET", "/objects/promise/widgets", {"namespace": "{ns}"}, None),
    ("wait promise", "GET", "/objects/promise/widgets/wait", {"condition": "Available", "timeout": 60}, None),
    ("apply promise", "POST", "/apply", {}, promise("widgets", "Widget", labels={"changed": "yes"})),
    ("label promise", "POST", "/objects/promise/widgets/labels", {}, {"set": {"touched": "yes"}}),
    ("reconcile promise", "POST", "/objects/promise/widgets/reconcile", {}, None),
    ("logs promise", "GET", "/objects/promise/widgets/logs", {}, None),
    ("list destinations", "GET", "/objects/destinations", {}, None),
    ("get destination", "GET", "/objects/destination/dev", {}, None),
    ("apply destination", "POST", "/apply", {}, "destination"),
    ("reconcile destination", "POST", "/objects/destination/dev/reconcile", {}, None),
    ("destination manifests", "GET", "/objects/destination/dev/manifests", {"gitops": "flux"}, None),
    ("list gitstatestores", "GET", "/objects/gitstatestores", {}, None),
    ("get gitstatestore", "GET", "/objects/gitstatestore/default", {}, None),
    ("apply gitstatestore", "POST", "/apply", {}, "store"),
    ("list secrets", "GET", "/objects/secrets", {}, None),
    ("get secret", "GET", "/objects/secret/creds", {"namespace": "{ns}"}, None),
    ("apply secret", "POST", "/apply", {}, secret("more", "{ns}")),
    ("console page", "GET", "/ui/", {}, None),
    ("console page bare", "GET", "/ui", {}, None),
    ("console session", "GET", "/ui/api/session", {}, None),
    ("console overview", "GET", "/ui/api/overview", {}, None),
    ("console requests -n", "GET", "/ui/api/requests", {"namespace": "{ns}"}, None),
    ("console requests -A", "GET", "/ui/api/requests", {}, None),
    ("console request", "GET", "/ui/api/requests/Widget/first", {"namespace": "{ns}"}, None),
    ("console changes", "GET", "/ui/api/changes", {"timeout": 1}, None),
    ("preview rollout", "POST", "/rollouts", {"preview": "true"}, rollout_plan(["{ns}"])),
    ("create rollout", "POST", "/rollouts", {}, rollout_plan(["{ns}"])),
    ("create rollout by selector", "POST", "/rollouts", {}, rollout_plan([])),
    ("get rollout", "GET", "/rollouts/none", {}, None),
    ("pause rollout", "POST", "/rollouts/none/pause", {}, None),
    ("get existing rollout", "GET", "/rollouts/gadgets-{ns}", {}, None),
    ("resume existing rollout", "POST", "/rollouts/gadgets-{ns}/resume", {}, None),
    ("delete widget", "DELETE", "/objects/widget/second", {"namespace": "{ns}"}, None),
    ("delete healthrecord", "DELETE", "/objects/healthrecord/none", {"namespace": "{ns}"}, None),
    ("delete secret", "DELETE", "/objects/secret/none", {"namespace": "{ns}"}, None),
    ("delete destination", "DELETE", "/objects/destination/none", {}, None),
    ("delete gitstatestore", "DELETE", "/objects/gitstatestore/none", {}, None),
    ("delete promise", "DELETE", "/objects/promise/none", {}, None),
]

# Expected status per route for: a platform token, a team token in its namespace, the same token in another one.
# A 404/422 where access is allowed shows the request got past authorisation to the platform (the object is absent,
# the widget ran no pipeline so has no logs, a local store has no GitOps manifests) without changing anything.
EXPECTED: dict[str, tuple[int, int, int]] = {
    "healthz": (200, 200, 200),
    "readyz": (200, 200, 200),
    "metrics": (200, 200, 200),
    "apply widget": (200, 200, 403),
    "list widgets -n": (200, 200, 403),
    "list widgets -A": (200, 200, 200),
    "get widget": (200, 200, 403),
    "label widget": (200, 200, 403),
    "reconcile widget": (200, 200, 403),
    "logs widget": (404, 404, 403),
    "tree widget": (200, 200, 403),
    "wait widget": (200, 200, 403),
    "get healthrecord": (200, 200, 403),
    "list healthrecords -A": (200, 200, 200),
    "apply healthrecord": (200, 403, 403),
    "list promises": (200, 200, 200),
    "get promise": (200, 200, 200),
    "wait promise": (200, 200, 200),
    "apply promise": (200, 403, 403),
    "label promise": (200, 403, 403),
    "reconcile promise": (200, 403, 403),
    "logs promise": (404, 403, 403),
    "list destinations": (200, 403, 403),
    "get destination": (200, 403, 403),
    "apply destination": (200, 403, 403),
    "reconcile destination": (200, 403, 403),
    "destination manifests": (422, 403, 403),
    "list gitstatestores": (200, 403, 403),
    "get gitstatestore": (200, 403, 403),
    "apply gitstatestore": (200, 403, 403),
    "list secrets": (200, 403, 403),
    "get secret": (200, 403, 403),
    "apply secret": (200, 403, 403),
    "console page": (200, 200, 200),
    "console page bare": (200, 200, 200),
    "console session": (200, 200, 200),
    "console overview": (200, 200, 200),
    "console requests -n": (200, 200, 403),
    "console requests -A": (200, 200, 200),
    "console request": (200, 200, 403),
    "console changes": (200, 200, 200),
    # The widgets Promise has no v2: a plan allowed past authorisation is refused for its spec.toVersion.
    "preview rollout": (422, 422, 403),
    "create rollout": (422, 422, 403),
    "create rollout by selector": (422, 403, 403),
    "get rollout": (404, 404, 404),
    "pause rollout": (404, 404, 404),
    # Succeeded plans (resume: 409). A team may get and control plans (RBAC), so it hears 404 of a missing one and,
    # of another namespace's plan, 403 naming the namespace (docs/rollouts.md).
    "get existing rollout": (200, 200, 403),
    "resume existing rollout": (409, 409, 403),
    "delete widget": (200, 200, 403),
    "delete healthrecord": (404, 403, 403),
    "delete secret": (404, 403, 403),
    "delete destination": (404, 403, 403),
    "delete gitstatestore": (404, 403, 403),
    "delete promise": (404, 403, 403),
}
OPEN = {"healthz", "readyz", "metrics", "console page", "console page bare"}
CALLERS = {  # caller: (token, namespace aimed at, column in EXPECTED, or the 401 reason)
    "platform": (PLATFORM_TOKEN, OWN, 0),
    "team in its namespace": (TEAM_TOKEN, OWN, 1),
    "team in another namespace": (TEAM_TOKEN, OTHER, 2),
    "no token": (None, OWN, "missing bearer token"),
    "unknown token": (UNKNOWN_TOKEN, OWN, "unknown token"),
}


def test_the_table_exercises_every_route_of_the_app(tmp_path: Path) -> None:
    assert [r[0] for r in ROUTES] == list(EXPECTED)
    app = create_app(Settings(api_host="0.0.0.0", api_tokens_file=write_tokens(tmp_path / "tokens.yaml")))
    served = {(method, route.path) for route in app.routes if isinstance(route, APIRoute) for method in route.methods}
    exercised = set()
    for _, method, path, _, _ in ROUTES:
        scope = {"type": "http", "method": method, "path": _fill(path, OWN)}
        exercised |= {
            (method, r.path) for r in app.routes if isinstance(r, APIRoute) and r.matches(scope)[0] == Match.FULL
        }
    assert served - exercised == set(), "routes no row of ROUTES exercises"


def _fill(value: Any, namespace: str) -> Any:
    if isinstance(value, str):
        return value.replace("{ns}", namespace)
    if isinstance(value, dict):
        return {k: _fill(v, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, namespace) for v in value]
    return value


# What refused requests would have changed or created (read one by one: a list may lag behind a fresh workflow).
WATCHED = [
    ("widget", "first", OWN),
    ("widget", "first", OTHER),
    ("widget", "second", OTHER),
    ("promise", "widgets", None),
    ("destination", "dev", None),
    ("gitstatestore", "default", None),
    ("healthrecord", "hr", OWN),
    ("healthrecord", "hr", OTHER),
    ("secret", "creds", OWN),
    ("secret", "more", OWN),
    ("secret", "more", OTHER),
]


async def _state(http: httpx.AsyncClient, leave_out: tuple[str, str | None] = ("", "")) -> dict[tuple, Any]:
    """The watched objects as the platform token reads them, except those of kind and namespace `leave_out`."""
    found: dict[tuple, Any] = {}
    for kind, name, namespace in WATCHED:
        if (kind, namespace) == leave_out:
            continue
        response = await http.get(
            f"/objects/{kind}/{name}", params={"namespace": namespace} if namespace else {}, headers=as_(PLATFORM_TOKEN)
        )
        obj = response.json() if response.status_code == 200 else {}
        found[(kind, name, namespace)] = (
            response.status_code,
            obj.get("spec"),
            (obj.get("metadata") or {}).get("labels"),
            obj.get("data"),
            obj.get("keys"),
        )
    return found


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_each_caller_against_each_route(
    platform: Platform, git_remote: Path, tmp_path: Path, caller: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token, namespace, column = CALLERS[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with secured_api(platform, tmp_path, git_remote) as (http, recorded):
        store, destination = git_store_and_destinations(git_remote, {"dev": {"env": "dev", "changed": "yes"}})
        bodies = {
            "destination": destination,
            "store": {**store, "metadata": {"name": "default", "labels": {"changed": "yes"}}},
        }
        # The team may change its own widgets (and label its first one); nothing else may change.
        leave_out = ("widget", OWN) if caller == "team in its namespace" else ("", "")
        before = await _state(http, leave_out)
        wrong = []
        for route, method, path, params, body in ROUTES:
            body = bodies.get(body, body) if isinstance(body, str) else body
            request: dict[str, Any] = {"params": _fill(params, namespace), "headers": headers}
            if path == "/apply":
                request["content"] = yaml.safe_dump(_fill(body, namespace))
            elif body is not None:
                request["json"] = _fill(body, namespace)
            response = await http.request(method, _fill(path, namespace), **request)
            expected = 200 if route in OPEN else (EXPECTED[route][column] if isinstance(column, int) else 401)
            if response.status_code != expected:
                wrong.append(f"{route}: {response.status_code} (expected {expected}) {response.text[:200]}")
                continue
            if expected == 401:
                assert response.json() == {"message": column, "document": None, "errors": []}, route
                assert response.headers["www-authenticate"].startswith('Bearer realm="ktx"'), route
            if expected == 403:
                answer = response.json()
                assert answer["message"].startswith(f'team token "{TEAM_NAME}" may not '), (route, answer)
                assert answer["document"] == (0 if path == "/apply" else None), (route, answer)
                # Refused only for being in another namespace, or for the role whatever the namespace.
                if EXPECTED[route][1] != 403:
                    assert answer["message"].endswith(f'in namespace "{OTHER}": its namespaces are {OWN}'), (
                        route,
                        answer,
                    )
                else:
                    assert "by platform tokens" in answer["message"], (route, answer)
            if expected == 404 and path.startswith("/rollouts/"):
                name = _fill(path, namespace).split("/")[2]
                assert response.json()["detail"] == f'rolloutplan "{name}" not found', (route, response.json())
            if route in ("list widgets -A", "list healthrecords -A", "console requests -A") and expected == 200:
                listed = response.json()
                seen = {o["namespace"] for o in listed["items"]} if route.startswith("console") else None
                seen = seen or {o["metadata"]["namespace"] for o in listed}
                assert seen == ({OWN, OTHER} if caller == "platform" else {OWN}), (route, seen)
        assert not wrong, "\n".join(wrong)
        if caller != "platform":
            assert await _state(http, leave_out) == before, "a refused request changed something"
        for text in recorded.texts:
            assert SECRET_VALUE not in text and base64.b64encode(SECRET_VALUE.encode()).decode() not in text
            for t in (PLATFORM_TOKEN, TEAM_TOKEN, UNKNOWN_TOKEN):
                assert t not in text
    for t in (PLATFORM_TOKEN, TEAM_TOKEN, UNKNOWN_TOKEN):
        assert t not in caplog.text


async def test_team_apply_stops_at_the_first_forbidden_document(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    async with secured_api(platform, tmp_path, git_remote) as (http, _):
        for forbidden, reason in [
            (
                promise("widgets", "Widget", labels={"changed": "yes"}),
                'team token "team-a-ci" may not apply Promise "widgets": Promises are managed by platform tokens',
            ),
            (
                resource("Widget", "third", namespace=OTHER),
                f'team token "team-a-ci" may not apply Widget "third" in namespace "{OTHER}": its namespaces are {OWN}',
            ),
        ]:
            before = await _state(http)
            body = yaml.safe_dump_all(
                [resource("Widget", "second", namespace=OWN), forbidden, resource("Widget", "fourth", namespace=OWN)]
            )
            response = await http.post("/apply", content=body, headers=as_(TEAM_TOKEN))
            assert response.status_code == 403
            assert response.json() == {"message": reason, "document": 1, "errors": []}
            assert await _state(http) == before
            # The API's apply semantics: the document before the refused one stays applied, none after it starts.
            for name, status in (("second", 200), ("third", 404), ("fourth", 404)):
                response = await http.get(
                    f"/objects/widget/{name}", params={"namespace": OWN}, headers=as_(PLATFORM_TOKEN)
                )
                assert response.status_code == status, (name, response.text)
            response = await http.get("/objects/widget/third", params={"namespace": OTHER}, headers=as_(PLATFORM_TOKEN))
            assert response.status_code == 404


async def test_team_sees_its_namespaces_only_and_nobody_sees_secret_values(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    async with secured_api(platform, tmp_path, git_remote) as (http, _):
        for kind in ("widgets", "healthrecords"):
            mine = await http.get(f"/objects/{kind}", headers=as_(TEAM_TOKEN))
            assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in mine.json()] == [
                (OWN, "first" if kind == "widgets" else "hr")
            ]
            everyone = await http.get(f"/objects/{kind}", headers=as_(PLATFORM_TOKEN))
            assert {o["metadata"]["namespace"] for o in everyone.json()} == {OWN, OTHER}
        one = await http.get("/objects/secret/creds", params={"namespace": OWN}, headers=as_(PLATFORM_TOKEN))
        listed = await http.get("/objects/secrets", headers=as_(PLATFORM_TOKEN))
        assert one.json()["keys"] == ["password"] and [s["keys"] for s in listed.json()] == [["password"]]
        for response in (one, listed):
            assert SECRET_VALUE not in response.text
            assert base64.b64encode(SECRET_VALUE.encode()).decode() not in response.text


async def test_the_embedded_loopback_default_stays_open(platform: Platform, tmp_path: Path) -> None:
    async with api_for(platform, tmp_path) as (app, http):
        assert app.state.settings.api_host == "127.0.0.1" and app.state.settings.api_tokens_file is None
        response = await http.post("/apply", content=yaml.safe_dump(promise("widgets", "Widget")))
        assert response.status_code == 200, response.text
        read = await http.get("/objects/promise/widgets")
        assert read.status_code == 200 and read.json()["metadata"]["name"] == "widgets"


def run_api(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KTX_")}
    environment.update(KTX_HOME=str(tmp_path), KTX_API_PORT=str(closed_port()), **env)
    return subprocess.run(
        [sys.executable, "-m", "api"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_the_api_refuses_to_start_beyond_loopback_without_tokens(tmp_path: Path) -> None:
    result = run_api(tmp_path, KTX_API_HOST="0.0.0.0")
    assert result.returncode == 1
    assert (
        "ktx api: refusing to start: the API would listen on 0.0.0.0, beyond this machine, without "
        "authentication: set KTX_API_TOKENS_FILE" in result.stderr
    )
    assert "Traceback" not in result.stderr
    with pytest.raises(AuthConfigError, match="KTX_API_TOKENS_FILE"):
        create_app(Settings(api_host="::"))


def test_a_tokens_file_with_a_clear_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    clear = secrets.token_urlsafe(32)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"name": "ops", "role": "platform", "token": clear}]))
    result = run_api(tmp_path, KTX_API_HOST="0.0.0.0", KTX_API_TOKENS_FILE=str(tokens))
    assert result.returncode == 1
    assert (
        f"KTX_API_TOKENS_FILE {tokens}: 0.sha256: Field required; 0.token: Extra inputs are not permitted"
        in result.stderr
    )
    assert clear not in result.stderr + result.stdout


def test_openapi_declares_bearer_auth_and_its_refusals(tmp_path: Path) -> None:
    app = create_app(Settings(api_host="0.0.0.0", api_tokens_file=write_tokens(tmp_path / "tokens.yaml")))
    document = app.openapi()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz", "/metrics"):
                assert "security" not in operation and "401" not in operation["responses"], (method, path)
                continue
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            for status in ("401", "403"):
                assert operation["responses"][status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Refusal"
                }, (method, path, status)


def test_a_team_tree_leaves_out_components_in_other_namespaces() -> None:
    def node(name: str, namespace: str | None, *children: dict) -> dict:
        return {
            "kind": "Widget",
            "name": name,
            "namespace": namespace,
            "promise": "widgets",
            "status": "",
            "children": list(children),
        }

    tree = node("shop", OWN, node("db", OWN, node("backup", OTHER)), node("dns", OTHER), node("cluster", None))
    team = Principal(name=TEAM_NAME, role="team", namespaces=[OWN])
    assert _visible_tree(tree, team) == node("shop", OWN, node("db", OWN), node("cluster", None))
    assert _visible_tree(tree, LOOPBACK) == tree


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a real socket (uvicorn in a thread), listening before the thread starts, so no waiting is needed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


async def ktx_cli(*args: str, url: str, token: str | None = None) -> tuple[int, str, str]:
    return await run_ktx(*args, env={"KTX_API_URL": url, **({"KTX_TOKEN": token} if token else {})})


async def test_cli_creates_tokens_sends_ktx_token_and_prints_refusals(platform: Platform, tmp_path: Path) -> None:
    created = {}
    for name, role, extra in (("ops", "platform", []), (TEAM_NAME, "team", ["-n", OWN])):
        code, out, _ = await ktx_cli("token", "create", name, "--role", role, *extra, url="http://unused")
        assert code == 0
        token = out.splitlines()[1]
        entry = yaml.safe_load(out.split("(KTX_API_TOKENS_FILE), then restart the API:\n")[1])
        assert entry == [
            {
                "name": name,
                "role": role,
                **({"namespaces": [OWN]} if extra else {}),
                "sha256": hashlib.sha256(token.encode()).hexdigest(),
            }
        ]
        created[name] = (token, entry[0])
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([entry for _, entry in created.values()]))
    ops, team = created["ops"][0], created[TEAM_NAME][0]
    settings = Settings(
        home=tmp_path,
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
        api_host="0.0.0.0",
        api_tokens_file=tokens,
    )
    (tmp_path / "promise.yaml").write_text(yaml.safe_dump(promise("widgets", "Widget")))
    (tmp_path / "widget.yaml").write_text(yaml.safe_dump(resource("Widget", "first", namespace=OWN)))
    outputs = []
    with served(create_app(settings)) as url:

        async def run(*args: str, token: str | None = None) -> tuple[int, str, str]:
            result = await ktx_cli(*args, url=url, token=token)
            outputs.append(result[1] + result[2])
            return result

        assert await run("get", "promises") == (
            1,
            "",
            "Error from server (401): missing bearer token; set KTX_TOKEN to a "
            "token listed in the API's KTX_API_TOKENS_FILE (ktx token create)\n",
        )
        assert (await run("get", "promises", token="not-a-token"))[2].startswith(
            "Error from server (401): unknown token;"
        )
        assert await run("apply", "-f", str(tmp_path / "promise.yaml"), token=team) == (
            1,
            "",
            f'Error from server (403): team token "{TEAM_NAME}" may not apply Promise "widgets": Promises are '
            "managed by platform tokens\n",
        )
        assert await run("apply", "-f", str(tmp_path / "promise.yaml"), token=ops) == (
            0,
            "promise/widgets created\n",
            "",
        )
        assert await run("apply", "-f", str(tmp_path / "widget.yaml"), token=team) == (0, "widget/first created\n", "")
        assert await run("get", "widget", "first", "-n", OTHER, token=team) == (
            1,
            "",
            f'Error from server (403): team token "{TEAM_NAME}" may not get widget "first" in namespace "{OTHER}": '
            f"its namespaces are {OWN}\n",
        )
        code, out, _ = await run("get", "widget", "first", "-n", OWN, "-o", "json", token=team)
        assert code == 0 and json.loads(out)["metadata"]["namespace"] == OWN
    assert not any(ops in text or team in text for text in outputs)


async def test_a_token_revoked_in_the_file_is_refused_by_the_running_api(platform: Platform, tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    async with api_for(platform, tmp_path, api_host="0.0.0.0", api_tokens_file=tokens) as (_, http):
        assert (await http.get("/objects/promise", headers=as_(TEAM_TOKEN))).status_code == 200
        # Only the platform token stays; the file changes under the running API, as a Secret volume does.
        kept = [e for e in yaml.safe_load(tokens.read_text()) if e["role"] == "platform"]
        (tmp_path / "tokens.next").write_text(yaml.safe_dump(kept))
        os.replace(tmp_path / "tokens.next", tokens)
        refused = await eventually(
            lambda: http.get("/objects/promise", headers=as_(TEAM_TOKEN)),
            lambda r: r.status_code == 401,
            timeout=10,
            what="the revoked token refused",
        )
        assert refused.json()["message"] == "unknown token"
        assert (await http.get("/objects/promise", headers=as_(PLATFORM_TOKEN))).status_code == 200
