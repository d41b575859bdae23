"""The Kubernetes pipeline Job as data (activities/pipelines/job.py): the manifest of one run, checked field by field
against Kratix's Job shape (reference §5.2, §5.3, §5.8) and validated against the Kubernetes schemas; the Job's name and
label values; the reading of Job and Pod status; retention (§5.10). No cluster, no Temporal."""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from activities.pipelines.job import (
    ADAPTER_COMMAND,
    RESTRICTED,
    JobDefaults,
    failed_condition_message,
    failed_container,
    job_manifest,
    job_name,
    job_verdict,
    jobs_to_prune,
    label_value,
    pipeline_labels,
    platform_api_secret,
    stuck_container,
)
from activities.pipelines.platform_access import SERVICE_ACCOUNT_MOUNT
from activities.pipelines.models import PipelineContext, RunPipelineInput
from domain.documents import Pipeline

ADAPTER_IMAGE = "registry.example.com/ktx/ktx:1.4.2"
INPUT_URL = "https://transfer.example.com/ktx/in/object.yaml?X-Amz-Signature=in"
RESULT_URL = "https://transfer.example.com/ktx/out/result.tar.gz?X-Amz-Signature=out"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
KRATIX_ENV_NAMES = [
    "KRATIX_WORKFLOW_ACTION",
    "KRATIX_WORKFLOW_TYPE",
    "KRATIX_PROMISE_NAME",
    "KRATIX_PIPELINE_NAME",
    "KRATIX_OBJECT_KIND",
    "KRATIX_OBJECT_GROUP",
    "KRATIX_OBJECT_VERSION",
    "KRATIX_OBJECT_NAME",
    "KRATIX_OBJECT_NAMESPACE",
    "KRATIX_CRD_PLURAL",
    "KRATIX_CLUSTER_SCOPED",
]
SECRET_ENV = {
    "name": "API_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "token", "optional": False}},
}


# --- builders ---------------------------------------------------------------------------------------------------------


def pipeline_doc(name: str = "instance-configure", **spec: Any) -> dict[str, Any]:
    """A Pipeline as a Promise author writes it (camelCase): two containers, the first relying on the platform's
    defaults, the second setting its own pull policy, security context and resources."""
    full_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "render",
                "image": "ghcr.io/example/render:v1",
                "command": ["sh", "-c"],
                "args": ["render --out /kratix/output"],
                "env": [{"name": "MODE", "value": "fast"}, SECRET_ENV],
                "envFrom": [{"configMapRef": {"name": "render-settings"}}],
                "volumeMounts": [{"name": "templates", "mountPath": "/templates", "readOnly": True}],
            },
            {
                "name": "publish",
                "image": "ghcr.io/example/publish:v1",
                "imagePullPolicy": "Always",
                "securityContext": {"runAsUser": 1000, "runAsNonRoot": True},
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
            },
        ],
        "volumes": [{"name": "templates", "configMap": {"name": "render-templates"}}],
    }
    full_spec.update(spec)
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "name": name,
            "labels": {"team": "data", "example.com/tier": "gold"},
            "annotations": {"example.com/owner": "data-team"},
        },
        "spec": full_spec,
    }


def resource_context(**overrides: Any) -> PipelineContext:
    values: dict[str, Any] = dict(
        workflow_type="resource",
        action="configure",
        promise_name="postgresql",
        object_kind="PostgreSQL",
        object_group="marketplace.kratix.io",
        object_version="v1alpha1",
        object_name="acid-db",
        object_namespace="team-a",
        crd_plural="postgresqls",
        cluster_scoped=False,
    )
    values.update(overrides)
    return PipelineContext(**values)


def promise_context(**overrides: Any) -> PipelineContext:
    values: dict[str, Any] = dict(
        workflow_type="promise",
        action="configure",
        promise_name="postgresql",
        object_kind="Promise",
        object_group="platform.kratix.io",
        object_version="v1alpha1",
        object_name="postgresql",
        object_namespace="",
        crd_plural="promises",
        cluster_scoped=True,
    )
    values.update(overrides)
    return PipelineContext(**values)


def run_input(
    context: PipelineContext | None = None, doc: dict[str, Any] | None = None, run_id: str = "wf-1234/run-0001"
) -> RunPipelineInput:
    return RunPipelineInput(
        run_id=run_id,
        pipeline=Pipeline.model_validate(doc if doc is not None else pipeline_doc()),
        object={"apiVersion": "marketplace.kratix.io/v1alpha1", "kind": "PostgreSQL", "metadata": {"name": "acid-db"}},
        context=context or resource_context(),
    )


