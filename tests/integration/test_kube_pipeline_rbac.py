"""Kratix's system tests 1.12 (rbac_test.go) and 1.8 (pipelineNamespace, promise_features_test.go) on the Kubernetes
runner: real workflows and the real `kubernetes` client against tests/servers/kube_jobs.py, whose API server keeps
ServiceAccounts and RBAC objects (schema-checked) and gives no Pod to a Job whose ServiceAccount does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.platform import Platform
from tests.integration import test_kube_runner
from tests.integration.test_kube_runner import ADAPTER, NAMESPACE
from tests.kratix_documents import condition, eventually, git_store_and_destinations, pipeline, promise, resource
from tests.servers.kube_jobs import FakeKube
from worker.settings import KubeRunnerSettings

# The stand-in API server, as the runner's own tests start it.
kube = test_kube_runner.kube
USER_LABELS = ("kratix.io/pipeline-name", "kratix.io/pipeline-namespace", "kratix.io/promise-name")


@pytest.fixture
async def rbac_platform(platform_factory, kube: FakeKube, s3_server, s3_bucket: str, git_remote: Path) -> Platform:
    settings = KubeRunnerSettings(
        namespace=NAMESPACE,
        adapter_image=ADAPTER,
        pipeline_rbac=True,
        stuck_grace_s=5,
        transfer_bucket=s3_bucket,
        transfer_endpoint=f"http://{s3_server.endpoint}",
    )
    platform = await platform_factory(settings={"pipeline_runner": "kubernetes", "kube": settings})
    for doc in git_store_and_destinations(git_remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(doc)
    return platform


def _with_permissions(doc: dict[str, Any], *where: str) -> dict[str, Any]:
    """rbac_test.go's shape: one permission per namespace ('' the pipeline's, a namespace, '*' all of them)."""
    doc["spec"]["rbac"] = {
        "permissions": [
            {"resourceNamespace": ns, "apiGroups": [""], "resources": [resource], "verbs": ["get", "list"]}
            for ns, resource in zip(where, ("configmaps", "secrets", "namespaces"))
        ]
    }
    return doc


def _names(kube: FakeKube, plural: str, namespace: str = "") -> list[str]:
    return [o["metadata"]["name"] for o in kube.rbac.stored(plural, namespace)]


def _identity(kube: FakeKube) -> dict[tuple[str, str, str], str]:
    return {key: o["metadata"]["uid"] for key, o in kube.rbac.objects.items()}


async def test_kratixs_rbac_objects_are_made_once_kept_across_runs_and_pruned_when_no_longer_wanted(
    rbac_platform: Platform, kube: FakeKube
) -> None:
    promise_pipeline = _with_permissions(pipeline("rbac-pro"), "", "default", "*")
    resource_pipeline = _with_permissions(pipeline("rbac-res"), "", "default", "*")
    doc = promise("rbacp", "Rbacp", configure=[resource_pipeline], promise_configure=[promise_pipeline])
    await rbac_platform.apply(doc)
    promise_obj = await rbac_platform.wait_condition("promise", "rbacp", "default", "Available", timeout=90)
    assert condition(promise_obj, "ConfigureWorkflowCompleted")["reason"] == "PipelinesExecutedSuccessfully"

    # The promise workflow: its own account, Kratix's ClusterRole, and one object per permission's namespace.
    promise_id = "rbacp-promise-configure-rbac-pro"
    # Beside the deployment's own account (tests/integration/test_kube_runner.py's fixture makes it).
    assert _names(kube, "serviceaccounts", NAMESPACE) == ["ktx-pipeline", promise_id]
    assert _names(kube, "roles", NAMESPACE) == [f"{promise_id}-a2636"]
    assert sorted(_names(kube, "clusterroles")) == [
        promise_id,
        f"{promise_id}-default-3586b",
        f"{promise_id}-kratix-all-namespaces-56cd5",
    ]
    everywhere = kube.rbac.get("clusterroles", f"{promise_id}-kratix-all-namespaces-56cd5")
    assert everywhere is not None
    assert everywhere["metadata"]["labels"]["kratix.io/resource-namespace"] == "kratix_all_namespaces"
    assert all(label in everywhere["metadata"]["labels"] for label in USER_LABELS)
    assert _names(kube, "rolebindings", "default") == [f"{promise_id}-{NAMESPACE}-30bee"]
    [job] = kube.created
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == promise_id

    await rbac_platform.apply(resource("Rbacp", "one"))
    await rbac_platform.wait_condition("rbacp", "one", "default", "Reconciled", timeout=90)
    resource_id = "rbacp-resource-configure-rbac-res"
    assert resource_id in _names(kube, "roles", NAMESPACE)
    role = kube.rbac.get("roles", resource_id, NAMESPACE)
    assert role is not None and role["rules"][0]["resources"] == ["rbacps", "rbacps/status"]

    # Another run of the same pipeline re-applies the same objects: none is made again.
    before = _identity(kube)
    await rbac_platform.apply(resource("Rbacp", "two"))
    await rbac_platform.wait_condition("rbacp", "two", "default", "Reconciled", timeout=90)
    assert _identity(kube) == before

    # The Promise drops its `*` permission: the next run deletes that ClusterRole and its binding, nothing else.
    promise_pipeline["spec"]["rbac"]["permissions"].pop()
    doc["spec"]["workflows"]["promise"]["configure"] = [promise_pipeline]
    await rbac_platform.apply(doc)
    gone = {
        ("clusterroles", "", f"{promise_id}-kratix-all-namespaces-56cd5"),
        ("clusterrolebindings", "", f"{promise_id}-{NAMESPACE}-30bee"),
    }
    await eventually(
        lambda: _identity(kube),
        lambda now: {key for key in before if key not in now} == gone,
        timeout=90,
        what="the next promise run to delete the `*` permission's objects",
    )
    await rbac_platform.wait_condition("promise", "rbacp", "default", "Available", timeout=90)
    assert _identity(kube) == {key: uid for key, uid in before.items() if key not in gone}

    # Deleting a resource leaves its workflow's RBAC objects, as in Kratix.
    await rbac_platform.wait_deleted(await rbac_platform.delete("rbacp", "one"), timeout=90)
    assert resource_id in _names(kube, "roles", NAMESPACE)


async def test_a_named_service_account_is_used_as_it_is(rbac_platform: Platform, kube: FakeKube) -> None:
    theirs = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "platform-team", "namespace": NAMESPACE, "annotations": {"owner": "platform"}},
    }
    kube.rbac.put("serviceaccounts", theirs)
    stored = kube.rbac.get("serviceaccounts", "platform-team", NAMESPACE)
    named = pipeline("named")
    named["spec"]["rbac"] = {"serviceAccount": "platform-team"}
    made = pipeline("made")
    made["spec"]["rbac"] = {"serviceAccount": "not-there-yet"}
    await rbac_platform.apply(promise("named", "Named", configure=[named, made]))
    await rbac_platform.wait_condition("promise", "named", "default", "Available", timeout=90)
    await rbac_platform.apply(resource("Named", "one"))
    await rbac_platform.wait_condition("named", "one", "default", "Reconciled", timeout=90)

    assert kube.rbac.get("serviceaccounts", "platform-team", NAMESPACE) == stored, "never modified"
    assert ("PUT", "serviceaccounts", NAMESPACE, "platform-team") not in kube.rbac.writes
    binding = kube.rbac.get("rolebindings", "named-resource-configure-named", NAMESPACE)
    assert binding is not None
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "platform-team", "namespace": NAMESPACE}]
    # One that does not exist is made as Kratix makes it, labelled with the Promise.
    missing = kube.rbac.get("serviceaccounts", "not-there-yet", NAMESPACE)
    assert missing is not None and missing["metadata"]["labels"] == {"kratix.io/promise-name": "named"}
    accounts = [j["spec"]["template"]["spec"]["serviceAccountName"] for j in kube.created]
    assert accounts == ["platform-team", "not-there-yet"]
    assert kube.deleted_pods == [], "without a pod TTL, Pods stay with their Jobs"

    # Deleting the Promise deletes every object labelled with it, as Kratix does; the account it did not make stays.
    await rbac_platform.wait_deleted(await rbac_platform.delete("promise", "named"), timeout=120)
    assert sorted(kube.rbac.objects) == [
        ("serviceaccounts", NAMESPACE, "ktx-pipeline"),
        ("serviceaccounts", NAMESPACE, "platform-team"),
    ]
    assert kube.rbac.get("serviceaccounts", "platform-team", NAMESPACE) == stored


async def test_a_pipeline_namespace_holds_every_workflow_with_kratixs_cross_namespace_bindings(
    rbac_platform: Platform, kube: FakeKube
) -> None:
    doc = promise(
        "nsp",
        "Nsp",
        configure=[_with_permissions(pipeline("instance"), "kube-public")],
        promise_configure=[pipeline("promise-configure")],
    )
    doc["spec"]["workflows"]["config"] = {"pipelineNamespace": "kube-public"}
    await rbac_platform.apply(doc)
    await rbac_platform.wait_condition("promise", "nsp", "default", "Available", timeout=90)
    await rbac_platform.apply(resource("Nsp", "test-request", namespace="team-a"))
    await rbac_platform.wait_condition("nsp", "test-request", "team-a", "Reconciled", timeout=90)

    assert {j["metadata"]["namespace"] for j in kube.created} == {"kube-public"}
    assert sorted(_names(kube, "serviceaccounts", "kube-public")) == [
        "nsp-promise-configure-promise-configure",
        "nsp-resource-configure-instance",
    ]
    assert _names(kube, "serviceaccounts", NAMESPACE) == ["ktx-pipeline"], "only the deployment's own"
    # The resource is in team-a, its pipeline in kube-public: Kratix grants its kind across the cluster.
    cross = kube.rbac.get("clusterroles", "nsp-resource-configure-instance-team-a")
    assert cross is not None and cross["rules"][0]["resources"] == ["nsps", "nsps/status"]
    binding = kube.rbac.get("clusterrolebindings", "nsp-resource-configure-instance-team-a")
    assert binding is not None
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "nsp-resource-configure-instance", "namespace": "kube-public"}
    ]
    # resourceNamespace kube-public: a ClusterRole bound there by a RoleBinding named after the pipeline's namespace.
    [user_binding] = [
        b for b in kube.rbac.stored("rolebindings", "kube-public") if b["roleRef"]["kind"] == "ClusterRole"
    ]
    assert user_binding["metadata"]["labels"]["kratix.io/pipeline-namespace"] == "kube-public"
    assert user_binding["metadata"]["labels"]["kratix.io/resource-namespace"] == "kube-public"


async def test_an_invalid_pipeline_namespace_is_refused_at_apply(rbac_platform: Platform) -> None:
    doc = promise("badns", "Badns", configure=[pipeline("instance")])
    doc["spec"]["workflows"]["config"] = {"pipelineNamespace": "Not_A_Namespace"}
    with pytest.raises(Exception, match="spec.workflows.config.pipelineNamespace"):
        await rbac_platform.apply(doc)


async def test_pods_of_finished_jobs_are_deleted_once_the_pod_ttl_has_passed(
    platform_factory, kube: FakeKube, s3_server, s3_bucket: str, git_remote: Path
) -> None:
    settings = KubeRunnerSettings(
        namespace=NAMESPACE,
        adapter_image=ADAPTER,
        transfer_bucket=s3_bucket,
        transfer_endpoint=f"http://{s3_server.endpoint}",
    )
    # The stand-in's clock starts on 2026-01-01, so every finished Job is long past a one-second TTL.
    platform = await platform_factory(
        settings={"pipeline_runner": "kubernetes", "kube": settings}, pod_ttl_seconds_after_finished=1
    )
    for doc in git_store_and_destinations(git_remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(doc)
    await platform.apply(promise("ttl", "Ttl", configure=[pipeline("render")]))
    await platform.wait_condition("promise", "ttl", "default", "Available", timeout=90)
    await platform.apply(resource("Ttl", "one"))
    await platform.wait_condition("ttl", "one", "default", "Reconciled", timeout=90)

    [job] = kube.created
    assert kube.deleted_pods and all(p.startswith(job["metadata"]["name"]) for p in kube.deleted_pods)
    assert (NAMESPACE, job["metadata"]["name"]) in kube.jobs, "the Job stays until retention prunes it"
    assert not [p for p in kube.pods.values() if p["metadata"]["labels"]["job-name"] == job["metadata"]["name"]]
