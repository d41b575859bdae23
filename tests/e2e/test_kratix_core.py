"""Kratix's core system test (test/core/core_test.go, "should deliver xaas to users") ported as a black-box test.

Two Destinations on one Git state store, a Promise with a promise.configure pipeline and two resource.configure
pipelines: the first writes to directory-scoped groups (dest1 -> worker-1, dest2 -> worker-2) and sets status
`stage: one`; the second fails unless it sees that status, then writes to the root group. Files are checked at
Kratix's exact paths, then the resource and the Promise are updated and deleted.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from service.platform import Platform
from tests.conftest import read_remote, remote_files
from tests.kratix_documents import (
    condition,
    eventually,
    get,
    git_store_and_destinations,
    phases,
    pipeline,
    promise,
    resource,
)

RESOURCE_DIR = "resources/default/testbundle/kratix-test"


def bundle_promise(value: str) -> dict:
    setup = pipeline(
        "setup-deps",
        VALUE=value,
        FILES={
            "namespace.yaml": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "testbundle-ns"}},
            "configmap.yaml": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "testbundle-cm", "namespace": "testbundle-ns"},
                "data": {"timestamp": "{now}", "promiseEnv": "{env[VALUE]}"},
            },
        },
    )
    cm = lambda suffix: {  # noqa: E731
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "{spec[configMapName]}-" + suffix,
            "namespace": "testbundle-ns",
        },
        "data": {"timestamp": "{now}"},
    }
    pipeline0 = pipeline(
        "resource-pipeline0",
        FILES={"dest1/configmap.yaml": cm("1"), "dest2/configmap.yaml": cm("2")},
        SELECTORS=[
            {"directory": "dest1", "matchLabels": {"target": "worker-1"}},
            {"directory": "dest2", "matchLabels": {"target": "worker-2"}},
        ],
        STATUS={"stage": "one"},
    )
    pipeline1 = pipeline(
        "resource-pipeline1",
        REQUIRE_STATUS="stage=one",
        FILES={
            "namespace.yaml": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "{spec[namespaceName]}"}}
        },
        SELECTORS=[{"matchLabels": {"target": "worker-1"}}],
        STATUS={"stage": "two", "completed": True},
    )
    return promise(
        "testbundle",
        "TestBundle",
        promise_configure=[setup],
        configure=[pipeline0, pipeline1],
        selectors={"environment": "dev"},
    )


def request(namespace_name: str) -> dict:
    return resource("TestBundle", "kratix-test", {"configMapName": "ksystest-cm", "namespaceName": namespace_name})


def doc(remote: Path, path: str) -> dict:
    return yaml.safe_load(read_remote(remote, path))


async def test_should_deliver_xaas_to_users(platform: Platform, git_remote: Path, pipeline_images) -> None:
    for d in git_store_and_destinations(
        git_remote,
        {
            "worker-1": {"environment": "dev", "target": "worker-1"},
            "worker-2": {"environment": "dev", "target": "worker-2"},
        },
    ):
        await platform.apply(d)
    await platform.apply(bundle_promise("undefined"))
    p = await platform.wait_condition("promise", "testbundle", "default", "Available", timeout=120)

    # Promise-level output goes to every matching Destination.
    for worker in ("worker-1", "worker-2"):
        assert (
            doc(git_remote, f"{worker}/dependencies/testbundle/setup-deps/5058f/namespace.yaml")["metadata"]["name"]
            == "testbundle-ns"
        )
        assert (
            doc(git_remote, f"{worker}/dependencies/testbundle/setup-deps/5058f/configmap.yaml")["data"]["promiseEnv"]
            == "undefined"
        )
    status = p["status"]
    assert status["status"] == "Available"
    for type_ in ("ConfigureWorkflowCompleted", "Reconciled", "WorksSucceeded"):
        assert condition(p, type_)["status"] == "True", type_
    assert (status["workflows"], status["workflowsSucceeded"], status["workflowsFailed"]) == (1, 1, 0)
    [entry] = status["kratix"]["workflows"]["pipelines"]
    assert (entry["name"], entry["phase"]) == ("setup-deps", "Succeeded") and entry["lastTransitionTime"]

    await platform.apply(request("ksystest"))
    rr = await platform.wait_condition("testbundle", "kratix-test", "default", "Reconciled", timeout=120)
    status = rr["status"]
    assert (status["stage"], status["completed"]) == ("two", True)  # pipeline 1 saw pipeline 0's status
    assert status["observedGeneration"] == rr["metadata"]["generation"] == 1
    assert (status["workflows"], status["workflowsSucceeded"], status["workflowsFailed"]) == (2, 2, 0)
    assert list(phases(rr).items()) == [("resource-pipeline0", "Succeeded"), ("resource-pipeline1", "Succeeded")]
    completed = condition(rr, "ConfigureWorkflowCompleted")
    assert completed["status"] == "True"
    assert completed["lastTransitionTime"] == status["kratix"]["workflows"]["lastSuccessfulConfigureWorkflowTime"]
    assert condition(rr, "WorksSucceeded")["status"] == "True"
    assert status["message"] == "Resource requested"

    # Directory-scoped groups are scheduled by their own labels only; the root group also carries the Promise's.
    cm1_path = f"worker-1/{RESOURCE_DIR}/resource-pipeline0/ba6cb/dest1/configmap.yaml"
    cm2_path = f"worker-2/{RESOURCE_DIR}/resource-pipeline0/76355/dest2/configmap.yaml"
    ns_path = f"worker-1/{RESOURCE_DIR}/resource-pipeline1/5058f/namespace.yaml"
    assert doc(git_remote, cm1_path)["metadata"]["name"] == "ksystest-cm-1"
    assert doc(git_remote, cm2_path)["metadata"]["name"] == "ksystest-cm-2"
    assert doc(git_remote, ns_path)["metadata"]["name"] == "ksystest"
    resource_files = sorted(f for f in remote_files(git_remote) if "/resources/" in f and "kratix-canary" not in f)
    assert resource_files == sorted([cm1_path, cm2_path, ns_path])
    placements = {(pl["pipeline"], pl["directory"]): pl["destination"] for pl in rr["_ktx"]["placements"]}
    assert placements == {
        ("resource-pipeline0", "dest1"): "worker-1",
        ("resource-pipeline0", "dest2"): "worker-2",
        ("resource-pipeline1", "."): "worker-1",
    }

    # Updating the request re-runs both pipelines and replaces the files.
    stamps = (doc(git_remote, cm1_path)["data"]["timestamp"], doc(git_remote, cm2_path)["data"]["timestamp"])
    await platform.apply(request("ksystest-updated"))
    rr = await eventually(
        lambda: get(platform, "testbundle", "kratix-test"),
        lambda o: o["status"].get("observedGeneration") == 2 and condition(o, "Reconciled").get("status") == "True",
        what="generation 2 reconciled",
    )
    assert set(phases(rr).values()) == {"Succeeded"}
    assert doc(git_remote, ns_path)["metadata"]["name"] == "ksystest-updated"
    new_stamps = (doc(git_remote, cm1_path)["data"]["timestamp"], doc(git_remote, cm2_path)["data"]["timestamp"])
    assert new_stamps[0] != stamps[0] and new_stamps[1] != stamps[1]

    # A Promise spec change re-runs the promise workflow and every resource's configure workflow.
    await platform.apply(bundle_promise("second"))
    await eventually(
        lambda: get(platform, "promise", "testbundle"),
        lambda o: o["status"].get("observedGeneration") == 2 and condition(o, "Reconciled").get("status") == "True",
    )
    assert (
        doc(git_remote, "worker-1/dependencies/testbundle/setup-deps/5058f/configmap.yaml")["data"]["promiseEnv"]
        == "second"
    )
    await eventually(
        lambda: get(platform, "testbundle", "kratix-test"),
        lambda o: (
            o["_ktx"]["runCounts"].get("configure/resource-pipeline1") == 3
            and condition(o, "Reconciled").get("status") == "True"
        ),
        what="resource re-run after the Promise change",
    )
    assert doc(git_remote, cm1_path)["data"]["timestamp"] != new_stamps[0]

    workflow_id = await platform.delete("testbundle", "kratix-test")
    assert await platform.wait_deleted(workflow_id, timeout=120)
    assert not [f for f in remote_files(git_remote) if "kratix-test" in f]

    workflow_id = await platform.delete("promise", "testbundle")
    assert await platform.wait_deleted(workflow_id, timeout=120)
    assert not [f for f in remote_files(git_remote) if "testbundle" in f]
