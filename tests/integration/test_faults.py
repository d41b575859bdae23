"""Fault injection: a worker killed mid-pipeline, Temporal restarted, the Git remote and the S3 server gone for a while,
two workers at once. Each test waits on conditions (status, files on the remote) and is bounded by their timeouts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.stores.secrets import secret_store_for
from service.platform import Platform
from tests.conftest import PIPELINE_RUNNER, ROOT, TEST_CONFIG, fresh_namespace, push_by_hand, remote_files, temporal_cli
from tests.integration.test_destinations import KRATIX, destination, install, ready
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource
from tests.servers.git_servers import free_port, wait_listening
from tests.servers.s3_server import WRITER, SeaweedS3
from worker.main import build_worker, ensure_search_attributes
from worker.settings import Settings

TEST_ENV = {
    "KTX_PIPELINE_RUNNER": PIPELINE_RUNNER,
    "KTX_PIPELINE_BACKOFF": "50ms",
    "KTX_DEFAULT_BACKOFF_LIMIT": "1",
    "KTX_DELETE_RETRY": "500ms",
    "KTX_WRITE_RETRY": "500ms",
}


def slow_writer(name: str, seconds: float) -> dict[str, Any]:
    return pipeline(name, SLEEP=str(seconds), FILES={"cm.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}})


def output_path(promise_name: str, name: str, pipeline_name: str, destination_name: str = "dev") -> str:
    return f"{destination_name}/resources/default/{promise_name}/{name}/{pipeline_name}/5058f/cm.yaml"


def commits_touching(remote: Path, path: str) -> int:
    out = subprocess.run(
        ["git", "--git-dir", str(remote), "log", "--format=%H", "main", "--", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return len(out.split())


def running_containers(suffix: str) -> list[str]:
    if PIPELINE_RUNNER == "oci":
        # runc keeps a state directory named by each container, under each worker's state directory.
        return [p.name for p in Path("/run/ktx-oci").glob("*/ktx-*") if p.name.endswith(suffix)]
    names = subprocess.run(
        ["podman", "ps", "--format", "{{.Names}}"], check=True, capture_output=True, text=True
    ).stdout
    return [n for n in names.split() if n.endswith(suffix)]


async def namespace_client(address: str, namespace: str) -> Client:
    client = await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
    await ensure_search_attributes(client)
    return client


async def failed_activities(client: Client) -> list[str]:
    """Every failed activity attempt: retried ones show in history only as a later attempt's `last_failure`."""
    failures = []
    async for execution in client.list_workflows():
        async for event in client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history_events():
            started = event.activity_task_started_event_attributes
            if event.HasField("activity_task_started_event_attributes") and started.attempt > 1:
                failures.append(f"{execution.id}: {started.last_failure.message}")
            if event.HasField("activity_task_failed_event_attributes"):
                failures.append(f"{execution.id}: {event.activity_task_failed_event_attributes.failure.message}")
    return failures


class WorkerProcess:
    """`python -m worker` as a separate process, so it can be killed the way a node dies."""

    def __init__(self, address: str, namespace: str, home: Path, **env: str):
        self.health_port = free_port()
        self.home = home
        self.env = {
            **os.environ,
            **TEST_ENV,
            "KTX_TEMPORAL_ADDRESS": address,
            "KTX_TEMPORAL_NAMESPACE": namespace,
            "KTX_TASK_QUEUE": f"ktx-{namespace}",
            "KTX_HOME": str(home),
            "KTX_WORKER_HEALTH_PORT": str(self.health_port),
            **env,
        }
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    async def start(self) -> "WorkerProcess":
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        await eventually(self._ready, lambda ok: ok, timeout=60, what=f"worker ready (log: {self.home / 'worker.log'})")
        return self

    async def _ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (self.home / "worker.log").read_text()[-3000:]
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


class DevServer:
    """A Temporal dev server of its own, persisted to a file, that a test may stop and start again on the same port."""

    def __init__(self, db: Path):
        self.db = db
        self.port = free_port()
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "DevServer":
        self.process = subprocess.Popen(
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--http-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--db-filename",
                str(self.db),
                "--log-level",
                "error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.db.parent / "temporal.log").open("ab"),
        )
        wait_listening(self.port, self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "api")


