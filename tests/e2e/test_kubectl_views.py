"""The read-only kinds and OpenAPI documents, through real kubectl (.venv/bin/kubectl) against the API on a loopback
port (with its lifespan: its own client and change feed) over a real Temporal dev server and worker: `explain` from a
Promise's schema, `get crd`, Works and WorkPlacements (misplaced ones selected by Kratix's label), Namespaces, and
Events, by field selector and in `describe`."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api.app import create_app
from domain.access import token_digest
from domain.layout import work_name
from service.platform import Platform
from tests.e2e.test_kubectl import Kubectl, kubectl  # noqa: F401 (the fixture)
from tests.kratix_documents import GROUP, git_store_and_destinations, promise, resource
from tests.waiting import eventually
from worker.settings import Settings

CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "namespace": "default"}}


@pytest.fixture
def kube(request: pytest.FixtureRequest) -> Kubectl:
    """test_kubectl's `kubectl`: the app served with its lifespan, and kubectl with a kubeconfig naming it."""
    return request.getfixturevalue("kubectl")


async def ok(kube: Kubectl, *args: str) -> str:
    return (await kube(*args))[1]


def widgets_promise(selectors: dict[str, str]) -> dict[str, Any]:
    doc = promise(
        "widgets",
        "Widget",
        selectors=selectors,
        properties={"colour": {"type": "string", "description": "The colour every widget is painted."}},
    )
    doc["spec"]["dependencies"] = [CONFIG_MAP]
    return doc


async def installed(platform: Platform, remote: Path) -> None:
    for doc in git_store_and_destinations(remote, {"dev": {"env": "dev"}, "prod": {"env": "prod"}}):
        await platform.apply(doc)
    await platform.apply(widgets_promise({"env": "dev"}))
    await platform.wait_condition("Promise", "widgets", "default", "Available", timeout=120)
    await platform.apply(resource("Widget", "blue", {"colour": "blue"}, namespace="team-a"))
    await platform.wait_condition("Widget", "blue", "team-a", "Reconciled", timeout=120)


async def test_explain_and_crd_come_from_the_promise_schema(
    platform: Platform, git_remote: Path, tmp_path: Path, kube: Kubectl
):
    await installed(platform, git_remote)
    spec = await ok(kube, "explain", "widgets.spec")
    assert f"GROUP:      {GROUP}\nKIND:       Widget\nVERSION:    v1\n" in spec
    assert "  colour\t<string>\n    The colour every widget is painted.\n" in spec
    recursive = await ok(kube, "explain", "widgets", "--recursive")
    for line in (
        "  spec\t<Object>",
        "    colour\t<string>",
        "  metadata\t<ObjectMeta>",
        "    labels\t<map[string]string>",
    ):
        assert f"\n{line}\n" in recursive, line
    # Kratix's status schema, as its generated CRD has it
    assert "\n    observedGeneration\t<integer>\n" in recursive and "\n    kratix\t<Object>\n" in recursive
    promise_spec = await ok(kube, "explain", "promises.spec.destinationSelectors")
    assert "FIELD: destinationSelectors <[]Object>" in promise_spec, "Kratix's own CRD schema"
    assert "  matchLabels\t<map[string]string>\n" in promise_spec
    event = await ok(kube, "explain", "events.involvedObject")
    assert "KIND:       Event\nVERSION:    v1\n" in event and "  uid\t<string>\n" in event
    code, _, err = await kube("explain", "widgets.spec.nothing", check=False)
    assert code == 1 and 'field "nothing" does not exist' in err

    crds = (await ok(kube, "get", "crd")).splitlines()
    assert crds[0].split() == ["NAME", "CREATED", "AT"]
    listed = [line.split()[0] for line in crds[1:]]
    assert f"widgets.{GROUP}" in listed and "promises.platform.kratix.io" in listed
    crd = json.loads(await ok(kube, "get", "crd", f"widgets.{GROUP}", "-o", "json"))
    assert crd["metadata"]["labels"]["kratix.io/promise-name"] == "widgets"
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]} == {
        "NamesAccepted": "True",
        "Established": "True",
    }
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["message", "status"]
    assert crd["status"]["storedVersions"] == ["v1"]
    code, _, err = await kube("get", "crd", "nothing.example.com", check=False)
    assert code == 1 and "NotFound" in err


