"""Probe and scrape endpoints of the API and the worker, against a real Temporal dev server and real pipelines."""

from __future__ import annotations

import importlib
import socket
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable
from typing import Any, AsyncIterator

import httpx
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import activities.metrics
from api.app import create_app
from service.platform import Platform
from tests.integration.test_resource_lifecycle import example, store_and_destination
from tests.kratix_documents import eventually
from worker.health import HealthServer
from worker.main import build_worker
from worker.settings import Settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@asynccontextmanager
async def api_for(platform: Platform, home: Path, **overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app, with its lifespan, connected to the platform's namespace and task queue."""
    settings = Settings(
        home=home,
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
        **overrides,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ktx", timeout=150) as http,
    ):
        yield app, http


async def fulfil_app_config(http: httpx.AsyncClient, remote: Path) -> None:
    """Through the API: a store and Destination, the app-config Promise, one resource request, each reconciled."""
    response = await http.post(
        "/apply", content=yaml.safe_dump_all([*store_and_destination(remote), example("promise.yaml")])
    )
    assert response.status_code == 200, response.text
    wait = await http.get("/objects/promise/app-config/wait", params={"condition": "Available", "timeout": 120})
    assert wait.status_code == 200, wait.text
    response = await http.post("/apply", content=yaml.safe_dump(example("resource-request.yaml")))
    assert response.status_code == 200, response.text
    wait = await http.get(
        "/objects/appconfig/checkout/wait", params={"namespace": "default", "condition": "Reconciled", "timeout": 120}
    )
    assert wait.status_code == 200, wait.text


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_api_probes_and_request_metrics(platform: Platform, tmp_path: Path) -> None:
    async with api_for(platform, tmp_path) as (app, http):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        assert (await http.get("/objects/promise/no-such-promise")).status_code == 404
        assert (await http.get("/no/such/path/12345")).status_code == 404

        text = await scrape(http)
        # Routes are templates, and a path no route matches is one label value, whatever was asked for.
        assert (
            metric_value(text, "ktx_api_requests_total", method="GET", route="/objects/{kind}/{name}", status="404")
            >= 1
        )
        assert metric_value(text, "ktx_api_requests_total", method="GET", route="/readyz", status="200") >= 1
        assert metric_value(text, "ktx_api_requests_total", method="GET", route="unmatched", status="404") >= 1
        assert "no-such-promise" not in text and "12345" not in text
        for family in (
            "ktx_pipelines_run",
            "ktx_pipelines_failed",
            "ktx_pipeline_duration_seconds",
            "ktx_state_store_writes",
            "ktx_state_store_write_seconds",
            "ktx_actions",
        ):
            assert f"# HELP {family}" in text

        # The same app, its Temporal server unreachable: not ready, and it says why.
        target = f"127.0.0.1:{closed_port()}"
        app.state.platform = Platform(
            await Client.connect(target, lazy=True), platform.task_queue, app.state.platform.secrets
        )
        started = time.monotonic()
        unready = await http.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["status"] == "not ready"
        assert f"Temporal at {target} is unreachable" in unready.json()["reason"]
        assert time.monotonic() - started < 3


async def deltas_over_app_config(platform: Platform, tmp_path: Path, git_remote: Path) -> Callable[..., float]:
    """How each metric moved while the app-config example was fulfilled through the API."""
    async with api_for(platform, tmp_path) as (_, http):
        before = await scrape(http)
        await fulfil_app_config(http, git_remote)
        # In one process the API serves the registry the worker's activities write to (in production: the
        # worker's port).
        after = await scrape(http)

    def delta(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    return delta


async def test_state_store_writes_are_counted(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    delta = await deltas_over_app_config(platform, tmp_path, git_remote)

    assert delta("ktx_state_store_writes_total", kind="git", result="committed") >= 1
    assert delta("ktx_state_store_writes_total", kind="git", result="failed") == 0
    assert delta("ktx_state_store_writes_total", kind="bucket") == 0
    # Every counted write was timed.
    assert delta("ktx_state_store_write_seconds_count", kind="git") == delta("ktx_state_store_writes_total", kind="git")


async def test_pipeline_runs_are_counted(platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path) -> None:
    delta = await deltas_over_app_config(platform, tmp_path, git_remote)

    resource = {"workflow_type": "resource", "action": "configure", "runner": "podman"}
    assert delta("ktx_pipelines_run_total", promise="app-config", workflow_type="promise", action="configure") >= 1
    assert delta("ktx_pipelines_run_total", promise="app-config", **resource) == 1
    assert delta("ktx_pipelines_failed_total", promise="app-config") == 0
    assert delta("ktx_pipeline_duration_seconds_count", **resource) == 1


async def test_worker_probes(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    client = temporal_env.client
    workers = build_worker(client, Settings(home=tmp_path, task_queue=f"ktx-health-{time.time_ns()}"))
    async with (
        HealthServer(client, workers, "127.0.0.1", 0) as health,
        httpx.AsyncClient(base_url="http://{}:{}".format(*health.address), timeout=10) as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        unready = await http.get("/readyz")
        assert unready.status_code == 503
        assert unready.json() == {"status": "not ready", "reason": "the Temporal workers are not running"}
        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE ktx_state_store_writes_total counter" in metrics.text
        assert (await http.get("/nothing-here")).status_code == 404

        async with workers:
            # Ready once the workers have validated their namespace with the server and started polling.
            await eventually(lambda: http.get("/readyz"), lambda r: r.status_code == 200, timeout=30, what="readiness")
            assert (await http.get("/readyz")).json() == {"status": "ready"}

            # The same running workers, but a Temporal server that does not answer.
            target = f"127.0.0.1:{closed_port()}"
            unreachable = await Client.connect(target, lazy=True)
            async with HealthServer(unreachable, workers, "127.0.0.1", 0) as other:
                response = await http.get("http://{}:{}/readyz".format(*other.address))
                assert response.status_code == 503
                assert f"Temporal at {target} is unreachable" in response.json()["reason"]

            # The probes are answered off the event loop: with the loop blocked, liveness still answers and
            # readiness says the loop is stuck instead of hanging.
            base = "http://{}:{}".format(*health.address)
            assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
            stuck = httpx.get(f"{base}/readyz", timeout=10)
            assert stuck.status_code == 503
            assert "event loop did not answer" in stuck.json()["reason"]
            assert (await http.get("/readyz")).status_code == 200

        stopped = await http.get("/readyz")
        assert (stopped.status_code, stopped.json()["reason"]) == (503, "the Temporal workers are not running")


def test_metrics_survive_a_second_load() -> None:
    counter = activities.metrics.STATE_STORE_WRITES
    importlib.reload(activities.metrics)
    assert activities.metrics.STATE_STORE_WRITES is counter