def full_defaults(**overrides: Any) -> JobDefaults:
    values: dict[str, Any] = dict(
        namespace="ktx-pipelines",
        service_account="ktx-pipeline",
        adapter_image=ADAPTER_IMAGE,
        image_pull_policy="IfNotPresent",
        image_pull_secrets=[{"name": "shared-registry"}],
        container_security_context={
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    )
    values.update(overrides)
    return JobDefaults(**values)


def manifest(input: RunPipelineInput | None = None, defaults: JobDefaults | None = None) -> dict[str, Any]:
    input = input or run_input()
    return job_manifest(input, job_name(input), defaults or full_defaults(), INPUT_URL, RESULT_URL)


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def init(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(doc)["initContainers"] if c["name"] == name]
    return found


def validate(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"invalid Job manifest: {exc}\n{json.dumps(doc, indent=2)}")


def expected_kratix_env(context: PipelineContext, pipeline_name: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in context.env(pipeline_name).items()]


# --- the manifest -----------------------------------------------------------------------------------------------------


def test_containers_run_reader_then_user_containers_in_order_then_the_writer():
    doc = manifest()
    spec = pod_spec(doc)
    assert [c["name"] for c in spec["initContainers"]] == ["ktx-reader", "render", "publish"]
    assert [c["name"] for c in spec["containers"]] == ["ktx-writer"]
    reader, writer = spec["initContainers"][0], spec["containers"][0]
    assert reader["image"] == writer["image"] == ADAPTER_IMAGE
    assert reader["command"] == [*ADAPTER_COMMAND, "reader"]
    assert writer["command"] == [*ADAPTER_COMMAND, "writer"]
    # The user's containers are otherwise theirs: image, command and args untouched.
    render = init(doc, "render")
    assert render["image"] == "ghcr.io/example/render:v1"
    assert render["command"] == ["sh", "-c"] and render["args"] == ["render --out /kratix/output"]
    assert render["envFrom"] == [{"configMapRef": {"name": "render-settings"}}]


def test_container_order_follows_the_pipeline_not_the_names():
    doc = pipeline_doc(containers=[{"name": n, "image": f"example/{n}:v1"} for n in ("zeta", "alpha", "mid", "beta")])
    spec = pod_spec(manifest(run_input(doc=doc)))
    assert [c["name"] for c in spec["initContainers"]] == ["ktx-reader", "zeta", "alpha", "mid", "beta"]


@pytest.mark.parametrize("context", [resource_context(), promise_context()], ids=["resource", "promise"])
def test_user_containers_get_the_kratix_env_first_then_their_own(context: PipelineContext):
    doc = manifest(run_input(context))
    kratix = expected_kratix_env(context, "instance-configure")
    assert [e["name"] for e in kratix] == KRATIX_ENV_NAMES
    render, publish = init(doc, "render"), init(doc, "publish")
    assert render["env"] == kratix + [{"name": "MODE", "value": "fast"}, SECRET_ENV]
    assert publish["env"] == kratix
    # The secret reference reaches Kubernetes exactly as written (camelCase, no value key added).
    assert render["env"][-1] == {
        "name": "API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "token", "optional": False}},
    }


def test_kratix_env_values_for_a_resource_workflow():
    env = {e["name"]: e["value"] for e in init(manifest(), "render")["env"] if e["name"].startswith("KRATIX_")}
    assert env == {
        "KRATIX_WORKFLOW_ACTION": "configure",
        "KRATIX_WORKFLOW_TYPE": "resource",
        "KRATIX_PROMISE_NAME": "postgresql",
        "KRATIX_PIPELINE_NAME": "instance-configure",
        "KRATIX_OBJECT_KIND": "PostgreSQL",
        "KRATIX_OBJECT_GROUP": "marketplace.kratix.io",
        "KRATIX_OBJECT_VERSION": "v1alpha1",
        "KRATIX_OBJECT_NAME": "acid-db",
        "KRATIX_OBJECT_NAMESPACE": "team-a",
        "KRATIX_CRD_PLURAL": "postgresqls",
        "KRATIX_CLUSTER_SCOPED": "false",
    }


def test_kratix_env_values_for_a_promise_workflow():
    doc = manifest(run_input(promise_context(action="delete"), pipeline_doc("promise-delete")))
    env = {e["name"]: e["value"] for e in init(doc, "render")["env"] if e["name"].startswith("KRATIX_")}
    assert env == {
        "KRATIX_WORKFLOW_ACTION": "delete",
        "KRATIX_WORKFLOW_TYPE": "promise",
        "KRATIX_PROMISE_NAME": "postgresql",
        "KRATIX_PIPELINE_NAME": "promise-delete",
        "KRATIX_OBJECT_KIND": "Promise",
        "KRATIX_OBJECT_GROUP": "platform.kratix.io",
        "KRATIX_OBJECT_VERSION": "v1alpha1",
        "KRATIX_OBJECT_NAME": "postgresql",
        "KRATIX_OBJECT_NAMESPACE": "",
        "KRATIX_CRD_PLURAL": "promises",
        "KRATIX_CLUSTER_SCOPED": "true",
    }


def test_presigned_urls_reach_only_the_adapter_container_that_uses_each():
    doc = manifest()
    kratix = expected_kratix_env(resource_context(), "instance-configure")
    reader, writer = init(doc, "ktx-reader"), pod_spec(doc)["containers"][0]
    assert reader["env"] == kratix + [{"name": "KTX_INPUT_URL", "value": INPUT_URL}]
    assert writer["env"] == kratix + [{"name": "KTX_RESULT_URL", "value": RESULT_URL}]
    for name in ("render", "publish"):
        values = json.dumps(init(doc, name))
        assert INPUT_URL not in values and RESULT_URL not in values


def test_user_containers_mount_the_three_kratix_volumes_first_then_their_own():
    doc = manifest()
    kratix_mounts = [
        {"name": "shared-input", "mountPath": "/kratix/input", "readOnly": True},
        {"name": "shared-output", "mountPath": "/kratix/output"},
        {"name": "shared-metadata", "mountPath": "/kratix/metadata"},
    ]
    assert init(doc, "render")["volumeMounts"] == kratix_mounts + [
        {"name": "templates", "mountPath": "/templates", "readOnly": True}
    ]
    assert init(doc, "publish")["volumeMounts"] == kratix_mounts


def test_adapter_mounts():
    doc = manifest()
    assert init(doc, "ktx-reader")["volumeMounts"] == [{"name": "shared-input", "mountPath": "/kratix/input"}]
    assert pod_spec(doc)["containers"][0]["volumeMounts"] == [
        {"name": "shared-output", "mountPath": "/kratix/output", "readOnly": True},
        {"name": "shared-metadata", "mountPath": "/kratix/metadata", "readOnly": True},
        {"name": "ktx-scratch", "mountPath": "/tmp"},
    ]


def test_user_volumes_are_appended_after_the_kratix_volumes_and_every_mount_has_a_volume():
    spec = pod_spec(manifest())
    assert spec["volumes"] == [
        {"name": "shared-input", "emptyDir": {}},
        {"name": "shared-output", "emptyDir": {}},
        {"name": "shared-metadata", "emptyDir": {}},
        {"name": "ktx-scratch", "emptyDir": {}},
        {"name": "templates", "configMap": {"name": "render-templates"}},
    ]
    declared = {v["name"] for v in spec["volumes"]}
    for container in spec["initContainers"] + spec["containers"]:
        assert {m["name"] for m in container["volumeMounts"]} <= declared, container["name"]


def test_platform_defaults_apply_only_where_a_container_sets_none():
    defaults = full_defaults()
    doc = manifest(defaults=defaults)
    render, publish = init(doc, "render"), init(doc, "publish")
    assert render["imagePullPolicy"] == "IfNotPresent"
    assert render["securityContext"] == defaults.container_security_context
    assert render["resources"] == defaults.resources
    assert publish["imagePullPolicy"] == "Always"
    assert publish["securityContext"] == {"runAsUser": 1000, "runAsNonRoot": True}
    assert publish["resources"] == {"limits": {"cpu": "1", "memory": "512Mi"}}


def test_adapter_containers_use_kratix_fixed_security_context_and_the_default_pull_policy():
    doc = manifest(
        defaults=full_defaults(container_security_context={"runAsUser": 0}, resources={"limits": {"cpu": "9"}})
    )
    for container in (init(doc, "ktx-reader"), pod_spec(doc)["containers"][0]):
        assert container["securityContext"] == RESTRICTED
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "privileged": False,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        # Kratix's DefaultResourceRequirements is the platform's default for its own containers too.
        assert container["resources"] == {"limits": {"cpu": "9"}}
        assert container["imagePullPolicy"] == "IfNotPresent"
    validate(doc)


def test_adapter_containers_get_kratix_built_in_resources_without_platform_defaults():
    doc = manifest(defaults=JobDefaults(adapter_image=ADAPTER_IMAGE))
    for container in (init(doc, "ktx-reader"), pod_spec(doc)["containers"][0]):
        assert container["resources"] == {
            "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "128Mi"},
            "limits": {"cpu": "200m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
        }
    validate(doc)


def test_adapter_containers_keep_empty_default_resources_as_kratix_does():
    """defaultContainerResources: {} lifts every limit, Kratix's own containers' included."""
    doc = manifest(defaults=JobDefaults(adapter_image=ADAPTER_IMAGE, resources={}))
    for container in (init(doc, "ktx-reader"), pod_spec(doc)["containers"][0]):
        assert container["resources"] == {}
    validate(doc)


def test_without_platform_defaults_nothing_is_added():
    doc = manifest(defaults=JobDefaults(adapter_image=ADAPTER_IMAGE))
    render = init(doc, "render")
    for key in ("imagePullPolicy", "securityContext", "resources"):
        assert key not in render
    assert "imagePullPolicy" not in init(doc, "ktx-reader")
    assert "imagePullPolicy" not in pod_spec(doc)["containers"][0]
    assert init(doc, "publish")["imagePullPolicy"] == "Always"
    assert "imagePullSecrets" not in pod_spec(doc)
    assert doc["metadata"]["namespace"] == "ktx-pipelines"
    assert pod_spec(doc)["serviceAccountName"] == "ktx-pipeline"
    validate(doc)


def test_image_pull_secrets_are_merged_without_duplicates():
    doc = pipeline_doc(imagePullSecrets=[{"name": "team-registry"}, {"name": "shared-registry"}, {"name": "other"}])
    spec = pod_spec(
        manifest(
            run_input(doc=doc),
            full_defaults(image_pull_secrets=[{"name": "shared-registry"}, {"name": "adapter-registry"}]),
        )
    )
    assert spec["imagePullSecrets"] == [
        {"name": "shared-registry"},
        {"name": "adapter-registry"},
        {"name": "team-registry"},
        {"name": "other"},
    ]


def test_image_pull_secrets_of_the_pipeline_alone():
    doc = pipeline_doc(imagePullSecrets=[{"name": "team-registry"}])
    spec = pod_spec(manifest(run_input(doc=doc), full_defaults(image_pull_secrets=[])))
    assert spec["imagePullSecrets"] == [{"name": "team-registry"}]


def test_node_selector_and_tolerations_pass_through():
    tolerations = [
        {"key": "dedicated", "operator": "Equal", "value": "pipelines", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    doc = pipeline_doc(nodeSelector={"kubernetes.io/os": "linux", "pool": "pipelines"}, tolerations=tolerations)
    spec = pod_spec(manifest(run_input(doc=doc)))
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "pipelines"}
    assert spec["tolerations"] == tolerations
    plain = pod_spec(manifest())
    assert "nodeSelector" not in plain and "tolerations" not in plain


def test_default_service_account_without_its_token():
    spec = pod_spec(manifest(defaults=full_defaults(service_account="pipelines-sa")))
    assert spec["serviceAccountName"] == "pipelines-sa"
    assert spec["automountServiceAccountToken"] is False


def test_a_pipeline_naming_its_service_account_gets_its_token():
    doc = pipeline_doc(rbac={"serviceAccount": "postgres-operator"})
    spec = pod_spec(manifest(run_input(doc=doc)))
    assert spec["serviceAccountName"] == "postgres-operator"
    assert spec["automountServiceAccountToken"] is True


PLATFORM_API_ENV = {"KUBERNETES_SERVICE_HOST": "ktx-api.ktx-system.svc", "KUBERNETES_SERVICE_PORT": "6443"}


def platform_api_manifest(input: RunPipelineInput | None = None) -> dict[str, Any]:
    input = input or run_input()
    defaults = full_defaults(platform_api_env=PLATFORM_API_ENV)
    return job_manifest(input, job_name(input), defaults, INPUT_URL, RESULT_URL, platform_api=True)


def test_user_containers_reach_the_platform_api_through_the_runs_secret_at_the_service_account_path():
    input = run_input()
    doc = platform_api_manifest(input)
    spec = pod_spec(doc)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "ktx-platform-api"]
    assert volume["projected"]["defaultMode"] == 0o644
    (source,) = volume["projected"]["sources"]
    assert source["secret"]["name"] == f"{job_name(input)}-platform-api"
    assert [i["key"] for i in source["secret"]["items"]] == ["token", "ca.crt", "namespace"]
    for container in ("render", "publish"):
        doc_container = init(doc, container)
        assert {"name": "ktx-platform-api", "mountPath": SERVICE_ACCOUNT_MOUNT, "readOnly": True} in doc_container[
            "volumeMounts"
        ]
        names = [e["name"] for e in doc_container["env"]]
        # The Service's variables come first, so the container's own (and Kratix's) win, as kubelet orders them.
        assert names[:2] == ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
        assert doc_container["env"][0]["value"] == "ktx-api.ktx-system.svc"
    # The adapters move data only: no token for them.
    for adapter in [init(doc, "ktx-reader"), spec["containers"][0]]:
        assert all(m["name"] != "ktx-platform-api" for m in adapter["volumeMounts"])
        assert all(not e["name"].startswith("KUBERNETES_") for e in adapter["env"])
    # Without it, the Job is as before.
    plain = pod_spec(manifest(input))
    assert all(v["name"] != "ktx-platform-api" for v in plain["volumes"])


def test_the_runs_secret_holds_the_service_account_files_and_the_pipelines_labels():
    input = run_input()
    files = {"token": b"ktxp1.a.b", "ca.crt": b"-----BEGIN CERTIFICATE-----", "namespace": b"team-a"}
    secret = platform_api_secret(input, job_name(input), full_defaults(), files)
    assert secret["metadata"]["name"] == f"{job_name(input)}-platform-api"
    assert secret["metadata"]["namespace"] == "ktx-pipelines"
    assert secret["metadata"]["labels"] == pipeline_labels(input)
    assert {k: base64.b64decode(v) for k, v in secret["data"].items()} == files


def test_restart_policy_never_by_default_and_backoff_limit_zero():
    doc = manifest()
    assert pod_spec(doc)["restartPolicy"] == "Never"
    assert doc["spec"]["backoffLimit"] == 0
    # The workflow retries (jobOptions.backoffLimit), never Kubernetes: still 0, and an explicit policy is kept.
    other = manifest(run_input(doc=pipeline_doc(restartPolicy="OnFailure", jobOptions={"backoffLimit": 3})))
    assert pod_spec(other)["restartPolicy"] == "OnFailure"
    assert other["spec"]["backoffLimit"] == 0


def test_job_identity_labels_and_the_pipelines_own_on_job_and_pod():
    doc = manifest()
    expected = {
        "kratix.io/promise-name": "postgresql",
        "kratix.io/workflow-type": "resource",
        "kratix.io/workflow-action": "configure",
        "kratix.io/pipeline-name": "instance-configure",
        "kratix.io/resource-name": "acid-db",
        "kratix.io/resource-namespace": "team-a",
        "app.kubernetes.io/managed-by": "ktx",
        "team": "data",
        "example.com/tier": "gold",
    }
    assert doc["metadata"]["labels"] == expected
    assert doc["spec"]["template"]["metadata"]["labels"] == expected


def test_promise_workflow_labels_have_no_resource_labels():
    doc = manifest(run_input(promise_context(), pipeline_doc("promise-configure")))
    labels = doc["metadata"]["labels"]
    assert labels["kratix.io/workflow-type"] == "promise"
    assert labels["kratix.io/pipeline-name"] == "promise-configure"
    assert "kratix.io/resource-name" not in labels and "kratix.io/resource-namespace" not in labels
    assert labels["team"] == "data"


def test_the_identity_labels_retention_selects_on_win_over_the_pipelines_own():
    doc = pipeline_doc()
    doc["metadata"]["labels"] = {"kratix.io/promise-name": "impostor", "app.kubernetes.io/managed-by": "someone-else"}
    input = run_input(doc=doc)
    labels = manifest(input)["metadata"]["labels"]
    assert labels["kratix.io/promise-name"] == "postgresql"
    assert labels["app.kubernetes.io/managed-by"] == "ktx"
    assert pipeline_labels(input).items() <= labels.items()


def test_annotations_name_the_object_the_job_works_for():
    doc = manifest()
    assert doc["metadata"]["annotations"] == {
        "kratix.io/job-resource-namespace": "team-a",
        "kratix.io/job-resource-name": "acid-db",
        "kratix.io/job-resource-kind": "PostgreSQL",
        "kratix.io/job-resource-api-version": "marketplace.kratix.io/v1alpha1",
        "ktx.io/run-id": "wf-1234/run-0001",
    }
    # The Pipeline's annotations go to the Pod only (Kratix: "Copied to the Pod template (not the Job)").
    assert doc["spec"]["template"]["metadata"]["annotations"] == {"example.com/owner": "data-team"}


def test_annotations_of_a_promise_workflow_and_of_a_core_group_object():
    promise = manifest(run_input(promise_context(), pipeline_doc("promise-configure")))["metadata"]["annotations"]
    assert promise["kratix.io/job-resource-namespace"] == ""
    assert promise["kratix.io/job-resource-name"] == "postgresql"
    assert promise["kratix.io/job-resource-kind"] == "Promise"
    assert promise["kratix.io/job-resource-api-version"] == "platform.kratix.io/v1alpha1"
    core = manifest(run_input(resource_context(object_group="", object_version="v1", object_kind="ConfigMap")))
    assert core["metadata"]["annotations"]["kratix.io/job-resource-api-version"] == "v1"


def test_job_metadata_name_and_namespace():
    input = run_input()
    doc = job_manifest(input, "given-name", full_defaults(namespace="platform-jobs"), INPUT_URL, RESULT_URL)
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "Job"
    assert doc["metadata"]["name"] == "given-name"
    assert doc["metadata"]["namespace"] == "platform-jobs"


def test_building_the_manifest_changes_nothing_it_was_given():
    input, defaults = run_input(), full_defaults()
    before_input, before_defaults = input.model_dump(), defaults.model_dump()
    first = copy.deepcopy(manifest(input, defaults))
    second = manifest(input, defaults)
    assert first == second
    assert input.model_dump() == before_input and defaults.model_dump() == before_defaults
    json.dumps(second)  # plain data, ready for the API


VALIDATION_CASES = {
    "resource-full": lambda: manifest(),
    "promise": lambda: manifest(run_input(promise_context(), pipeline_doc("promise-configure"))),
    "promise-delete-minimal": lambda: manifest(
        run_input(
            promise_context(action="delete"),
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        ),
        JobDefaults(adapter_image=ADAPTER_IMAGE),
    ),
    "everything": lambda: manifest(
        run_input(
            doc=pipeline_doc(
                rbac={"serviceAccount": "custom"},
                restartPolicy="OnFailure",
                jobOptions={"backoffLimit": 2},
                nodeSelector={"kubernetes.io/os": "linux"},
                tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                imagePullSecrets=[{"name": "team-registry"}],
            )
        )
    ),
    "platform-api": lambda: platform_api_manifest(),
    "platform-api-secret": lambda: platform_api_secret(
        run_input(),
        job_name(run_input()),
        full_defaults(),
        {"token": b"ktxp1.x.y", "ca.crt": b"PEM", "namespace": b"a"},
    ),
    "long-names": lambda: manifest(
        run_input(
            resource_context(promise_name="p" * 63, object_name="r" * 253, object_namespace="n" * 63),
            pipeline_doc("x" * 100),
        )
    ),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES), ids=list(VALIDATION_CASES))
def test_every_manifest_is_a_valid_object(case: str):
    doc = VALIDATION_CASES[case]()
    validate(doc)
    assert len(doc["metadata"]["name"]) <= 63
    for value in doc["metadata"]["labels"].values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value


# --- names ------------------------------------------------------------------------------------------------------------


def test_job_name_is_deterministic_per_run():
    assert job_name(run_input(run_id="run-a")) == job_name(run_input(run_id="run-a"))
    a, b = job_name(run_input(run_id="run-a")), job_name(run_input(run_id="run-b"))
    assert a != b
    assert a[:-5] == b[:-5]  # the same pipeline's Jobs differ only by the run's suffix


def test_job_name_shape():
    resource = job_name(run_input())
    assert re.fullmatch(r"ktx-postgresql-acid-db-instance-configure-[0-9a-f]{5}", resource)
    promise = job_name(run_input(promise_context(), pipeline_doc("promise-configure")))
    assert re.fullmatch(r"ktx-postgresql-promise-configure-[0-9a-f]{5}", promise)


def _names_around_the_cut() -> list[tuple[str, str, str]]:
    """Long names whose truncation point falls on every position, including right after a dash."""
    cases = []
    for n in range(1, 80):
        cases.append(("p" * n, "acid-db", "configure"))
        cases.append(("postgresql", "-".join(["ab"] * n)[: 3 * n], "configure"))
        cases.append(("postgresql", "acid-db", "a-" * n + "z"))
    cases.append(("p" * 63, "r" * 253, "x" * 253))
    cases.append(("a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z", "a" * 50 + "-" * 1 + "b" * 10, "z-z"))
    return cases


def test_job_name_is_a_dns_label_of_at_most_63_characters_for_long_names():
    rng = random.Random(7)
    seen = set()
    for promise, resource, pipeline in _names_around_the_cut():
        resource = resource.strip("-") or "r"
        for context in (
            resource_context(promise_name=promise, object_name=resource),
            promise_context(promise_name=promise, object_name=promise),
        ):
            name = job_name(run_input(context, pipeline_doc(pipeline), run_id=f"run-{rng.random()}"))
            assert len(name) <= 63, name
            assert DNS_LABEL.match(name), name
            seen.add(name)
    assert len(seen) > 200


def test_job_name_of_dotted_kubernetes_names_stays_a_valid_object_name():
    """Resource names are DNS subdomains and may hold dots; Job names may too (as in Kratix)."""
    for n in range(40, 70):
        resource = ("db." * n)[:n].strip(".")
        name = job_name(run_input(resource_context(object_name=resource)))
        assert len(name) <= 63 and DNS_SUBDOMAIN.match(name), name


@pytest.mark.parametrize("value", ["postgresql", "", "A", "a.b_c-d", "team-a", "x" * 63, "Z9"])
def test_label_value_keeps_valid_values(value: str):
    assert label_value(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "x" * 64,
        "y" * 253,
        "a-" * 40,
        "ab." * 30,
        "team/a",
        "has space",
        "-leading-dash",
        "trailing-dash-",
        "_underscore_",
        "p" * 56 + "-" + "q" * 20,
        "p" * 56 + "." + "q" * 20,
        "p" * 55 + "_-" + "q" * 20,
        pytest.param("日本語", id="only-non-ascii"),
        pytest.param("///", id="only-invalid-characters"),
        pytest.param("name\n", id="trailing-newline"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_label_value_makes_any_value_a_valid_label_value(value: str):
    result = label_value(value)
    assert len(result) <= 63, result
    assert LABEL_VALUE.match(result), repr(result)
    assert result == label_value(value)


def test_label_values_of_long_names_stay_distinct():
    a, b = "r" * 70 + "-one", "r" * 70 + "-two"
    assert label_value(a) != label_value(b)
    assert label_value(a).startswith("r" * 50)


# --- reading Job and Pod status ---------------------------------------------------------------------------------------


def job(conditions: list[dict[str, Any]] | None = None, **metadata: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"metadata": {"name": "j", **metadata}}
    if conditions is not None:
        doc["status"] = {"conditions": conditions}
    return doc


@pytest.mark.parametrize(
    "conditions, verdict",
    [
        (None, None),
        ([], None),
        ([{"type": "Complete", "status": "True"}], "Complete"),
        ([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], "Failed"),
        ([{"type": "Complete", "status": "False"}], None),
        ([{"type": "Suspended", "status": "True"}], None),
        # Kubernetes ≥ 1.31 sets these first, while the Pod may still be terminating: not finished yet.
        ([{"type": "SuccessCriteriaMet", "status": "True"}], None),
        ([{"type": "FailureTarget", "status": "True"}], None),
        ([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}], "Complete"),
        ([{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}], "Failed"),
    ],
)
def test_job_verdict(conditions: list[dict[str, Any]] | None, verdict: str | None):
    assert job_verdict(job(conditions)) == verdict


def test_job_verdict_of_a_job_without_status_fields():
    assert job_verdict({"metadata": {"name": "j"}, "status": None}) is None
    assert job_verdict({"metadata": {"name": "j"}, "status": {"active": 1}}) is None


def terminated(name: str, code: int, reason: str | None = None, image: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": code,
        "startedAt": "2024-05-01T10:00:00Z",
        "finishedAt": "2024-05-01T10:00:03Z",
    }
    if reason:
        state["reason"] = reason
    return {"name": name, "image": image or f"example/{name}:v1", "state": {"terminated": state}}


def waiting(name: str, reason: str, message: str = "", image: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"name": name, "image": image or f"example/{name}:v1", "state": {"waiting": state}}


def pod(init: list[dict[str, Any]] | None = None, main: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if init is not None:
        status["initContainerStatuses"] = init
    if main is not None:
        status["containerStatuses"] = main
    return {"metadata": {"name": "j-abcde"}, "status": status}


def test_failed_container_is_the_first_non_zero_exit_after_successful_ones():
    p = pod(
        init=[
            terminated("ktx-reader", 0, "Completed"),
            terminated("render", 0, "Completed"),
            terminated("publish", 2, "Error"),
            waiting("later", "PodInitializing"),
        ],
        main=[waiting("ktx-writer", "PodInitializing")],
    )
    assert failed_container(p) == ("publish", "container 'publish' (example/publish:v1) exited with code 2")


def test_failed_container_names_an_unusual_reason():
    p = pod(init=[terminated("ktx-reader", 0), terminated("render", 137, "OOMKilled")])
    assert failed_container(p) == ("render", "container 'render' (example/render:v1) exited with code 137 (OOMKilled)")


def test_failed_container_waiting_on_an_image_that_cannot_be_pulled():
    p = pod(
        init=[
            terminated("ktx-reader", 0, "Completed"),
            terminated("render", 0, "Completed"),
            waiting("publish", "ErrImagePull", "rpc error: not found", image="ghcr.io/example/nope:v9"),
        ],
        main=[waiting("ktx-writer", "PodInitializing")],
    )
    assert failed_container(p) == (
        "publish",
        "container 'publish' (ghcr.io/example/nope:v9) cannot start: ErrImagePull: rpc error: not found",
    )


def test_failed_container_waiting_without_a_message():
    p = pod(init=[waiting("ktx-reader", "CreateContainerConfigError")])
    assert failed_container(p) == (
        "ktx-reader",
        "container 'ktx-reader' (example/ktx-reader:v1) cannot start: CreateContainerConfigError",
    )


def test_failed_container_can_be_the_writer():
    p = pod(init=[terminated("ktx-reader", 0), terminated("render", 0)], main=[terminated("ktx-writer", 1, "Error")])
    assert failed_container(p) == ("ktx-writer", "container 'ktx-writer' (example/ktx-writer:v1) exited with code 1")


@pytest.mark.parametrize(
    "p",
    [
        {"metadata": {"name": "x"}},
        {"metadata": {"name": "x"}, "status": None},
        pod(),
        pod(init=[], main=[]),
        pod(init=[terminated("ktx-reader", 0), waiting("render", "PodInitializing")]),
        pod(init=[terminated("ktx-reader", 0), {"name": "render", "image": "r", "state": {"running": {}}}]),
        pod(
            init=[terminated("ktx-reader", 0), terminated("render", 0)], main=[terminated("ktx-writer", 0, "Completed")]
        ),
        pod(init=[waiting("ktx-reader", "ContainerCreating")]),
    ],
    ids=["no-status", "null-status", "empty-status", "empty-lists", "initializing", "running", "succeeded", "creating"],
)
def test_no_failed_container(p: dict[str, Any]):
    assert failed_container(p) is None


def test_a_failed_job_without_container_information_is_explained_by_its_condition():
    failed = job(
        [
            {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"},
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
            },
        ]
    )
    assert job_verdict(failed) == "Failed"
    assert failed_container(pod()) is None
    assert failed_condition_message(failed) == "DeadlineExceeded: Job was active longer than specified deadline"
    assert (
        failed_condition_message(job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]))
        == "BackoffLimitExceeded"
    )
    assert failed_condition_message(job([{"type": "Failed", "status": "True"}])) == "Failed"
    assert failed_condition_message(job()) == "the Job failed"


@pytest.mark.parametrize(
    "reason",
    ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"],
)
def test_stuck_container(reason: str):
    p = pod(
        init=[terminated("ktx-reader", 0), waiting("render", reason)], main=[waiting("ktx-writer", "PodInitializing")]
    )
    assert stuck_container(p) == "render"
    assert (
        stuck_container(
            pod(init=[terminated("ktx-reader", 0), terminated("render", 0)], main=[waiting("ktx-writer", reason)])
        )
        == "ktx-writer"
    )


@pytest.mark.parametrize(
    "p",
    [
        {"metadata": {"name": "x"}},
        pod(),
        pod(init=[waiting("ktx-reader", "ContainerCreating")]),
        pod(init=[waiting("ktx-reader", "PodInitializing")]),
        pod(init=[terminated("ktx-reader", 0), terminated("render", 1)]),
        pod(init=[terminated("ktx-reader", 0), waiting("render", "CrashLoopBackOff")]),
    ],
)
def test_not_stuck(p: dict[str, Any]):
    assert stuck_container(p) is None


# --- retention --------------------------------------------------------------------------------------------------------


def finished(name: str, minute: int, verdict: str | None = "Complete") -> dict[str, Any]:
    conditions = [{"type": verdict, "status": "True"}] if verdict else []
    return job(conditions, name=name, creationTimestamp=f"2024-05-01T10:{minute:02d}:00Z")


def test_jobs_to_prune_keeps_the_newest_n_by_creation_time():
    jobs = [finished(f"job-{m:02d}", m, "Complete" if m % 2 else "Failed") for m in range(10)]
    random.Random(3).shuffle(jobs)
    assert sorted(jobs_to_prune(jobs, 3)) == [f"job-{m:02d}" for m in range(7)]
    assert jobs_to_prune(jobs, 10) == [] and jobs_to_prune(jobs, 50) == []
    assert sorted(jobs_to_prune(jobs, 9)) == ["job-00"]


def test_jobs_to_prune_orders_by_time_not_by_name():
    jobs = [finished("zzz-oldest", 1), finished("aaa-newest", 30), finished("mmm-middle", 15)]
    assert jobs_to_prune(jobs, 1) == ["mmm-middle", "zzz-oldest"]


def test_jobs_to_prune_never_prunes_a_running_job():
    jobs = [finished("old-running", 0, None), finished("old-done", 1)] + [
        finished(f"new-{m}", m) for m in range(10, 15)
    ]
    assert jobs_to_prune(jobs, 2) == ["new-12", "new-11", "new-10", "old-done"]
    only_running = [finished(f"run-{m}", m, None) for m in range(20)]
    assert jobs_to_prune(only_running, 1) == []


@pytest.mark.parametrize("keep", [0, -1, -100])
def test_jobs_to_keep_below_one_means_five(keep: int):
    jobs = [finished(f"job-{m:02d}", m) for m in range(8)]
    assert sorted(jobs_to_prune(jobs, keep)) == ["job-00", "job-01", "job-02"]
    assert jobs_to_prune(jobs[:5], keep) == []


def test_jobs_to_prune_of_nothing():
    assert jobs_to_prune([], 5) == []
