"""`GET /objects/destination/{name}/manifests` and `ktx destination manifests` against a real platform: the Flux
objects point exactly where the platform wrote the Destination's canaries, ArgoCD is refused a bucket with the
reason."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml

from api.app import create_app
from service.platform import Platform
from cli.main import main as ktx
from tests.conftest import remote_files
from tests.integration.test_destinations import KRATIX, destination
from tests.integration.test_state_store_credentials import secret
from tests.kratix_documents import condition, eventually
from tests.servers.git_servers import GitHttpServer, bare_repo
from worker.settings import Settings


@pytest_asyncio.fixture
async def api(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The real app on a loopback port, serving the test's platform; the CLI finds it through KTX_API_URL."""
    app = create_app(Settings(home=tmp_path / "api-home"))
    app.state.platform = platform  # the lifespan would connect to the stack's Temporal; this test has its own
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    # A server that failed to bind is done, not started: stop waiting then, and say why.
    await eventually(lambda: server.started or serving.done(), timeout=30, what="the API serving on its port")
    assert server.started, serving.exception() if serving.done() else "not started"
    monkeypatch.setenv("KTX_API_URL", f"http://127.0.0.1:{port}")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    server.should_exit = True
    await serving


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        await asyncio.to_thread(ktx, list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


async def test_flux_and_argocd_manifests_point_where_the_platform_writes(
    platform: Platform, api: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "srv"
    base.mkdir()
    remote = bare_repo(base, "fleet.git")
    with GitHttpServer(base, "platform-bot", "token-1234") as server:
        await platform.apply(secret("git-creds", username="platform-bot", password="token-1234"))
        await platform.apply(
            {
                "apiVersion": KRATIX,
                "kind": "GitStateStore",
                "metadata": {"name": "fleet"},
                "spec": {
                    "url": server.url("fleet.git"),
                    "branch": "main",
                    "path": "platform",
                    "secretRef": {"name": "git-creds", "namespace": "default"},
                },
            }
        )
        await platform.apply(destination("dev", store="fleet", path="/clusters/dev/"))
        await eventually(
            lambda: platform.get("destination", "dev"),
            lambda d: condition(d, "Ready").get("status") == "True",
            what="canaries written",
        )

        response = await api.get("/objects/destination/dev/manifests", params={"gitops": "flux"})
        assert response.status_code == 200, response.text
        flux = response.json()
        assert [d["kind"] for d in flux] == ["GitRepository", "Kustomization", "Kustomization"]
        source, dependencies, resources = flux
        assert source["spec"]["url"] == server.url("fleet.git") and source["spec"]["secretRef"] == {"name": "git-creds"}
        assert dependencies["spec"]["path"] == "./platform/clusters/dev/dependencies"
        assert resources["spec"]["path"] == "./platform/clusters/dev/resources"
        assert resources["spec"]["dependsOn"] == [{"name": dependencies["metadata"]["name"]}]
        # What Flux will apply is what the platform wrote: each canary lies under the Kustomization meant for it.
        files = remote_files(remote)
        assert "platform/clusters/dev/dependencies/kratix-canary-namespace.yaml" in files
        assert "platform/clusters/dev/resources/kratix-canary-configmap.yaml" in files

        argocd = (await api.get("/objects/destination/dev/manifests", params={"gitops": "argocd"})).json()
        assert [(a["kind"], a["spec"]["source"]["path"]) for a in argocd] == [
            ("Application", "platform/clusters/dev/dependencies"),
            ("Application", "platform/clusters/dev/resources"),
        ]

        # The CLI prints the same documents as multi-document YAML, ready for `kubectl apply -f -`.
        code, out, err = await run_cli(capsys, "destination", "manifests", "dev", "--gitops", "flux")
        assert code == 0, err
        assert out.startswith("---\n") and list(yaml.safe_load_all(out)) == flux
        code, out, _ = await run_cli(capsys, "dest", "manifests", "dev", "--gitops", "argocd")
        assert list(yaml.safe_load_all(out)) == argocd

    unknown = await api.get("/objects/destination/nowhere/manifests")
    assert unknown.status_code == 404 and 'destination "nowhere" not found' in unknown.json()["detail"]
    code, _, err = await run_cli(capsys, "destination", "manifests", "nowhere")
    assert code == 1 and 'destination "nowhere" not found' in err
    bad = await api.get("/objects/destination/dev/manifests", params={"gitops": "jenkins"})
    assert bad.status_code == 422 and "'flux' or 'argocd'" in bad.text


async def test_argocd_is_refused_a_bucket_store_with_the_reason(
    platform: Platform, api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    store: dict[str, Any] = {
        "apiVersion": KRATIX,
        "kind": "BucketStateStore",
        "metadata": {"name": "s3"},
        "spec": {
            "bucketName": "kratix",
            "endpoint": "127.0.0.1:9",
            "insecure": True,
            "path": "fleet",
            "authMethod": "accessKey",
            "secretRef": {"name": "s3-creds", "namespace": "default"},
        },
    }
    await platform.apply(store)
    await platform.apply(destination("edge", store="s3", kind="BucketStateStore", filepath={"mode": "aggregatedYAML"}))

    refused = await api.get("/objects/destination/edge/manifests", params={"gitops": "argocd"})
    assert refused.status_code == 422
    body = refused.json()
    assert "ArgoCD reads Git repositories only" in body["message"]
    assert body["errors"][0]["field"] == "spec.stateStoreRef.kind"
    code, _, err = await run_cli(capsys, "destination", "manifests", "edge", "--gitops", "argocd")
    assert code == 1 and "ArgoCD reads Git repositories only" in err

    flux = (await api.get("/objects/destination/edge/manifests", params={"gitops": "flux"})).json()
    assert [d["kind"] for d in flux] == ["Bucket", "Kustomization"]
    assert flux[0]["spec"] == {
        "interval": "1m",
        "provider": "generic",
        "bucketName": "kratix",
        "endpoint": "127.0.0.1:9",
        "insecure": True,
        "secretRef": {"name": "s3-creds"},
    }
    assert flux[1]["spec"]["path"] == "./fleet/edge"