async def test_works_workplacements_namespaces_and_events(
    platform: Platform, git_remote: Path, tmp_path: Path, kube: Kubectl
):
    await installed(platform, git_remote)
    works = json.loads(await ok(kube, "get", "works", "-A", "-o", "json"))["items"]
    static = work_name("widgets-static-deps")
    assert [(w["metadata"]["namespace"], w["metadata"]["name"]) for w in works] == [("kratix-platform-system", static)]
    table = await ok(kube, "get", "works,workplacements", "-A")
    assert f"work.platform.kratix.io/{static}" in table
    assert f"workplacement.platform.kratix.io/{static}.dev-" in table
    assert (await ok(kube, "get", "workplacements", "-A", "-l", "kratix.io/misplaced=true")).strip() == ""

    # dev no longer matches the Promise's selector: Kratix keeps the placement and labels it misplaced.
    dev, prod = git_store_and_destinations(git_remote, {"dev": {"env": "qa"}, "prod": {"env": "prod"}})[1:]
    await platform.apply(dev)

    async def misplaced() -> list[str]:
        out = await ok(kube, "get", "wp", "-A", "-l", "kratix.io/misplaced=true", "-o", "name")
        return out.split()

    found = await eventually(misplaced, lambda names: len(names) == 1, timeout=120, what="a misplaced placement")
    assert found[0].startswith(f"workplacement.platform.kratix.io/{static}.dev-")
    placement = json.loads(await ok(kube, "get", found[0], "-n", "kratix-platform-system", "-o", "json"))
    assert placement["spec"]["targetDestinationName"] == "dev"

    namespaces = (await ok(kube, "get", "namespaces", "-o", "name")).split()
    assert sorted(namespaces) == ["namespace/default", "namespace/kratix-platform-system", "namespace/team-a"]
    # No namespace is created in ktx before objects go into it: kubectl's check that it exists passes.
    request = tmp_path / "red.yaml"
    request.write_text(yaml.safe_dump(resource("Widget", "red", {"colour": "red"}, namespace="fresh")))
    assert "widget.test.ktx.io/red created" in await ok(kube, "apply", "-f", str(request))
    code, _, err = await kube("get", "namespace", "n" * 64, check=False)  # a name, but too long for a namespace
    assert code == 1 and "NotFound" in err

    events = json.loads(
        await ok(kube, "get", "events", "-n", "team-a", "--field-selector", "involvedObject.name=blue", "-o", "json")
    )["items"]
    assert events and {e["involvedObject"]["name"] for e in events} == {"blue"}
    assert {e["involvedObject"]["kind"] for e in events} == {"Widget"}
    # Name and kind read that one object (as describe asks); the name alone selects from everyone's: they agree.
    for kind, name, scope in (("Widget", "blue", ["-n", "team-a"]), ("Destination", "dev", ["-A"])):
        one = f"involvedObject.kind={kind},involvedObject.name={name}"
        narrowed = await ok(kube, "get", "events", *scope, "--field-selector", one, "-o", "name")
        everyone = await ok(
            kube, "get", "events", "-A", "--field-selector", f"involvedObject.name={name}", "-o", "name"
        )
        assert narrowed.split() and sorted(narrowed.split()) == sorted(everyone.split()), (kind, narrowed, everyone)
    none = await ok(kube, "get", "events", "-A", "--field-selector", "involvedObject.name=nobody", "-o", "json")
    assert json.loads(none)["items"] == []
    by_source = await ok(
        kube, "get", "events", "-A", "--field-selector", "source=DestinationController,type=Normal", "-o", "json"
    )
    assert {e["involvedObject"]["kind"] for e in json.loads(by_source)["items"]} == {"Destination"}

    described = await ok(kube, "describe", "widget", "blue", "-n", "team-a")
    events_section = described.split("Events:", 1)[1]
    assert "ConfigureWorkflowCompleted" in events_section
    promise_events = await ok(kube, "describe", "promise", "widgets")
    assert "Available" in promise_events.split("Events:", 1)[1]


async def test_a_team_gets_its_namespace_before_anything_is_in_it(platform: Platform, tmp_path: Path):
    token = secrets.token_urlsafe(32)
    tokens = tmp_path / "tokens.yaml"
    entries = [{"name": "z-ci", "role": "team", "namespaces": ["team-z"], "sha256": token_digest(token)}]
    tokens.write_text(yaml.safe_dump(entries))
    app = create_app(Settings(home=tmp_path, api_tokens_file=tokens))
    app.state.platform = platform
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ktx", headers=headers
    ) as http:
        team_z = (await http.get("/api/v1/namespaces/team-z")).raise_for_status().json()
        assert (team_z["status"], team_z["metadata"]["labels"]) == (
            {"phase": "Active"},
            {"kubernetes.io/metadata.name": "team-z"},
        )
