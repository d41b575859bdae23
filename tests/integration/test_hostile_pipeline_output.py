"""A hostile pipeline cannot make its object vanish or take the worker's memory (issue 14, classes 1 and 7).

Real parts throughout: the `behave` image writes each hostile file into /kratix/metadata or /kratix/output of a real
podman container, a real Temporal dev server runs the workflows, and a real Git remote holds the files. Each bad run
must be a failed pipeline with the reason in status, and the object must still be got, labelled and deleted, its
files removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from service.platform import Conflict, NotFound, Platform
from domain.errors import InvalidDocument
from domain.naming import resource_workflow_id
from tests.conftest import remote_files
from tests.integration.test_health_metrics import api_for
from tests.kratix_documents import (
    eventually,
    git_store_and_destinations,
    phases,
    pipeline,
    pipeline_entry,
    promise,
    resource,
)
from tests.unit.test_input_limits import billion_laughs

DEEP = "a: " + "{b: " * 50 + "1" + "}" * 50 + "\n"

# (files the hostile pipeline writes under /kratix/, or behave's other variables) -> what its failure must say.
HOSTILE = {
    "status-list": ({"RAW": {"metadata/status.yaml": "- a\n- b\n"}}, "must be a map of status fields, not a list"),
    "status-number": ({"RAW": {"metadata/status.yaml": "42\n"}}, "must be a map of status fields, not a number"),
    "status-aliases": (
        {"RAW": {"metadata/status.yaml": billion_laughs().split("\n", 2)[2]}},
        "aliases may add at most",
    ),
    "status-deep": ({"RAW": {"metadata/status.yaml": DEEP}}, "nested deeper than 32 levels"),
    "status-huge": (
        {"BIG": "metadata/status.yaml=300000"},
        "/kratix/metadata/status.yaml: is over the limit of 262144 bytes",
    ),
    "control-huge": ({"BIG": "metadata/workflow-control.yaml=20000"}, "over the limit of 16384 bytes"),
    "status-conditions": ({"RAW": {"metadata/status.yaml": "conditions: banana\n"}}, "must be a list of conditions"),
    "status-health": (
        {"RAW": {"metadata/status.yaml": "healthStatus: [1]\n"}},
        "status.yaml.healthStatus: must be a map",
    ),
    "control-list": (
        {"RAW": {"metadata/workflow-control.yaml": "- suspend\n"}},
        "workflow-control.yaml: must be a map",
    ),
    "selectors-list": (
        {"RAW": {"metadata/destination-selectors.yaml": "- matchLabels: [env, dev]\n"}},
        "must be a map of label keys to string values",
    ),
    "selectors-label": (
        {"RAW": {"metadata/destination-selectors.yaml": "- matchLabels: {env: 'not a label'}\n"}},
        "a valid label must be an empty string",
    ),
    "many-files": ({"GENERATE": "6000x1"}, "holds more than 5000 files"),
}


def hostile_promise(variant: str) -> dict:
    kind = "H" + variant.replace("-", "")
    env, _ = HOSTILE[variant]
    return promise(
        f"h-{variant}",
        kind,
        configure=[
            pipeline("good", FILES={"app.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}}),
            pipeline("bad", backoff_limit=0, **env),
        ],
    )


def files_of(remote: Path, promise_name: str) -> list[str]:
    return [f for f in remote_files(remote) if f"/{promise_name}/" in f]


async def test_hostile_metadata_fails_the_pipeline_and_the_object_stays_manageable(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    for variant in HOSTILE:
        await platform.apply(hostile_promise(variant))
    for variant in HOSTILE:
        await platform.wait_condition("promise", f"h-{variant}", "default", "Available", timeout=60)
        await platform.apply(resource("H" + variant.replace("-", ""), "one"))

    for variant, (_, reason) in HOSTILE.items():
        kind = "h" + variant.replace("-", "")
        obj = await eventually(
            lambda: platform.get(kind, "one"),
            lambda o: phases(o).get("bad") == "Failed",
            timeout=180,
            what=f"{variant}: the hostile pipeline failed",
        )
        assert reason in pipeline_entry(obj, "bad")["message"], (variant, pipeline_entry(obj, "bad"))
        assert phases(obj)["good"] == "Succeeded", variant
        # The workflow is alive: the object answers a label change and still holds the good pipeline's files.
        labels = await platform.label(kind, "one", set={"checked": "yes"})
        assert labels["checked"] == "yes", variant
        assert files_of(git_remote, f"h-{variant}"), variant

    for variant in HOSTILE:
        kind = "h" + variant.replace("-", "")
        workflow_id = await platform.delete(kind, "one")
        assert await platform.wait_deleted(workflow_id, 60), variant
        with pytest.raises(NotFound):
            await platform.get(kind, "one")
        assert files_of(git_remote, f"h-{variant}") == [], variant


async def test_an_activity_error_is_a_failed_pipeline_not_a_dead_workflow(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """An error the pipeline activity raises (here: a Pipeline the podman runner cannot run, a fieldRef to the node)
    used to fail the workflow after its retries, and the object answered 404 from then on. A platform that knows its
    runner is podman refuses that Promise at apply; one admitted where the runner was not known (or was another, since
    changed) fails each run with the reason."""
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    unrunnable = pipeline("secretive", backoff_limit=0)
    unrunnable["spec"]["containers"][0]["env"] = [
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]
    with pytest.raises(InvalidDocument, match="not available on the podman runner"):
        await platform.apply(promise("unrunnable", "Unrunnable", configure=[unrunnable]))
    elsewhere = Platform(platform.client, platform.task_queue, platform.secrets)
    await elsewhere.apply(promise("unrunnable", "Unrunnable", configure=[unrunnable]))
    await platform.wait_condition("promise", "unrunnable", "default", "Available", timeout=60)
    await platform.apply(resource("Unrunnable", "one"))
    obj = await eventually(
        lambda: platform.get("unrunnable", "one"),
        lambda o: phases(o).get("secretive") == "Failed",
        timeout=120,
        what="the unrunnable pipeline failed",
    )
    message = pipeline_entry(obj, "secretive")["message"]
    assert "env[0].valueFrom.fieldRef: spec.nodeName is not available on the podman runner" in message, message
    workflow_id = await platform.delete("unrunnable", "one")
    assert await platform.wait_deleted(workflow_id, 60)


async def test_label_changes_are_bounded_before_temporal(platform: Platform, git_remote: Path, tmp_path: Path) -> None:
    await platform.apply(promise("plain", "Plain"))
    await platform.wait_condition("promise", "plain", "default", "Available", timeout=60)
    await platform.apply(resource("Plain", "one", labels={"team": "a"}))
    await eventually(lambda: platform.get("plain", "one"), what="plain/one exists")
    async with api_for(platform, tmp_path) as (_, http):

        async def refused(body: dict, *phrases: str) -> None:
            response = await http.post("/objects/plain/one/labels", params={"namespace": "default"}, json=body)
            assert response.status_code == 422, response.text
            for phrase in phrases:
                assert phrase in response.text, (phrase, response.text)

        await refused({"set": {"big": "x" * 1_500_000}}, "at most 63 of them", "(1500002 characters)")
        await refused({"set": {"Not A Key": "v"}}, "name part must be")
        await refused({"set": {"Example.com/x": "v"}}, "prefix part must be a lowercase RFC 1123 subdomain")
        await refused({"remove": ["a" * 64]}, '"field":"remove[0]"')
        # Valid labels, but more of them than an object carries: refused as a whole, in one request or in many.
        many = {f"k{i:05d}": "v" * 63 for i in range(4000)}
        await refused({"set": many}, "over the limit of 262144")
        for start in range(0, 4000, 1000):
            chunk = dict(list(many.items())[start : start + 1000])
            response = await http.post(
                "/objects/plain/one/labels", params={"namespace": "default"}, json={"set": chunk}
            )
            if response.status_code != 200:
                break
        assert response.status_code == 422 and "over the limit of 262144" in response.text, response.text
        obj = await platform.get("plain", "one")
        assert obj["metadata"]["labels"]["team"] == "a"
        assert "big" not in obj["metadata"]["labels"]
        response = await http.post(
            "/objects/plain/one/labels", params={"namespace": "default"}, json={"set": {"ok": "yes"}}
        )
        assert response.status_code == 200 and response.json()["labels"]["ok"] == "yes", response.text


async def test_an_ended_workflow_is_reported_and_cleaned_up(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """If an object's workflow ends anyway (here an operator terminates it), get says so, and delete or a new apply
    take over the files it wrote: nothing is orphaned silently."""
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    await platform.apply(
        promise("ended", "Ended", configure=[pipeline("write", FILES={"app.yaml": {"name": "{name}"}})])
    )
    await platform.wait_condition("promise", "ended", "default", "Available", timeout=60)
    for name in ("gone", "back"):
        await platform.apply(resource("Ended", name))
        await platform.wait_condition("ended", name, "default", "Reconciled", timeout=120)
        handle = platform.client.get_workflow_handle(resource_workflow_id("ended", "default", name))
        await handle.terminate(reason="an operator's mistake")
        assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
        with pytest.raises(Conflict, match="its workflow terminated: an operator's mistake"):
            await platform.get("ended", name)
        assert [f for f in files_of(git_remote, "ended") if f"/{name}/" in f]

    # Delete: a clean-up run removes the files the ended workflow wrote.
    workflow_id = await platform.delete("ended", "gone")
    assert await platform.wait_deleted(workflow_id, 60)
    assert not [f for f in files_of(git_remote, "ended") if "/gone/" in f]
    with pytest.raises(NotFound):
        await platform.get("ended", "gone")

    # Apply: the new workflow takes the old placements over, and a later delete removes them.
    await platform.apply(resource("Ended", "back", spec={"again": True}))
    await platform.wait_condition("ended", "back", "default", "Reconciled", timeout=120)
    obj = await platform.get("ended", "back")
    assert [p["destination"] for p in obj["_ktx"]["placements"]] == ["dev"]
    workflow_id = await platform.delete("ended", "back")
    assert await platform.wait_deleted(workflow_id, 60)
    assert files_of(git_remote, "ended") == []


async def test_a_container_printing_without_end_is_bounded(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    for doc in git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}):
        await platform.apply(doc)
    await platform.apply(promise("chatty", "Chatty", configure=[pipeline("talk", PRINT=str(24 * 1024 * 1024))]))
    await platform.wait_condition("promise", "chatty", "default", "Available", timeout=60)
    await platform.apply(resource("Chatty", "one"))
    await platform.wait_condition("chatty", "one", "default", "Reconciled", timeout=180)
    obj = await platform.get("chatty", "one")
    stored = Path(obj["_ktx"]["runs"][0]["containers"][0]["log_file"])
    size = stored.stat().st_size
    assert 2 * 1024 * 1024 <= size <= 4 * 1024 * 1024 + 200, size  # the last 2 to 4 MiB, and a line saying so
    with stored.open("rb") as log:
        assert log.readline().startswith(b"[ktx: the first ")
    assert not list(stored.parent.glob("*.older"))

    async with api_for(platform, tmp_path) as (_, http):
        response = await http.get("/objects/chatty/one/logs", params={"namespace": "default"})
        assert response.status_code == 200
        (entry,) = response.json()
        assert (entry["truncated"], entry["bytes"]) == (True, size)
        assert len(entry["log"].encode()) == 1024 * 1024
        assert entry["log"].endswith("the end of the output\n")
        response = await http.get("/objects/chatty/one/logs", params={"namespace": "default", "limitBytes": 100})
        assert response.json()[0]["log"] == response.json()[0]["log"][-100:] and len(response.json()[0]["log"]) == 100
        response = await http.get("/objects/chatty/one/logs", params={"namespace": "default", "limitBytes": 10**9})
        assert response.status_code == 422
