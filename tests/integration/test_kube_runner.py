"""Pipelines as Kubernetes Jobs, through the real `kubernetes` client against tests/servers/kube_jobs.py, whose kubelet
runs each Pod's containers with podman; data moves through a real S3 server (SeaweedFS) by presigned URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli.main import describe
from service.platform import Platform
from tests.conftest import ROOT, read_remote, remote_files
from tests.kratix_documents import (
    BEHAVE,
    condition,
    eventually,
    get,
    git_store_and_destinations,
    pipeline,
    pipeline_entry,
    promise,
    resource,
)
from tests.servers.kube_jobs import FakeKube
from tests.servers.s3_server import WRITER
from worker.settings import KubeRunnerSettings

ADAPTER = "registry.example/ktx:test"
NAMESPACE = "pipelines"


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline_images, s3_worker_credentials):
    # The adapter image is the project itself; here its source on the python base image stands in for it.
    images = {
        ADAPTER: ("localhost/ktx/python-base:bookworm", ["-v", f"{ROOT}:/opt/ktx:ro", "-e", "PYTHONPATH=/opt/ktx"])
    }
    with FakeKube(tmp_path / "kubelet", token="runner-token", images=images) as server:
        # The account pipeline Pods run as without pipeline RBAC, made by the deployment (service-accounts.yaml).
        server.rbac.put(
            "serviceaccounts",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "ktx-pipeline", "namespace": NAMESPACE},
            },
        )
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "kubeconfig")))
        yield server


@pytest.fixture
async def kube_platform(platform_factory, kube: FakeKube, s3_server, s3_bucket: str, git_remote: Path) -> Platform:
    settings = KubeRunnerSettings(
        namespace=NAMESPACE,
        adapter_image=ADAPTER,
        jobs_to_keep=2,
        stuck_grace_s=1,
        transfer_bucket=s3_bucket,
        transfer_endpoint=f"http://{s3_server.endpoint}",
    )
    platform = await platform_factory(settings={"pipeline_runner": "kubernetes", "kube": settings})
    for doc in git_store_and_destinations(git_remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(doc)
    return platform


def transfer_keys(s3_server, bucket: str) -> list[str]:
    return [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


async def test_a_pipeline_runs_as_one_job_and_its_output_is_delivered(
    kube_platform: Platform, kube: FakeKube, git_remote: Path, s3_server, s3_bucket: str
) -> None:
    configure = pipeline(
        "render",
        FILES={"app.yaml": {"app": "{name}", "env": "{env[KRATIX_PIPELINE_NAME]}"}},
        STATUS={"rendered": "{env[KRATIX_OBJECT_NAME]}"},
    )
    configure["metadata"]["labels"] = {"team": "apps"}
    configure["spec"]["containers"].append(
        {"name": "second", "image": BEHAVE, "env": [{"name": "REQUIRE_STATUS", "value": ""}]}
    )
    configure["spec"]["nodeSelector"] = {"pool": "pipelines"}
    configure["spec"]["tolerations"] = [{"key": "pipelines", "operator": "Exists", "effect": "NoSchedule"}]
    configure["spec"]["imagePullSecrets"] = [{"name": "registry"}]
    await kube_platform.apply(promise("kapp", "Kapp", configure=[configure]))
    await kube_platform.wait_condition("promise", "kapp", "default", "Available", timeout=60)
    await kube_platform.apply(resource("Kapp", "one", namespace="team-a"))
    await kube_platform.wait_condition("kapp", "one", "team-a", "Reconciled", timeout=120)

    obj = await get(kube_platform, "kapp", "one", "team-a")
    assert obj["status"]["rendered"] == "one"
    [path] = [f for f in remote_files(git_remote) if f.endswith("/app.yaml")]
    assert path.startswith("worker-1/resources/team-a/kapp/one/render/")
    assert yaml.safe_load(read_remote(git_remote, path)) == {"app": "one", "env": "render"}

    [job] = kube.created
    labels = job["metadata"]["labels"]
    assert labels == {
        "team": "apps",
        "kratix.io/promise-name": "kapp",
        "kratix.io/workflow-type": "resource",
        "kratix.io/workflow-action": "configure",
        "kratix.io/pipeline-name": "render",
        "app.kubernetes.io/managed-by": "ktx",
        "kratix.io/resource-name": "one",
        "kratix.io/resource-namespace": "team-a",
    }
    assert job["metadata"]["namespace"] == NAMESPACE and job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["ktx-reader", "render-c", "second"]
    assert [c["name"] for c in pod["containers"]] == ["ktx-writer"]
    assert (
        pod["nodeSelector"],
        pod["imagePullSecrets"],
        pod["serviceAccountName"],
        pod["automountServiceAccountToken"],
    ) == ({"pool": "pipelines"}, [{"name": "registry"}], "ktx-pipeline", False)
    env = {e["name"]: e["value"] for e in pod["initContainers"][1]["env"]}
    assert env["KRATIX_OBJECT_NAMESPACE"] == "team-a" and env["KRATIX_WORKFLOW_TYPE"] == "resource"
    # Credentials never enter the Pod: only two presigned URLs, one per object.
    reader_env = {e["name"]: e["value"] for e in pod["initContainers"][0]["env"]}
    assert "X-Amz-Signature=" in reader_env["KTX_INPUT_URL"] and WRITER[1] not in str(job)
    assert transfer_keys(s3_server, s3_bucket) == []  # the exchange objects are cleaned up
    # Every body says it is JSON, whichever version of the kubernetes client is installed.
    assert kube.content_types and set(kube.content_types) == {"application/json"}


async def test_a_failing_init_container_is_named_with_its_log_tail_and_old_jobs_are_pruned(
    kube_platform: Platform, kube: FakeKube
) -> None:
    failing = pipeline("render", backoff_limit=2)
    failing["spec"]["containers"].insert(
        0, {"name": "say", "image": BEHAVE, "command": ["sh", "-c", "echo about to fail; echo line two"]}
    )
    failing["spec"]["containers"][1]["command"] = ["sh", "-c", "echo boom from render-c >&2; exit 3"]
    await kube_platform.apply(promise("kfail", "Kfail", configure=[failing]))
    await kube_platform.wait_condition("promise", "kfail", "default", "Available", timeout=60)
    await kube_platform.apply(resource("Kfail", "one"))

    obj = await eventually(
        lambda: get(kube_platform, "kfail", "one"),
        lambda o: condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed",
        timeout=120,
        what="the pipeline to fail after its retry",
    )
    message = pipeline_entry(obj, "render")["message"]
    assert "'render-c'" in message and "exited with code 3" in message and "boom from render-c" in message
    run = obj["_ktx"]["runs"][-1]
    assert [(c["name"], c["exit_code"]) for c in run["containers"]] == [("say", 0), ("render-c", 3)]
    failed = next(c for c in run["containers"] if c["name"] == "render-c")
    assert failed["exit_code"] == 3 and "boom from render-c" in failed["log_tail"]
    assert "line two" in next(c for c in run["containers"] if c["name"] == "say")["log_tail"]
    # backoffLimit 2: three runs, each its own Job; retention keeps the newest two and deletes the first.
    assert len(kube.created) == 3
    assert kube.deleted == [(kube.created[0]["metadata"]["name"], "Background")]


async def _failed_run(platform: Platform, name: str, configure: dict, what: str) -> dict:
    """Installs a one-pipeline Promise, requests one resource, and waits for its configure workflow to fail."""
    kind = name.capitalize()
    await platform.apply(promise(name, kind, configure=[configure]))
    await platform.wait_condition("promise", name, "default", "Available", timeout=60)
    await platform.apply(resource(kind, "one"))
    return await eventually(
        lambda: get(platform, name, "one"),
        lambda o: condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed",
        timeout=240,
        what=what,
    )


async def test_an_image_that_cannot_be_pulled_fails_the_run_instead_of_waiting_for_ever(
    kube_platform: Platform, kube: FakeKube
) -> None:
    broken = pipeline("render", backoff_limit=0)
    broken["spec"]["containers"][0]["image"] = "registry.example/does-not-exist:v1"
    obj = await _failed_run(kube_platform, "kpull", broken, "the stuck image to fail the run")
    assert "cannot start: ErrImagePull" in pipeline_entry(obj, "render")["message"]
    assert [name for name, _ in kube.deleted] == [kube.created[0]["metadata"]["name"]]


async def test_a_job_that_gets_no_pod_fails_the_run_with_the_reason_to_look_for(
    kube_platform: Platform, kube: FakeKube
) -> None:
    kube.admit_pods = False
    obj = await _failed_run(
        kube_platform, "kquota", pipeline("render", backoff_limit=0), "the Pod-less Job to fail the run"
    )
    assert "got no Pod within 1s" in pipeline_entry(obj, "render")["message"]
    assert [name for name, _ in kube.deleted] == [kube.created[0]["metadata"]["name"]]


async def test_cancelling_a_run_deletes_its_job(kube_platform: Platform, kube: FakeKube) -> None:
    await kube_platform.apply(
        promise("khang", "Khang", configure=[pipeline("render")], delete=[pipeline("teardown", SLEEP="600")])
    )
    await kube_platform.wait_condition("promise", "khang", "default", "Available", timeout=60)
    await kube_platform.apply(resource("Khang", "one"))
    await kube_platform.wait_condition("khang", "one", "default", "Reconciled", timeout=120)
    workflow_id = await kube_platform.delete("khang", "one")
    await eventually(
        lambda: list(kube.running), lambda names: any("teardown" in n for n in names), what="the delete Job to run"
    )
    [teardown] = [j["metadata"]["name"] for j in kube.created if "teardown" in j["metadata"]["name"]]
    await kube_platform.delete("khang", "one", force=True)
    assert await kube_platform.wait_deleted(workflow_id, timeout=120)
    # The workflow does not wait for the cancelled activity; the activity hears of it at its next heartbeat.
    await eventually(
        lambda: list(kube.deleted), lambda deleted: (teardown, "Background") in deleted, what="the Job's deletion"
    )
    assert teardown not in kube.running


async def test_twenty_megabytes_in_two_thousand_files_travel_through_the_bucket(
    kube_platform: Platform, kube: FakeKube, git_remote: Path, s3_server, s3_bucket: str
) -> None:
    await kube_platform.apply(promise("kbulk", "Kbulk", configure=[pipeline("generate", GENERATE="2000x10000")]))
    await kube_platform.wait_condition("promise", "kbulk", "default", "Available", timeout=60)
    await kube_platform.apply(resource("Kbulk", "big"))
    await eventually(
        lambda: get(kube_platform, "kbulk", "big"),
        lambda o: condition(o, "WorksSucceeded").get("status") == "True",
        timeout=300,
        what="2,000 files delivered",
    )
    written = [
        f
        for f in remote_files(git_remote)
        if f.startswith("worker-1/resources/default/kbulk/big/generate/5058f/generated/")
    ]
    assert len(written) == 2000
    assert "0000199900001999" in read_remote(git_remote, written[-1])
    assert transfer_keys(s3_server, s3_bucket) == []


async def test_a_pipeline_namespace_the_worker_may_not_use_is_a_failed_run_naming_the_refusal(
    kube_platform: Platform, kube: FakeKube
) -> None:
    """Without deploy/components/pipeline-rbac the worker has a Role in KTX_KUBE_NAMESPACE only: a Promise's other
    pipelineNamespace is refused by the apiserver, and the run says what was refused, where, and what grants it. Once
    granted, the next run goes through."""
    kube.forbidden_namespaces.add("team-pipelines")
    instance = pipeline("instance", backoff_limit=0)
    instance["spec"]["rbac"] = {"permissions": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    doc = promise("walled", "Walled", configure=[instance])
    doc["spec"]["workflows"]["config"] = {"pipelineNamespace": "team-pipelines"}
    await kube_platform.apply(doc)
    await kube_platform.wait_condition("promise", "walled", "default", "Available", timeout=60)
    await kube_platform.apply(resource("Walled", "one"))
    failed = await eventually(
        lambda: get(kube_platform, "walled", "one"),
        lambda o: pipeline_entry(o, "instance").get("phase") == "Failed",
        timeout=120,
        what="the refused pipeline failed",
    )
    message = pipeline_entry(failed, "instance")["message"]
    assert (
        'Forbidden: jobs.batch "ktx-walled-one-instance-' in message
        and 'cannot get resource "jobs" in API group "batch" in the namespace "team-pipelines"' in message
    ), message
    assert "pipelineNamespace 'team-pipelines'" in message and "deploy/components/pipeline-rbac" in message
    assert not kube.created, "nothing was created in the refused namespace"

    kube.forbidden_namespaces.clear()
    kube.rbac.put(
        "serviceaccounts",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "ktx-pipeline", "namespace": "team-pipelines"},
        },
    )
    await kube_platform.label("walled", "one", set={"kratix.io/manual-reconciliation": "true"})
    ran = await eventually(
        lambda: get(kube_platform, "walled", "one"),
        lambda o: pipeline_entry(o, "instance").get("phase") == "Succeeded",
        timeout=120,
        what="the granted pipeline ran",
    )
    assert {j["metadata"]["namespace"] for j in kube.created} == {"team-pipelines"}
    # With neither pipeline RBAC nor the platform API's token, the Pod has nothing that carries the permissions.
    assert "note: spec.rbac.permissions: not applied on the kubernetes runner" in describe(ran), describe(ran)
