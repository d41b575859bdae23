"""Kratix's system test 1.8 (pipelineNamespace with rbac.permissions) on the podman runner, through the pipeline token:
kubectl in a real container, against the platform API over HTTPS, is the ServiceAccount Kratix would make in the
Promise's pipelineNamespace, holds what Kratix binds there (its own kind across namespaces, the permission in the
pipeline namespace), and gets 403 for the rest."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.platform import Platform
from tests.e2e.test_pipelines_reach_the_platform import KUBECTL_SCRIPT, client_pipeline, results, secret, serving
from tests.integration.test_destinations import destination, git_store, ready
from tests.kratix_documents import GROUP, promise, resource

COMMANDS = {
    "whoami": ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
    # kubectl's namespace is the ServiceAccount's: the pipeline namespace.
    "secret": ["get", "secret", "db-creds", "-o", "name"],
    "resource-namespace-secret": ["get", "secret", "db-creds", "-n", "default", "-o", "name"],
    # The resource is in `default`, its pipeline in `pipelines-ns`: Kratix's ClusterRole on the kind reaches it.
    "own": ["get", f"apps.{GROUP}", "one", "-n", "default", "-o", "name"],
    "can-i-secrets-there": ["auth", "can-i", "get", "secrets", "-n", "default"],
}


@pytest.fixture
async def reachable(platform_factory, tmp_path: Path, pipeline_images) -> AsyncIterator[Platform]:
    async with serving(platform_factory, tmp_path, pipeline_network="none") as platform:
        yield platform


async def test_a_pipeline_namespace_is_where_the_pipeline_is_and_what_its_permissions_bind(
    reachable: Platform, git_remote: Path
) -> None:
    platform = reachable
    for doc in (secret("db-creds", "pipelines-ns"), secret("db-creds")):
        await platform.apply(doc)
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await ready(platform, "dev")
    granted = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db-creds"]}]
    doc = promise(
        "apps",
        "App",
        configure=[client_pipeline("kubectl", KUBECTL_SCRIPT, json.dumps(COMMANDS), permissions=granted)],
    )
    doc["spec"]["workflows"]["config"] = {"pipelineNamespace": "pipelines-ns"}
    await platform.apply(doc)
    await platform.wait_condition("promise", "apps", "default", "Available", timeout=60)
    await platform.apply(resource("App", "one"))
    await platform.wait_condition("apps", "one", "default", "Reconciled", timeout=180)
    got = await results(git_remote, "App", "one", "kubectl")

    assert got["whoami"]["out"] == "system:serviceaccount:pipelines-ns:apps-resource-configure-kubectl", got
    assert got["secret"] == {"code": 0, "out": "secret/db-creds", "err": []}, got["secret"]
    assert got["own"] == {"code": 0, "out": f"app.{GROUP}/one", "err": []}, got["own"]
    refused = got["resource-namespace-secret"]
    assert refused["code"] != 0 and refused["err"][0].startswith("Error from server (Forbidden)"), refused
    assert got["can-i-secrets-there"]["out"].startswith("no")