async def test_a_worker_killed_mid_pipeline_is_replaced_and_the_result_is_committed_once(
    temporal_env, tmp_path: Path, git_remote: Path, api_settings: Settings, pipeline_images
) -> None:
    address = temporal_env.client.service_client.config.target_host
    namespace = await fresh_namespace(temporal_env.client)
    platform = Platform(await namespace_client(address, namespace), f"ktx-{namespace}", secret_store_for(api_settings))
    first = await WorkerProcess(address, namespace, tmp_path / "first").start()
    second = WorkerProcess(address, namespace, tmp_path / "second")
    try:
        await install(platform, git_remote, "durable", "Durable", slow_writer("survivor", 8))
        await platform.apply(resource("Durable", "one"))
        await eventually(lambda: running_containers("-survivor-c"), bool, what="the pipeline container running")
        first.kill()
        await second.start()
        done = await eventually(
            lambda: get(platform, "durable", "one"),
            lambda o: condition(o, "Reconciled").get("status") == "True",
            timeout=180,
            what="Reconciled",
        )
        assert condition(done, "WorksSucceeded").get("status") == "True"
    finally:
        first.stop()
        second.stop()
    path = output_path("durable", "one", "survivor")
    assert path in remote_files(git_remote)
    assert commits_touching(git_remote, path) == 1
    # The replacement ran the pipeline itself: the first worker died before it could report.
    assert list((tmp_path / "second" / "logs").rglob("survivor-c.log"))


async def test_temporal_restarted_mid_run_loses_no_request(
    tmp_path: Path, git_remote: Path, api_settings: Settings, pipeline_images
) -> None:
    server = DevServer(tmp_path / "temporal.db").start()
    try:
        client = await namespace_client(server.address, "default")
        settings = Settings(
            home=tmp_path / "worker", temporal_address=server.address, task_queue="ktx-restart", platform=TEST_CONFIG
        )
        async with build_worker(client, settings):
            platform = Platform(client, settings.task_queue, secret_store_for(api_settings))
            await install(platform, git_remote, "steady", "Steady", slow_writer("slow", 3))
            names = [f"r{i}" for i in range(5)]
            for name in names:
                await platform.apply(resource("Steady", name))
            await eventually(lambda: running_containers("-slow-c"), bool, what="pipelines running")
            server.kill()
            await asyncio.to_thread(server.start)
            for name in names:
                await eventually(
                    lambda: get(platform, "steady", name),
                    lambda o: condition(o, "Reconciled").get("status") == "True",
                    timeout=180,
                    what=f"{name} Reconciled after the restart",
                )
        files = remote_files(git_remote)
        assert [n for n in names if output_path("steady", n, "slow") not in files] == []
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


