"""Issue 14, class 8: every run has a bounded deadline, and one tenant holds at most its share of a worker's slots."""

from __future__ import annotations

import pytest
from kubernetes import client

from activities.pipelines.kube_runner import KubeJobRunner
from activities.pipelines.job import JobDefaults, job_manifest, job_name
from activities.pipelines.models import PipelineContext, RunPipelineInput
from activities.pipelines.activity import TenantSlots
from domain.config import PlatformConfig
from domain.documents import Pipeline, Promise
from domain.durations import format_duration
from domain.errors import InvalidDocument
from domain.pipeline_rules import (
    DEFAULT_PIPELINE_TIMEOUT_S,
    MAX_PIPELINE_TIMEOUT_S,
    PIPELINE_TIMEOUT,
    pipeline_timeout_s,
)
from domain.promise_api import check_promise
from worker.settings import Settings


def _pipeline(annotations: dict[str, str] | None = None) -> Pipeline:
    return Pipeline.model_validate(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "render", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )


def _input(workflow_type: str = "resource", namespace: str = "team-a", timeout_s: float = 600) -> RunPipelineInput:
    context = PipelineContext(
        workflow_type=workflow_type,
        action="configure",
        promise_name="db",
        object_kind="Db",  # type: ignore[arg-type]
        object_group="g",
        object_version="v1",
        object_name="one",
        object_namespace=namespace,
        crd_plural="dbs",
        cluster_scoped=False,
    )
    return RunPipelineInput(
        run_id="team-a-one-render-0123abcd", pipeline=_pipeline(), object={}, context=context, timeout_s=timeout_s
    )


@pytest.mark.parametrize(
    "seconds, text",
    [
        (600, "10m"),
        (3, "3s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (2.5, "2.5s"),
        (86400, "24h"),
        (3661, "1h1m1s"),
        (0, "0s"),
    ],
)
def test_durations_read_as_they_were_written(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_deadline_is_the_annotation_else_the_platform_default_and_always_bounded() -> None:
    assert pipeline_timeout_s(_pipeline(), 3600) == 3600
    assert pipeline_timeout_s(_pipeline({PIPELINE_TIMEOUT: "90s"}), 3600) == 90
    # Admitted before the bounds were checked: still a deadline, within them.
    assert pipeline_timeout_s(_pipeline({PIPELINE_TIMEOUT: "banana"}), 600) == 600
    assert pipeline_timeout_s(_pipeline({PIPELINE_TIMEOUT: "9999h"}), 600) == MAX_PIPELINE_TIMEOUT_S
    assert pipeline_timeout_s(_pipeline({PIPELINE_TIMEOUT: "1ns"}), 600) == 1
    assert PlatformConfig().pipeline_timeout_s == DEFAULT_PIPELINE_TIMEOUT_S == 3600


@pytest.mark.parametrize(
    "value, reason",
    [
        ("banana", 'failed to parse duration: "banana"'),
        ("0s", "must be at least 1s"),
        ("500ms", "must be at least 1s"),
        ("25h", "must be at most 24h"),
        ("-1m", "failed to parse"),
        ("", "failed to parse"),
    ],
)
def test_a_bad_deadline_is_refused_at_apply_naming_the_annotation(value: str, reason: str) -> None:
    doc = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "p"},
        "spec": {"workflows": {"resource": {"configure": [_pipeline({PIPELINE_TIMEOUT: value}).to_doc()]}}},
    }
    with pytest.raises(InvalidDocument) as caught:
        check_promise(Promise.model_validate(doc))
    [error] = caught.value.errors
    assert error.field == f"spec.workflows.resource.configure[0].metadata.annotations['{PIPELINE_TIMEOUT}']"
    assert reason in error.reason


def test_good_deadlines_are_accepted() -> None:
    for value in ("1s", "10m", "1h30m", "24h"):
        doc = {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Promise",
            "metadata": {"name": "p"},
            "spec": {"workflows": {"resource": {"configure": [_pipeline({PIPELINE_TIMEOUT: value}).to_doc()]}}},
        }
        check_promise(Promise.model_validate(doc))


def test_the_platform_default_is_a_bounded_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTX_PIPELINE_TIMEOUT", "10m")
    assert Settings.from_env().platform.pipeline_timeout_s == 600
    monkeypatch.setenv("KTX_PIPELINE_TIMEOUT", "48h")
    with pytest.raises(ValueError, match="pipeline_timeout_s"):
        Settings.from_env()


def test_a_job_carries_the_deadline_and_its_expiry_is_the_reason_shown() -> None:
    run = _input(timeout_s=2.5)
    manifest = job_manifest(
        run, job_name(run), JobDefaults(namespace="pipelines", adapter_image="ktx:test"), "in", "out"
    )
    assert manifest["spec"]["activeDeadlineSeconds"] == 3  # whole seconds, never below the deadline
    runner = KubeJobRunner(
        client.ApiClient(),
        None,
        JobDefaults(namespace="pipelines", adapter_image="ktx:test"),  # type: ignore[arg-type]
        jobs_to_keep=1,
        logs_dir=None,
    )  # type: ignore[arg-type]
    job = {
        "spec": {"activeDeadlineSeconds": 600},
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                }
            ]
        },
    }
    outcome = runner._failure("pipelines/j", job, None, [])
    assert not outcome.succeeded and "Job pipelines/j was stopped: timed out after 10m" in outcome.message


def test_one_tenant_holds_at_most_its_share_and_others_still_get_slots() -> None:
    slots = TenantSlots(per_tenant=2)
    assert slots.take("namespace team-a") and slots.take("namespace team-a")
    assert not slots.take("namespace team-a")
    assert "namespace team-a already runs 2 pipelines" in slots.refusal("namespace team-a")
    assert slots.take("namespace team-b") and slots.take("Promise db")
    slots.give_back("namespace team-a")
    assert slots.take("namespace team-a")
    for tenant in ("namespace team-a", "namespace team-a", "namespace team-b", "Promise db"):
        slots.give_back(tenant)
    assert slots.running == {}
    assert all(TenantSlots().take("x") for _ in range(100))  # a bare activity in tests: no share


def test_tenants_are_namespaces_for_resources_and_promises_for_their_own_runs() -> None:
    assert _input(namespace="team-a").tenant == "namespace team-a"
    assert _input("promise", namespace="").tenant == "Promise db"


@pytest.mark.parametrize(
    "concurrency, share, expected",
    [(8, None, 8), (1, None, 1), (2, None, 2), (8, 4, 4), (8, 8, 8), (8, 20, 8), (8, 1, 1)],
)
def test_a_tenants_share_is_all_the_slots_unless_set(concurrency: int, share: int | None, expected: int) -> None:
    assert Settings(pipeline_concurrency=concurrency, pipeline_tenant_slots=share).tenant_slots == expected
