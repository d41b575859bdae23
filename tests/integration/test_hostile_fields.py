"""Hostile fields: names, images and values that would become runtime options or paths, and out-of-range waits.

Refused at apply with a 422 naming the field; a value that reaches the runner anyway never becomes an option; a
pipeline asking for an impossible retry is a failed pipeline, and its object can still be paused and deleted.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import yaml

from activities.pipelines.models import PipelineContext, RunPipelineInput
from activities.pipelines.podman_runner import ContainerRuntime, Isolation, PodmanRunner
from service.platform import Platform
from domain.documents import Container, Pipeline
from tests.conftest import pipeline_runtime
from tests.integration.test_bad_input import api, refused, snapshot  # noqa: F401  (api is the fixture)
from tests.integration.test_health_metrics import api_for
from tests.kratix_documents import (
    BEHAVE,
    git_store_and_destinations,
    phases,
    pipeline,
    pipeline_entry,
    promise,
    resource,
)
from tests.waiting import eventually

CONTAINER = "spec.workflows.resource.configure[0].spec.containers[0]"


def hostile(change: Callable[[dict[str, Any]], None], kind: str = "Widget") -> dict[str, Any]:
    """The accepted `widgets` Promise again, with one pipeline changed by `change` (given the Pipeline document)."""
    doc = promise("widgets", kind, configure=[pipeline("configure")])
    change(doc["spec"]["workflows"]["resource"]["configure"][0])
    return doc


def container(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda p: p["spec"]["containers"][0].update(fields)


def env(name: str, value: str = "x") -> Callable[[dict[str, Any]], None]:
    return lambda p: p["spec"]["containers"][0]["env"].append({"name": name, "value": value})


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (container(image="--volume=/etc:/hostetc"), f"{CONTAINER}.image", "must be an image reference"),
        (container(image="--network=host"), f"{CONTAINER}.image", "must be an image reference"),
        (container(image="-v"), f"{CONTAINER}.image", "must be an image reference"),
        (container(image=f"{BEHAVE} --privileged"), f"{CONTAINER}.image", "must be an image reference"),
        (container(image="Localhost/UPPER:v1"), f"{CONTAINER}.image", "must be an image reference"),
        (container(image=""), f"{CONTAINER}.image", "Required value"),
        (container(image="a/" * 200 + "b"), f"{CONTAINER}.image", "no more than"),
        (container(name="../../../../tmp/escape"), f"{CONTAINER}.name", "RFC 1123 label"),
        (container(name="-c"), f"{CONTAINER}.name", "RFC 1123 label"),
        (container(name="c" * 64), f"{CONTAINER}.name", "no more than 63 characters"),
        (container(workingDir="/w\0"), f"{CONTAINER}.workingDir", "NUL"),
        (container(args=["ok", "a\0b"]), f"{CONTAINER}.args[1]", "NUL"),
        (
            container(securityContext={"runAsUser": "0 --privileged"}),
            f"{CONTAINER}.securityContext.runAsUser",
            "between 0",
        ),
        (container(securityContext={"runAsGroup": -1}), f"{CONTAINER}.securityContext.runAsGroup", "between 0"),
        (env("A=B"), f"{CONTAINER}.env[0].name", "valid environment variable name"),
        (env("1ABC"), f"{CONTAINER}.env[0].name", "must not start with a digit"),
        (env(".."), f"{CONTAINER}.env[0].name", "must not be '.'"),
        (env("OK", "a\0b"), f"{CONTAINER}.env[0].value", "NUL"),
        (
            lambda p: p["metadata"].update(name="../up"),
            "spec.workflows.resource.configure[0].metadata.name",
            "RFC 1123 label",
        ),
        (
            lambda p: p["metadata"].update(labels={"bad key!": "v"}),
            "spec.workflows.resource.configure[0].metadata.labels",
            "name part",
        ),
        (
            lambda p: p["metadata"].update(labels={"k": "-v"}),
            "spec.workflows.resource.configure[0].metadata.labels",
            "a valid label",
        ),
        (
            lambda p: p["spec"].update(jobOptions={"backoffLimit": 100_000}),
            "spec.workflows.resource.configure[0].spec.jobOptions.backoffLimit",
            "between 0 and 100",
        ),
        (
            lambda p: p["spec"].update(jobOptions={"backoffLimit": -1}),
            "spec.workflows.resource.configure[0].spec.jobOptions.backoffLimit",
            "between 0 and 100",
        ),
    ],
)
async def test_pipeline_fields_that_would_be_options_or_paths_are_refused_422(
    api: httpx.AsyncClient,  # noqa: F811  (the fixture)
    change: Callable,
    field: str,
    reason: str,
) -> None:
    answer = await refused(api, await snapshot(api), 422, yaml.safe_dump(hostile(change)), "is invalid")
    assert any(e["field"].startswith(field) and reason in e["reason"] for e in answer["errors"]), answer["errors"]


async def test_a_promise_pipeline_and_a_new_promise_are_refused_alike(api: httpx.AsyncClient) -> None:  # noqa: F811
    before = await snapshot(api)
    doc = promise("gadgets", "Gadget", promise_configure=[pipeline("install")])
    doc["spec"]["workflows"]["promise"]["configure"][0]["spec"]["containers"][0]["image"] = "--volume=/:/host"
    answer = await refused(
        api, before, 422, yaml.safe_dump(doc), "spec.workflows.promise.configure[0].spec.containers[0].image"
    )
    assert answer["document"] == 0
    assert (await api.get("/objects/promise/gadgets")).status_code == 404


def interval(where: str, value: str) -> dict[str, Any]:
    doc = promise("widgets", "Widget")
    if where == "annotation":
        doc["metadata"]["annotations"] = {"kratix.io/reconciliation-interval": value}
    else:
        doc["spec"]["workflows"]["config"] = {"reconciliationInterval": value}
    return doc


@pytest.mark.parametrize(
    "where, field",
    [
        ("annotation", "metadata.annotations[kratix.io/reconciliation-interval]"),
        ("spec", "spec.workflows.config.reconciliationInterval"),
    ],
)
@pytest.mark.parametrize(
    "value, reason",
    [
        ("banana", "failed to parse duration"),
        ("1ns", "must be at least 1m"),
        ("59s", "must be at least 1m"),
        ("999999999h", "failed to parse duration"),
        ("721h", "must be at most 720h"),
        ("-1h", "failed to parse duration"),
    ],
)
async def test_reconciliation_intervals_out_of_range_are_refused_422(
    api: httpx.AsyncClient,  # noqa: F811  (the fixture)
    where: str,
    field: str,
    value: str,
    reason: str,
) -> None:
    answer = await refused(api, await snapshot(api), 422, yaml.safe_dump(interval(where, value)), "is invalid")
    assert any(e["field"] == field and reason in e["reason"] for e in answer["errors"]), answer["errors"]


async def test_documents_carrying_bad_intervals_branches_or_urls_are_refused_422(api: httpx.AsyncClient) -> None:  # noqa: F811
    before = await snapshot(api)
    request = resource("Widget", "first", {"size": "s"})
    request["metadata"]["annotations"] = {"kratix.io/reconciliation-interval": "banana"}
    answer = await refused(
        api, before, 422, yaml.safe_dump(request), "metadata.annotations[kratix.io/reconciliation-interval]"
    )
    assert answer["errors"][0]["reason"].startswith("Invalid value: 'banana'")
    for spec, field in [
        ({"url": "file:///r", "branch": "--upload-pack=touch /tmp/pwned"}, "spec.branch"),
        ({"url": "file:///r", "branch": "main..x"}, "spec.branch"),
        ({"url": "--upload-pack=touch /tmp/pwned"}, "spec.url"),
    ]:
        store = {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "GitStateStore",
            "metadata": {"name": "default"},
            "spec": spec,
        }
        answer = await refused(api, before, 422, yaml.safe_dump(store), "is invalid")
        assert [e["field"] for e in answer["errors"]] == [field], answer["errors"]


# --- the runner: even a value that got past the apply never becomes an option or a path ---


def run_input(run_id: str, *containers: Container) -> RunPipelineInput:
    context = PipelineContext(
        workflow_type="resource",
        action="configure",
        promise_name="widgets",
        object_kind="Widget",
        object_group="test.ktx.io",
        object_version="v1",
        object_name="first",
        object_namespace="default",
        crd_plural="widgets",
        cluster_scoped=False,
    )
    pipe = Pipeline.model_validate(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "configure"},
            "spec": {"containers": [c.to_doc() for c in containers]},
        }
    )
    return RunPipelineInput(run_id=run_id, pipeline=pipe, object={}, context=context)


def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    for directory in ("input", "output", "metadata"):
        (root / directory).mkdir(parents=True)
    (root / "input" / "object.yaml").write_text("metadata: {name: first}\n")
    return root


async def test_an_image_that_is_an_option_reaches_podman_as_an_image(tmp_path: Path, pipeline_images) -> None:
    """Straight to the runtime, past every check: `--` keeps `--volume=<host dir>` an (invalid) image name, so the
    host directory is never mounted. Before, this printed the host file."""
    host = tmp_path / "host"
    host.mkdir()
    token = secrets.token_hex(16)
    (host / "secret").write_text(token)
    runtime = ContainerRuntime("podman", [], Isolation(network="none"))
    hostile_container = Container(
        name="c", image=f"--volume={host}:/host", command=["cat", "/host/secret"], args=[BEHAVE]
    )
    name, log = f"ktx-hostile-{secrets.token_hex(4)}", tmp_path / "logs" / "c.log"
    exit_code = await runtime.run(runtime.run_args(name, hostile_container, {}, {}), name, log)
    output = log.read_text()
    assert token not in output
    assert exit_code != 0 and "invalid reference format" in output, output
    # With a real image the same line runs, and what follows the image reaches the container as its arguments.
    fine = Container(name="c", image=BEHAVE, command=["echo"], args=["--volume=/etc:/hostetc"])
    assert await runtime.run(runtime.run_args(name, fine, {}, {}), name, log) == 0
    assert log.read_text() == "--volume=/etc:/hostetc\n"


@pytest.mark.parametrize(
    "hostile_container, reason",
    [
        (Container(name="../../escape", image=BEHAVE), "RFC 1123 label"),
        (Container(name="c", image="--privileged"), "must be an image reference"),
        (Container(name="c", image=BEHAVE, env=[{"name": "A=B", "value": "x"}]), "environment variable name"),
    ],
)
async def test_the_runner_refuses_what_the_apply_would_have(
    tmp_path: Path, hostile_container: Container, reason: str, pipeline_images
) -> None:
    logs = tmp_path / "a" / "b" / "logs"
    runner = PodmanRunner(pipeline_runtime("none", tmp_path / "home"), logs)
    started = time.monotonic()
    outcome = await runner.run(run_input("default-first-configure-0001", hostile_container), workspace(tmp_path))
    assert outcome.failed_container == hostile_container.name
    assert outcome.message.startswith("refused to run: ") and reason in outcome.message, outcome.message
    assert time.monotonic() - started < 5  # refused before any container was started or image pulled
    assert not list(tmp_path.rglob("*.log")), "a log file was written"


# --- out-of-range values from a pipeline: a failed pipeline, never a wedged object ---


def retrier(**control: Any) -> dict[str, Any]:
    return promise(
        "retriers", "Retrier", configure=[pipeline("ask", CONTROL={"retryAfter": "{spec[retry]}", **control})]
    )


async def test_a_retry_after_out_of_range_fails_the_pipeline_and_the_object_stays_manageable(
    platform: Platform, git_remote: Path, tmp_path: Path, pipeline_images
) -> None:
    async with api_for(platform, tmp_path) as (_, http):
        body = yaml.safe_dump_all([*git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}), retrier()])
        assert (await http.post("/apply", content=body)).status_code == 200
        wait = await http.get("/objects/promise/retriers/wait", params={"condition": "Available", "timeout": 60})
        assert wait.status_code == 200, wait.text
        cases = {
            "overflow": ("999999999h", 'failed to parse retry duration: "999999999h"'),
            "past-bound": ("721h", "must be at most 720h (30 days)"),
            "nonsense": ("soon", 'failed to parse retry duration: "soon"'),
        }
        for name, (retry, _) in cases.items():
            response = await http.post("/apply", content=yaml.safe_dump(resource("Retrier", name, {"retry": retry})))
            assert response.status_code == 200, response.text

        async def read(name: str) -> dict[str, Any]:
            response = await http.get(f"/objects/retrier/{name}")
            assert response.status_code == 200, response.text
            return response.json()

        for name, (_, reason) in cases.items():
            obj = await eventually(
                lambda: read(name),
                lambda o: phases(o).get("ask") == "Failed",
                timeout=120,
                what=f"retrier/{name}'s pipeline failed",
            )
            assert reason in pipeline_entry(obj, "ask")["message"], pipeline_entry(obj, "ask")
            assert "kratix.io/workflow-suspended" not in obj["metadata"]["labels"]

        # Every control still answers 2xx, and each object really goes away.
        paused = await http.post("/objects/retrier/overflow/labels", json={"set": {"kratix.io/paused": "true"}})
        assert paused.status_code == 200, paused.text
        await eventually(
            lambda: read("overflow"),
            lambda o: any(c.get("reason") == "PausedReconciliation" for c in o["status"].get("conditions", [])),
            timeout=30,
            what="retrier/overflow paused",
        )
        unpaused = await http.post("/objects/retrier/overflow/labels", json={"remove": ["kratix.io/paused"]})
        assert unpaused.status_code == 200, unpaused.text
        for name, force in (("overflow", False), ("past-bound", True), ("nonsense", False)):
            response = await http.delete(f"/objects/retrier/{name}", params={"force": force, "wait": 120})
            assert response.status_code == 200 and response.json()["deleted"] is True, response.text
            assert (await http.get(f"/objects/retrier/{name}")).status_code == 404
        gone = await http.delete("/objects/promise/retriers", params={"force": True, "wait": 120})
        assert gone.status_code == 200 and gone.json()["deleted"] is True, gone.text
