"""Pipelines reach the platform exactly as a Kratix pipeline Pod does, end to end on the podman runner: the API serves
Kubernetes over HTTPS on a free port (its real listeners, CA and certificate as `ktx up` makes them), the worker runs
real containers that find the ServiceAccount files and KUBERNETES_SERVICE_* and call the API with clients nobody here
wrote: kratix-sdk's publish_status and read_resource_input, and kubectl. What a pipeline was not granted is a 403."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.app import create_app
from api.listeners import Listeners
from cli import kube_credentials
from cli.main import describe
from cli.stack import free_port
from service.platform import Platform
from tests.conftest import read_remote
from tests.integration.test_destinations import install
from tests.kratix_documents import GROUP, get, pipeline_entry, promise, resource
from tests.waiting import eventually
from tests.integration.test_kube_runner import ADAPTER, NAMESPACE, kube  # noqa: F401  (kube is the fixture)
from tests.servers.kube_jobs import FakeKube
from worker.settings import KubeRunnerSettings, Settings

CLIENT = "localhost/ktx-test/kratix-client:v0.1.0"

# Exactly as the Kratix SDK's documentation shows it (PyPI kratix-sdk 0.4.3, README): read the request, publish a
# status mid-run; then a file in the output so there is something to deliver.
SDK_SCRIPT = """
import kratix_sdk as ks
import yaml

sdk = ks.KratixSDK()
resource = sdk.read_resource_input()
size = resource.get_value("spec.size")

status = ks.Status()
status.set("phase", "updates-from-mid-stage")
status.set("size", size)
sdk.publish_status(resource, status)

manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": resource.get_name()}, "data": {"size": size}}
sdk.write_output("configmap.yaml", yaml.safe_dump(manifest).encode("utf-8"))
"""

# kubectl with nothing but in-cluster config: each command's exit code, output and last line of stderr (where kubectl
# puts the server's refusal; never a Secret's value: only its name is asked for), written as a ConfigMap the test
# reads back from the state store.
KUBECTL_SCRIPT = """
import json, subprocess, sys, yaml
results = {}
for key, args in json.loads(sys.argv[1]).items():
    done = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=60)
    results[key] = {"code": done.returncode, "out": done.stdout.strip(), "err": done.stderr.strip().splitlines()[-1:]}
doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "results"}, "data": {"json": json.dumps(results)}}
open("/kratix/output/results.yaml", "w").write(yaml.safe_dump(doc))
"""

COMMANDS = {
    "secret": ["get", "secret", "db-creds", "-o", "name"],
    "other-secret": ["get", "secret", "not-granted", "-o", "name"],
    "database": ["get", "databases", "shared", "-o", "jsonpath={.spec.engine}"],
    "other-team": ["get", "databases", "shared", "-n", "team-b", "-o", "name"],
    "can-i-secret": ["auth", "can-i", "get", "secret/db-creds"],
    "can-i-list-secrets": ["auth", "can-i", "list", "secrets"],
    "whoami": ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
}


def client_pipeline(
    name: str,
    script: str,
    *args: str,
    permissions: list[dict[str, Any]] | None = None,
    service_account: str | None = None,
) -> dict:
    spec: dict[str, Any] = {
        "containers": [{"name": "client", "image": CLIENT, "command": ["python3", "-c", script], "args": list(args)}]
    }
    if permissions is not None:
        spec["rbac"] = {"permissions": permissions}
    if service_account is not None:
        spec.setdefault("rbac", {})["serviceAccount"] = service_account
    return {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": name}, "spec": spec}


def secret(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"password": f"value-of-{name}"},
    }


@asynccontextmanager
async def serving(
    platform_factory, tmp_path: Path, port: int | None = None, **settings: Any
) -> AsyncIterator[Platform]:
    """A platform whose API serves Kubernetes over HTTPS on `port` (a free one by default), which the worker's
    pipelines are given."""
    credentials = kube_credentials.ensure(tmp_path / "kube-home", [])
    port = port or free_port()
    common: dict[str, Any] = {
        "kube_api_host": "127.0.0.1",
        "kube_api_port": port,
        "kube_api_tls_cert": credentials.cert,
        "kube_api_tls_key": credentials.key,
        "kube_api_tls_ca": credentials.ca,
        "api_admin_token_file": credentials.admin_token,
        "pipeline_token_key_file": tmp_path / "pipeline-token.key",
    }
    platform = await platform_factory(settings={**common, **settings})
    api_settings = Settings(
        # The worker's home (tests/conftest.py names it after the namespace): one secret store for both.
        home=tmp_path / f"ktx-home-{platform.client.namespace}",
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
        api_port=free_port(),
        **common,
    )
    listeners = Listeners(api_settings, create_app(api_settings))
    serve = asyncio.create_task(listeners.serve())

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    await eventually(listening, what="the HTTPS listener")
    try:
        yield platform
    finally:
        listeners.stop()
        await serve


@pytest.fixture
async def reachable(platform_factory, tmp_path: Path, pipeline_images) -> AsyncIterator[Platform]:
    async with serving(platform_factory, tmp_path, pipeline_network="none") as platform:
        yield platform


async def results(remote: Path, kind: str, name: str, pipeline: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    written = read_remote(remote, f"dev/resources/default/{plural}/{name}/{pipeline}/5058f/results.yaml")
    return json.loads(yaml.safe_load(written)["data"]["json"])


async def test_kratix_sdk_publish_status_and_read_resource_input(reachable: Platform, git_remote: Path) -> None:
    platform = reachable
    await install(platform, git_remote, "caches", "Cache", client_pipeline("sdk", SDK_SCRIPT))
    await platform.apply(resource("Cache", "one", {"size": "large"}))
    done = await eventually(
        lambda: get(platform, "caches", "one"),
        lambda o: pipeline_entry(o, "sdk").get("phase") in ("Succeeded", "Failed"),
        what="the pipeline finished",
        timeout=180,
    )
    assert pipeline_entry(done, "sdk")["phase"] == "Succeeded", pipeline_entry(done, "sdk")
    # What the pipeline published through the API is the request's status, beside what the platform keeps there.
    assert done["status"]["phase"] == "updates-from-mid-stage", done["status"]
    assert done["status"]["size"] == "large"
    delivered = yaml.safe_load(read_remote(git_remote, "dev/resources/default/caches/one/sdk/5058f/configmap.yaml"))
    assert delivered["data"] == {"size": "large"}


async def test_kubectl_in_a_pipeline_gets_what_rbac_permissions_grant_and_403_for_the_rest(
    reachable: Platform, git_remote: Path
) -> None:
    platform = reachable
    for doc in (secret("db-creds"), secret("not-granted"), secret("db-creds", "team-b")):
        await platform.apply(doc)
    # Another Promise's kind, with a request in the pipeline's namespace and one in another team's.
    await platform.apply(promise("databases", "Database"))
    await platform.wait_condition("promise", "databases", "default", "Available", timeout=60)
    for namespace in ("default", "team-b"):
        await platform.apply(resource("Database", "shared", {"engine": "postgres"}, namespace=namespace))
    granted = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db-creds"]},
        {"apiGroups": [GROUP], "resources": ["databases"], "verbs": ["get", "list"]},
    ]
    await install(
        platform,
        git_remote,
        "apps",
        "App",
        client_pipeline("kubectl", KUBECTL_SCRIPT, json.dumps(COMMANDS), permissions=granted),
    )
    await platform.apply(resource("App", "one"))
    await platform.wait_condition("apps", "one", "default", "Reconciled", timeout=180)
    got = await results(git_remote, "App", "one", "kubectl")

    assert got["whoami"]["out"] == "system:serviceaccount:default:apps-resource-configure-kubectl", got["whoami"]
    assert got["secret"] == {"code": 0, "out": "secret/db-creds", "err": []}, got["secret"]
    assert got["database"] == {"code": 0, "out": "postgres", "err": []}, got["database"]
    assert got["can-i-secret"]["out"] == "yes"
    assert got["can-i-list-secrets"]["out"].startswith("no")
    for refused in ("other-secret", "other-team"):
        assert got[refused]["code"] != 0
        assert got[refused]["err"][0].startswith("Error from server (Forbidden)"), got[refused]
    assert "not-granted" in got["other-secret"]["err"][0] and "team-b" in got["other-team"]["err"][0]


async def test_a_named_service_account_is_the_tokens_identity_with_the_pipelines_rules(
    reachable: Platform, git_remote: Path
) -> None:
    """rbac.serviceAccount on podman: kubectl sees the named account, granted what the Pipeline's rules grant (Kratix
    binds them to the named account too); describe and a Warning event say that other RBAC bound to an account of
    that name is not applied, as the platform API serves no RBAC objects."""
    platform = reachable
    for doc in (secret("db-creds"), secret("not-granted")):
        await platform.apply(doc)
    granted = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db-creds"]}]
    await install(
        platform,
        git_remote,
        "apps",
        "App",
        client_pipeline(
            "kubectl", KUBECTL_SCRIPT, json.dumps(COMMANDS), permissions=granted, service_account="deployer"
        ),
    )
    await platform.apply(resource("App", "one"))
    await platform.wait_condition("apps", "one", "default", "Reconciled", timeout=180)
    got = await results(git_remote, "App", "one", "kubectl")
    assert got["whoami"]["out"] == "system:serviceaccount:default:deployer", got["whoami"]
    assert got["secret"] == {"code": 0, "out": "secret/db-creds", "err": []}, got["secret"]
    assert got["other-secret"]["err"][0].startswith("Error from server (Forbidden)"), got["other-secret"]
    assert "system:serviceaccount:default:deployer" in got["other-secret"]["err"][0]
    text = describe(await get(platform, "apps", "one"))
    assert "spec.rbac.serviceAccount: the token is system:serviceaccount:default:deployer" in text, text
    assert "not applied on the podman runner" in text
    events = [
        e for e in (await get(platform, "apps", "one"))["_ktx"]["events"] if e["reason"] == "PipelineFieldsIgnored"
    ]
    assert events and "spec.rbac.serviceAccount" in events[0]["message"], events


async def test_without_rbac_permissions_a_pipeline_gets_403_for_secrets_and_other_promises(
    reachable: Platform, git_remote: Path
) -> None:
    platform = reachable
    await platform.apply(secret("db-creds"))
    await platform.apply(promise("databases", "Database"))
    await platform.wait_condition("promise", "databases", "default", "Available", timeout=60)
    await platform.apply(resource("Database", "shared", {"engine": "postgres"}))
    await install(platform, git_remote, "apps", "App", client_pipeline("kubectl", KUBECTL_SCRIPT, json.dumps(COMMANDS)))
    await platform.apply(resource("App", "one"))
    await platform.wait_condition("apps", "one", "default", "Reconciled", timeout=180)
    got = await results(git_remote, "App", "one", "kubectl")

    for refused in ("secret", "database", "other-team"):
        assert got[refused]["code"] != 0
        assert got[refused]["err"][0].startswith("Error from server (Forbidden)"), got[refused]
    assert got["can-i-secret"]["out"].startswith("no")


async def test_on_the_kubernetes_runner_a_pod_publishes_status_through_the_platform_api(
    platform_factory,
    kube: FakeKube,  # noqa: F811  (the fixture)
    s3_server,
    s3_bucket: str,
    git_remote: Path,
    tmp_path: Path,
) -> None:
    """The same kratix-sdk pipeline as a Job's Pod (the stand-in kubelet runs it with podman on the host's network):
    its ServiceAccount files come from the run's Secret, KUBERNETES_SERVICE_* name the platform API's Service."""
    port = free_port()
    runner = KubeRunnerSettings(
        namespace=NAMESPACE,
        adapter_image=ADAPTER,
        transfer_bucket=s3_bucket,
        transfer_endpoint=f"http://{s3_server.endpoint}",
        platform_api_host="127.0.0.1",
        platform_api_port=port,
    )
    async with serving(platform_factory, tmp_path, port, pipeline_runner="kubernetes", kube=runner) as platform:
        await install(platform, git_remote, "caches", "Cache", client_pipeline("sdk", SDK_SCRIPT))
        await platform.apply(resource("Cache", "one", {"size": "small"}))
        done = await eventually(
            lambda: get(platform, "caches", "one"),
            lambda o: pipeline_entry(o, "sdk").get("phase") in ("Succeeded", "Failed"),
            what="the pipeline finished",
            timeout=180,
        )
        assert pipeline_entry(done, "sdk")["phase"] == "Succeeded", pipeline_entry(done, "sdk")
        assert done["status"]["phase"] == "updates-from-mid-stage" and done["status"]["size"] == "small"
    (job,) = kube.created
    (secret_volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if "projected" in v]
    assert secret_volume["projected"]["sources"][0]["secret"]["name"] == f"{job['metadata']['name']}-platform-api"
    # Settled: the run's Secret is gone with its token.
    assert kube.secrets == {}