async def test_an_unreachable_git_remote_and_an_outside_commit_converge(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    await install(platform, git_remote, "patient", "Patient", slow_writer("write", 0))
    away = git_remote.with_name("away.git")
    git_remote.rename(away)
    await platform.apply(resource("Patient", "one"))
    failing = await eventually(
        lambda: get(platform, "patient", "one"),
        lambda o: condition(o, "WorksSucceeded").get("reason") == "WorksFailing",
        what="WorksFailing",
    )
    assert str(git_remote) in condition(failing, "WorksSucceeded")["message"]
    # Meanwhile someone commits to the branch by another way in.
    push_by_hand(away, tmp_path / "outside", "outside.txt", "by hand\n", "outside commit")
    away.rename(git_remote)
    await eventually(
        lambda: get(platform, "patient", "one"),
        lambda o: condition(o, "WorksSucceeded").get("status") == "True",
        what="WorksSucceeded once the remote is back",
    )
    files = remote_files(git_remote)
    assert output_path("patient", "one", "write") in files and "outside.txt" in files
    assert commits_touching(git_remote, output_path("patient", "one", "write")) == 1


async def test_a_stopped_s3_server_shows_in_status_and_writes_land_once_it_is_back(
    platform: Platform, tmp_path: Path, pipeline_images
) -> None:
    from tests.integration.test_state_store_credentials import objects, secret

    s3 = await asyncio.to_thread(SeaweedS3(tmp_path / "seaweed").start)
    try:
        s3.client().create_bucket(Bucket="fleet")
        await platform.apply(secret("s3-creds", accessKeyID=WRITER[0], secretAccessKey=WRITER[1]))
        await platform.apply(
            {
                "apiVersion": KRATIX,
                "kind": "BucketStateStore",
                "metadata": {"name": "bucket"},
                "spec": {
                    "endpoint": s3.endpoint,
                    "bucketName": "fleet",
                    "insecure": True,
                    "authMethod": "accessKey",
                    "secretRef": {"name": "s3-creds", "namespace": "default"},
                },
            }
        )
        await platform.apply(destination("edge", kind="BucketStateStore", store="bucket"))
        await ready(platform, "edge")
        await platform.apply(promise("objects", "Objects", configure=[slow_writer("write", 0)]))
        await platform.wait_condition("promise", "objects", "default", "Available", timeout=60)
        await asyncio.to_thread(s3.stop)
        await platform.apply(resource("Objects", "one"))
        failing = await eventually(
            lambda: get(platform, "objects", "one"),
            lambda o: condition(o, "WorksSucceeded").get("reason") == "WorksFailing",
            what="WorksFailing",
        )
        assert s3.endpoint in condition(failing, "WorksSucceeded")["message"]
        await asyncio.to_thread(s3.start)  # off the loop: the platform's worker runs on it
        await eventually(
            lambda: get(platform, "objects", "one"),
            lambda o: condition(o, "WorksSucceeded").get("status") == "True",
            what="WorksSucceeded once S3 is back",
        )
        assert output_path("objects", "one", "write", "edge") in objects(s3.client(), "fleet")
    finally:
        s3.stop()


async def test_two_workers_share_the_work_without_losing_or_repeating_a_write(
    temporal_env,
    tmp_path: Path,
    git_remote: Path,
    api_settings: Settings,
    s3_server,
    s3_bucket: str,
    pipeline_images,
    s3_worker_credentials,
) -> None:
    # Separate homes, as two Pods have: pipeline outputs reach the other worker's writes through the artifact bucket.
    namespace = await fresh_namespace(temporal_env.client)
    address = temporal_env.client.service_client.config.target_host
    homes = [tmp_path / "first", tmp_path / "second"]
    async with AsyncExitStack() as stack:
        for home in homes:
            # A connection each, as two processes would have (the SDK allows one worker per queue per connection).
            client = await namespace_client(address, namespace)
            settings = Settings(
                home=home,
                temporal_namespace=namespace,
                task_queue=f"ktx-{namespace}",
                pipeline_concurrency=2,
                artifact_bucket=s3_bucket,
                artifact_endpoint=f"http://{s3_server.endpoint}",
                platform=TEST_CONFIG,
            )
            await stack.enter_async_context(build_worker(client, settings))
        platform = Platform(client, f"ktx-{namespace}", secret_store_for(api_settings))
        await install(platform, git_remote, "shared", "Shared", slow_writer("write", 0.5))
        names = [f"r{i:02d}" for i in range(16)]
        for name in names:
            await platform.apply(resource("Shared", name))
        for name in names:
            await eventually(
                lambda: get(platform, "shared", name),
                lambda o: condition(o, "WorksSucceeded").get("status") == "True",
                timeout=180,
                what=f"{name} written",
            )
        # Retries would hide a write that could not find its output on the worker it landed on: none may have failed.
        assert await failed_activities(client) == []
    files = remote_files(git_remote)
    assert [n for n in names if output_path("shared", n, "write") not in files] == []
    assert {n: commits_touching(git_remote, output_path("shared", n, "write")) for n in names} == {n: 1 for n in names}
    ran = [len(list((home / "logs").rglob("write-c.log"))) for home in homes]
    assert all(ran) and sum(ran) >= len(names), f"pipelines run per worker: {ran}"
