"""A failed container shows which container failed, its exit code and its log tail, and nothing is written."""

from __future__ import annotations

from pathlib import Path

from service.platform import Platform
from tests.conftest import remote_files
from tests.integration.test_resource_lifecycle import store_and_destination
from tests.waiting import eventually

BASE_IMAGE = "localhost/ktx/python-base:bookworm"


def failing_promise() -> dict:
    def pipeline(name: str, script: str) -> dict:
        return {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": {
                "containers": [
                    {
                        "name": "prepare",
                        "image": BASE_IMAGE,
                        "command": ["sh", "-c", "echo ok > /kratix/output/a.yaml"],
                    },
                    {"name": "explode", "image": BASE_IMAGE, "command": ["sh", "-c", script]},
                ]
            },
        }

    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "fragile"},
        "spec": {
            "api": {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "fragiles.test.ktx.io"},
                "spec": {
                    "group": "test.ktx.io",
                    "scope": "Namespaced",
                    "names": {"kind": "Fragile", "plural": "fragiles"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "properties": {
                                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                                    },
                                }
                            },
                        }
                    ],
                },
            },
            "workflows": {
                "resource": {"configure": [pipeline("build", "echo starting; echo disk quota exceeded >&2; exit 3")]}
            },
        },
    }


async def test_failed_container_is_named_with_exit_code_and_log_tail(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    for doc in store_and_destination(git_remote):
        await platform.apply(doc)
    await platform.apply(failing_promise())
    await platform.wait_condition("promise", "fragile", "default", "Available", timeout=60)
    await platform.apply(
        {"apiVersion": "test.ktx.io/v1", "kind": "Fragile", "metadata": {"name": "one"}, "spec": {"x": 1}}
    )
    # observedGeneration 1 says the run for this request has been recorded, so the failure below is its outcome.
    obj = await eventually(
        lambda: platform.get("fragile", "one"),
        lambda o: (o.get("status") or {}).get("observedGeneration") == 1,
        timeout=120,
        what="fragile/one's first run recorded",
    )
    status = obj["status"]
    configure = next(c for c in status["conditions"] if c["type"] == "ConfigureWorkflowCompleted")
    assert (configure["status"], configure["reason"]) == ("False", "ConfigureWorkflowFailed")
    reconciled = next(c for c in status["conditions"] if c["type"] == "Reconciled")
    assert (reconciled["status"], reconciled["message"]) == ("False", "Failing")
    pipeline = status["kratix"]["workflows"]["pipelines"][0]
    assert pipeline["phase"] == "Failed"
    assert "'explode'" in pipeline["message"] and "exited with code 3" in pipeline["message"]
    assert "disk quota exceeded" in pipeline["message"]
    run = obj["_ktx"]["runs"][0]
    assert [(c["name"], c["exit_code"]) for c in run["containers"]] == [("prepare", 0), ("explode", 3)]
    assert status["workflowsFailed"] == 1
    assert not [f for f in remote_files(git_remote) if "/fragile/" in f]
