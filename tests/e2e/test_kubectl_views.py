"""The read-only kinds and OpenAPI documents, through real kubectl (.venv/bin/kubectl) against the API on a loopback
port over a real Temporal dev server and worker: `explain` from a Promise's schema, `get crd`, Works and
WorkPlacements (misplaced ones selected by Kratix's label), Namespaces, and Events, by field selector and in
`describe`."""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import uvicorn
import yaml

from api.app import create_app
from service.change_feed import ChangeFeed
from domain.layout import work_name
from service.platform import Platform
from tests.kratix_documents import GROUP, git_store_and_destinations, promise, resource
from tests.waiting import eventually
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "namespace": "default"}}


@asynccontextmanager
async def kube_api(platform: Platform, home: Path) -> AsyncIterator[Path]:
    """The real app on a loopback port serving the test's platform; yields a kubeconfig naming it."""
    app = create_app(Settings(home=home))
    app.state.platform = platform  # the lifespan would connect to the stack's Temporal; the test has its own
    # What the lifespan would start beside it: lists carry the change feed's position as their resourceVersion.
    app.state.change_feed = ChangeFeed(platform)
    await app.state.change_feed.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    config = home / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "ktx", "cluster": {"server": f"http://127.0.0.1:{sock.getsockname()[1]}"}}],
                "users": [{"name": "ktx", "user": {}}],
                "contexts": [{"name": "ktx", "context": {"cluster": "ktx", "user": "ktx"}}],
                "current-context": "ktx",
            }
        )
    )
    try:
        yield config
    finally:
        server.should_exit = True
        await serving
        sock.close()
        await app.state.change_feed.stop()


async def kubectl(config: Path, *args: str) -> tuple[int, str, str]:
    """Real kubectl in its own process; the test's event loop keeps serving the API and running the worker."""
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "--kubeconfig",
        str(config),
        "--cache-dir",
        str(config.parent / "kube-cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def ok(config: Path, *args: str) -> str:
    code, out, err = await kubectl(config, *args)
    assert code == 0, f"kubectl {' '.join(args)}: {err}"
    return out


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


async def test_explain_and_crd_come_from_the_promise_schema(platform: Platform, git_remote: Path, tmp_path: Path):
    await installed(platform, git_remote)
    async with kube_api(platform, tmp_path) as config:
        spec = await ok(config, "explain", "widgets.spec")
        assert "KIND:       Widget" in spec and f"GROUP:      {GROUP}" in spec
        assert "colour\t<string>" in spec.replace("    ", "\t") or "colour" in spec
        assert "The colour every widget is painted." in spec
        recursive = await ok(config, "explain", "widgets", "--recursive")
        assert "observedGeneration\t<integer>" in recursive.replace("    ", "\t"), "Kratix's status schema"
        assert "colour" in recursive
        promise_spec = await ok(config, "explain", "promises.spec.destinationSelectors")
        assert "matchLabels" in promise_spec, "Kratix's own CRD schema"

        crds = (await ok(config, "get", "crd")).splitlines()
        assert crds[0].split() == ["NAME", "CREATED", "AT"]
        listed = [line.split()[0] for line in crds[1:]]
        assert f"widgets.{GROUP}" in listed and "promises.platform.kratix.io" in listed
        crd = json.loads(await ok(config, "get", "crd", f"widgets.{GROUP}", "-o", "json"))
        assert crd["metadata"]["labels"]["kratix.io/promise-name"] == "widgets"
        assert {c["type"]: c["status"] for c in crd["status"]["conditions"]} == {
            "NamesAccepted": "True",
            "Established": "True",
        }
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert [c["name"] for c in version["additionalPrinterColumns"]] == ["message", "status"]
        assert crd["status"]["storedVersions"] == ["v1"]
        code, _, err = await kubectl(config, "get", "crd", "nothing.example.com")
        assert code == 1 and "NotFound" in err


async def test_works_workplacements_namespaces_and_events(platform: Platform, git_remote: Path, tmp_path: Path):
    await installed(platform, git_remote)
    async with kube_api(platform, tmp_path) as config:
        works = json.loads(await ok(config, "get", "works", "-A", "-o", "json"))["items"]
        static = work_name("widgets-static-deps")
        assert [(w["metadata"]["namespace"], w["metadata"]["name"]) for w in works] == [
            ("kratix-platform-system", static)
        ]
        table = await ok(config, "get", "works,workplacements", "-A")
        assert f"work.platform.kratix.io/{static}" in table
        assert f"workplacement.platform.kratix.io/{static}.dev-" in table
        assert (await ok(config, "get", "workplacements", "-A", "-l", "kratix.io/misplaced=true")).strip() == ""

        # dev no longer matches the Promise's selector: Kratix keeps the placement and labels it misplaced.
        dev, prod = git_store_and_destinations(git_remote, {"dev": {"env": "qa"}, "prod": {"env": "prod"}})[1:]
        await platform.apply(dev)

        async def misplaced() -> list[str]:
            out = await ok(config, "get", "wp", "-A", "-l", "kratix.io/misplaced=true", "-o", "name")
            return out.split()

        found = await eventually(misplaced, lambda names: len(names) == 1, timeout=120, what="a misplaced placement")
        assert found[0].startswith(f"workplacement.platform.kratix.io/{static}.dev-")
        placement = json.loads(await ok(config, "get", found[0], "-n", "kratix-platform-system", "-o", "json"))
        assert placement["spec"]["targetDestinationName"] == "dev"

        namespaces = (await ok(config, "get", "namespaces", "-o", "name")).split()
        assert {"namespace/default", "namespace/kratix-platform-system", "namespace/team-a"} <= set(namespaces)

        events = json.loads(
            await ok(
                config, "get", "events", "-n", "team-a", "--field-selector", "involvedObject.name=blue", "-o", "json"
            )
        )["items"]
        assert events and {e["involvedObject"]["name"] for e in events} == {"blue"}
        assert {e["involvedObject"]["kind"] for e in events} == {"Widget"}
        none = await ok(config, "get", "events", "-A", "--field-selector", "involvedObject.name=nobody", "-o", "json")
        assert json.loads(none)["items"] == []

        described = await ok(config, "describe", "widget", "blue", "-n", "team-a")
        events_section = described.split("Events:", 1)[1]
        assert "ConfigureWorkflowCompleted" in events_section
        promise_events = await ok(config, "describe", "promise", "widgets")
        assert "Available" in promise_events.split("Events:", 1)[1]
