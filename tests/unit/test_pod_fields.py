"""A Pipeline's Pod fields: refused at apply with the field named when ktx cannot honour them on any runner, and
read by the podman runner as kubelet reads them (domain/pod_fields.py, activities/pipelines/pod_inputs.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from activities.pipelines.pod_inputs import (
    ConfigError,
    ignored_fields,
    mounts_for,
    prepare_volumes,
    resolve_env,
    resource_args,
    write_auth_file,
)
from activities.stores.secrets import SecretStore
from domain.config import PlatformConfig
from domain.documents import Pipeline, Promise
from domain.errors import InvalidDocument
from domain.pipeline_rules import check_pipeline
from domain.pod_fields import KRATIX_DEFAULT_RESOURCES, pull_policy, quantity, resource_value
from domain.promise_api import check_runner


def pipeline(container: dict[str, Any] | None = None, **spec: Any) -> Pipeline:
    return Pipeline.model_validate(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "localhost/x/a:v1", **(container or {})}], **spec},
        }
    )


def refusals(p: Pipeline) -> dict[str, str]:
    return {e.field: e.reason for e in check_pipeline(p, "pipe")}


@pytest.mark.parametrize(
    "container, spec, field, phrase",
    [
        ({"ports": [{"containerPort": 80}]}, {}, "pipe.spec.containers[0].ports", "not a field of a Kratix Pipeline"),
        ({"imagePullPolicy": "Sometimes"}, {}, "pipe.spec.containers[0].imagePullPolicy", "Unsupported value"),
        (
            {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.configMapKeyRef",
            "ConfigMaps are not served",
        ),
        (
            {"envFrom": [{"configMapRef": {"name": "c"}}]},
            {},
            "pipe.spec.containers[0].envFrom[0].configMapRef",
            "ConfigMaps are not served",
        ),
        ({}, {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}, "pipe.spec.volumes[0].configMap", "not served"),
        (
            {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.secretKeyRef.name",
            "RFC 1123",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "/a,b:/etc"}]},
            {"volumes": [{"name": "v", "emptyDir": {}}]},
            "pipe.spec.containers[0].volumeMounts[0].mountPath",
            "absolute path",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "/x", "subPath": "../../etc"}]},
            {"volumes": [{"name": "v", "emptyDir": {}}]},
            "pipe.spec.containers[0].volumeMounts[0].subPath",
            "without '..'",
        ),
        (
            {"volumeMounts": [{"name": "v", "mountPath": "/kratix/output"}]},
            {"volumes": [{"name": "v", "emptyDir": {}}]},
            "pipe.spec.containers[0].volumeMounts[0].mountPath",
            "Kratix mounts",
        ),
        (
            {"volumeMounts": [{"name": "nope", "mountPath": "/x"}]},
            {},
            "pipe.spec.containers[0].volumeMounts[0].name",
            "no such volume",
        ),
        (
            {},
            {"volumes": [{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "/etc/x"}]}}]},
            "pipe.spec.volumes[0].secret.items[0].path",
            "relative path",
        ),
        (
            {},
            {"volumes": [{"name": "v", "secret": {"secretName": "s", "defaultMode": 4096}}]},
            "pipe.spec.volumes[0].secret.defaultMode",
            "0777",
        ),
        (
            {"resources": {"limits": {"memory": "lots"}}},
            {},
            "pipe.spec.containers[0].resources.limits.memory",
            "not a quantity",
        ),
        (
            {"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}},
            {},
            "pipe.spec.containers[0].resources.requests.cpu",
            "less than or equal to cpu limit",
        ),
        ({}, {"imagePullSecrets": [{"name": "-x"}]}, "pipe.spec.imagePullSecrets[0].name", "RFC 1123"),
        ({}, {"restartPolicy": "Always"}, "pipe.spec.restartPolicy", "supported values: OnFailure, Never"),
        (
            {"env": [{"name": "A", "value": "v", "valueFom": {}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFom",
            "unknown field",
        ),
        (
            {},
            {"volumes": [{"name": "v", "secret": {"secretName": "s", "itmes": []}}]},
            "pipe.spec.volumes[0].secret.itmes",
            "unknown field",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
            "Unsupported value: 'status.phase'",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.fieldRef.apiVersion",
            "only 'v1'",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['Not A Key']"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
            "name part must be",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.resourceFieldRef.resource",
            "Unsupported value: 'limits.gpu'",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}}}]},
            {},
            "pipe.spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor",
            "only divisor's values 1m, 1 are supported with the cpu resource",
        ),
        (
            {
                "env": [
                    {"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1m"}}}
                ]
            },
            {},
            "pipe.spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor",
            "supported with the memory resource",
        ),
        (
            {
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {"resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}},
                    }
                ]
            },
            {},
            "pipe.spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName",
            "no such container",
        ),
    ],
)
def test_what_no_runner_can_honour_is_refused_with_the_field_named(
    container: dict[str, Any], spec: dict[str, Any], field: str, phrase: str
) -> None:
    found = refusals(pipeline(container, **spec))
    assert field in found and phrase in found[field], found


def test_what_ktx_honours_is_accepted() -> None:
    p = pipeline(
        {
            "imagePullPolicy": "IfNotPresent",
            "env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
                {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['example.com/tier']"}}},
                {"name": "R", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "M", "valueFrom": {"resourceFieldRef": {"containerName": "c", "resource": "requests.cpu"}}},
                {"name": "K", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1000m"}}},
            ],
            "envFrom": [{"secretRef": {"name": "s"}, "prefix": "P_"}],
            "volumeMounts": [
                {"name": "v", "mountPath": "/etc/v", "readOnly": True},
                {"name": "e", "mountPath": "/work", "subPath": "a/b"},
            ],
            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "0.1"}},
            "workingDir": "/work",
        },
        volumes=[
            {"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "d/f"}], "defaultMode": 0o400}},
            {"name": "e", "emptyDir": {}},
            {"name": "h", "hostPath": {"path": "/data"}},  # the Kubernetes runner mounts it
        ],
        imagePullSecrets=[{"name": "registry"}],
        nodeSelector={"disk": "ssd"},
        restartPolicy="Never",
    )
    assert refusals(p) == {}


def test_quantities_and_pull_policy_defaults() -> None:
    assert quantity("100m") == quantity("0.1") and quantity("256Mi") == 256 * 2**20 and quantity("1e3") == 1000
    assert quantity("1E") == 10**18 and quantity("1Ei") == 2**60 and quantity("2E3") == 2000
    with pytest.raises(ValueError):
        quantity("1.5.5")
    assert pull_policy("busybox", None, None) == "Always"
    assert pull_policy("localhost:5000/a", None, None) == "Always"
    assert pull_policy("a/b:latest", None, None) == "Always"
    assert pull_policy("a/b:v1", None, None) == "IfNotPresent"
    assert pull_policy("a/b@sha256:" + "0" * 64, None, None) == "IfNotPresent"
    assert pull_policy("a/b:v1", None, "Always") == "Always"
    assert pull_policy("a/b", "Never", "Always") == "Never"


def test_resources_map_to_podman_limits_without_swap() -> None:
    args = resource_args({"limits": {"cpu": "200m", "memory": "256Mi"}}, 1024)
    assert args == [
        "--pids-limit=1024",
        "--cpus=0.2",
        "--cpu-shares=204",
        f"--memory={256 * 2**20}b",
        f"--memory-swap={256 * 2**20}b",
    ]
    assert resource_args({"requests": {"memory": "64Mi", "cpu": "1m"}}, 10) == [
        "--pids-limit=10",
        "--cpu-shares=2",
        f"--memory-reservation={64 * 2**20}b",
    ]
    assert resource_args({}, 10) == ["--pids-limit=10"]
    assert PlatformConfig().default_container_resources == KRATIX_DEFAULT_RESOURCES
    with pytest.raises(ValueError, match="not a quantity"):
        PlatformConfig(default_container_resources={"limits": {"memory": "lots"}})


def test_env_precedence_is_kubelets_and_secret_values_stay_apart(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    store.put("team", "bulk", {"A": b"from-bulk", "KRATIX_PROMISE_NAME": b"forged", "1bad": b"x"})
    store.put("team", "one", {"k": b"one-value"})
    p = pipeline(
        {
            "envFrom": [{"secretRef": {"name": "bulk"}}],
            "env": [
                {"name": "A", "value": "plain-wins"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "one", "key": "k"}}},
            ],
        }
    )
    env = resolve_env(p.spec.containers[0], {"SVC": "s"}, {"KRATIX_PROMISE_NAME": "real"}, "team", store)
    assert env.plain == {"SVC": "s", "KRATIX_PROMISE_NAME": "real", "A": "plain-wins"}
    assert env.secret == {"B": b"one-value"}
    assert env.notes == ["envFrom[0]: keys skipped, not valid variable names: 1bad"]
    with pytest.raises(ConfigError, match='secret "bulk" not found'):
        resolve_env(p.spec.containers[0], {}, {}, "elsewhere", store)
    store.put("team", "multi", {"k": b"line\nbreak"})
    multi = pipeline({"env": [{"name": "M", "valueFrom": {"secretKeyRef": {"name": "multi", "key": "k"}}}]})
    with pytest.raises(ConfigError, match="line break"):
        resolve_env(multi.spec.containers[0], {}, {}, "team", store)


def test_a_subpath_that_an_earlier_container_made_a_link_is_refused(tmp_path: Path) -> None:
    p = pipeline(
        {"volumeMounts": [{"name": "e", "mountPath": "/x", "subPath": "escape"}]},
        volumes=[{"name": "e", "emptyDir": {}}],
    )
    volumes = prepare_volumes(p.spec, "default", None, tmp_path / "volumes", None)
    (tmp_path / "volumes" / "e" / "escape").symlink_to("/etc")
    with pytest.raises(ConfigError, match="symbolic link"):
        mounts_for(p.spec.containers[0], volumes)


def test_pull_secrets_become_one_private_auth_file(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    store.put(
        "default",
        "registry",
        {".dockerconfigjson": b'{"auths": {"reg.example:5000": {"auth": "dTpw"}}}'},
        "kubernetes.io/dockerconfigjson",
    )
    p = pipeline(imagePullSecrets=[{"name": "registry"}, {"name": "missing"}])
    path, notes = write_auth_file(tmp_path / "auth.json", p.spec, "default", store)
    assert path is not None and path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == '{"auths": {"reg.example:5000": {"auth": "dTpw"}}}'
    assert notes == ['imagePullSecrets: secret "missing" not found or not of type kubernetes.io/dockerconfigjson']


def test_ignored_fields_name_what_podman_cannot_apply() -> None:
    p = pipeline(
        {"securityContext": {"runAsUser": 1000, "privileged": True, "seccompProfile": {"type": "RuntimeDefault"}}},
        nodeSelector={"a": "b"},
        tolerations=[{"key": "k", "operator": "Exists"}],
        volumes=[{"name": "e", "emptyDir": {"medium": "Memory"}}],
        restartPolicy="OnFailure",
    )
    assert ignored_fields(p.spec, {"c": KRATIX_DEFAULT_RESOURCES}) == [
        "spec.nodeSelector",
        "spec.tolerations",
        "spec.restartPolicy",
        "spec.volumes[0].emptyDir.medium",
        "spec.containers[0].resources.limits.ephemeral-storage",
        "spec.containers[0].resources.requests.ephemeral-storage",
        "spec.containers[0].securityContext.privileged",
    ]


def promise_with(pipeline_spec: dict[str, Any]) -> Promise:
    configure = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": pipeline_spec,
    }
    return Promise.model_validate(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Promise",
            "metadata": {"name": "widgets"},
            "spec": {"workflows": {"resource": {"configure": [configure]}}},
        }
    )


def test_what_the_podman_runner_can_never_honour_is_refused_where_it_runs_the_pipelines() -> None:
    spec = {
        "containers": [
            {"name": "a", "image": "localhost/x/a:v1"},
            {
                "name": "b",
                "image": "localhost/x/b:v1",
                "env": [
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "HUGE", "valueFrom": {"resourceFieldRef": {"resource": "limits.hugepages-2Mi"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
                ],
            },
        ],
        "volumes": [{"name": "data", "hostPath": {"path": "/data"}}, {"name": "e", "emptyDir": {}}],
    }
    with pytest.raises(InvalidDocument) as refused:
        check_runner(promise_with(spec), "podman")
    found = {e.field: e.reason for e in refused.value.errors}
    # The OCI runner is the podman runner with another runtime under it: it refuses the same fields.
    with pytest.raises(InvalidDocument) as refused_on_oci:
        check_runner(promise_with(spec), "oci")
    assert {e.field: e.reason for e in refused_on_oci.value.errors} == found
    where = "spec.workflows.resource.configure[0].spec"
    assert set(found) == {
        f"{where}.containers[1].env[0].valueFrom.fieldRef",
        f"{where}.containers[1].env[2].valueFrom.fieldRef",
        f"{where}.containers[1].env[3].valueFrom.resourceFieldRef",
        f"{where}.volumes[0].hostPath",
    }, found
    assert (
        "spec.nodeName is not available on the podman runner"
        in found[f"{where}.containers[1].env[0].valueFrom.fieldRef"]
    )
    assert "kubernetes runner" in found[f"{where}.volumes[0].hostPath"]
    # The Kubernetes runner hands them all to Kubernetes; a runner not known refuses nothing.
    check_runner(promise_with(spec), "kubernetes")
    check_runner(promise_with(spec), None)


KRATIX_LIMITED = {"limits": {"cpu": "200m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
HOST = {"cpu": Decimal(8), "memory": Decimal(16 * 2**30), "ephemeral-storage": Decimal(100 * 10**9)}


@pytest.mark.parametrize(
    "ref, resources, value",
    [
        ({"resource": "limits.cpu"}, KRATIX_LIMITED, "1"),  # 200m rounded up to whole CPUs
        ({"resource": "limits.cpu", "divisor": "1m"}, KRATIX_LIMITED, "200"),
        ({"resource": "requests.cpu", "divisor": "1m"}, KRATIX_LIMITED, "100"),
        ({"resource": "limits.memory"}, KRATIX_LIMITED, str(256 * 2**20)),
        ({"resource": "limits.memory", "divisor": "1Mi"}, KRATIX_LIMITED, "256"),
        ({"resource": "requests.memory", "divisor": "1M"}, KRATIX_LIMITED, "135"),  # 134.2 MB, rounded up
        # A request defaults to its limit; an unset limit is the node's (the host's); an unset request 0.
        ({"resource": "requests.memory", "divisor": "1Mi"}, {"limits": {"memory": "64Mi"}}, "64"),
        ({"resource": "limits.cpu"}, {}, "8"),
        ({"resource": "limits.memory", "divisor": "1Gi"}, {"requests": {"memory": "1Gi"}}, "16"),
        ({"resource": "requests.cpu"}, {}, "0"),
        ({"resource": "limits.ephemeral-storage", "divisor": "1G"}, {}, "100"),
    ],
)
def test_resource_field_refs_are_kubelets_values(ref: dict[str, Any], resources: dict[str, Any], value: str) -> None:
    assert resource_value(ref, resources, HOST) == value


def test_the_downward_api_on_podman_is_the_kubernetes_runners_pod(tmp_path: Path) -> None:
    from activities.pipelines.downward_api import Unavailable, pod_facts
    from activities.pipelines.job import job_name
    from activities.pipelines.models import PipelineContext, RunPipelineInput

    doc = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "deploy", "labels": {"team": "data"}, "annotations": {"example.com/owner": "data-team"}},
        "spec": {"containers": [{"name": "c", "image": "localhost/x/a:v1"}], "rbac": {"serviceAccount": "deployer"}},
    }
    context = PipelineContext(
        workflow_type="resource",
        action="configure",
        promise_name="widgets",
        object_kind="Widget",
        object_group="test.ktx.io",
        object_version="v1",
        object_name="first",
        object_namespace="team-a",
        crd_plural="widgets",
        cluster_scoped=False,
        pipeline_namespace="pipelines",
    )
    run = RunPipelineInput(run_id="wf/run-1", pipeline=Pipeline.model_validate(doc), object={}, context=context)
    pod = pod_facts(run, {"c": KRATIX_LIMITED}, tmp_path)
    field = lambda path: pod.value({"fieldRef": {"fieldPath": path}}, "c")  # noqa: E731
    job = job_name(run)
    assert field("metadata.name").startswith(f"{job}-") and len(field("metadata.name")) == len(job) + 6
    assert field("metadata.namespace") == "pipelines"  # the Promise's pipelineNamespace, as the token's
    assert field("spec.serviceAccountName") == "deployer"
    assert str(uuid.UUID(field("metadata.uid"))) == field("metadata.uid")
    assert field("metadata.labels['kratix.io/promise-name']") == "widgets"
    assert field("metadata.labels['kratix.io/resource-name']") == "first"
    assert field("metadata.labels['team']") == "data"
    assert field("metadata.labels['job-name']") == job
    assert field("metadata.annotations['example.com/owner']") == "data-team"
    assert field("metadata.labels['absent']") == ""
    # The same run is the same Pod; another run (a retry) another.
    assert pod_facts(run, {"c": KRATIX_LIMITED}, tmp_path).value({"fieldRef": {"fieldPath": "metadata.uid"}}, "c") == (
        field("metadata.uid")
    )
    other = pod_facts(run.model_copy(update={"run_id": "wf/run-2"}), {}, tmp_path)
    assert other.name != pod.name and other.uid != pod.uid
    assert pod.value({"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}, "c") == "256"
    with pytest.raises(Unavailable, match="spec.nodeName is not available on the podman runner"):
        field("spec.nodeName")


def test_a_pod_field_no_process_argument_can_hold_is_a_config_error(tmp_path: Path) -> None:
    from activities.pipelines.downward_api import PodFacts

    pod = PodFacts(
        name="p", namespace="default", uid="u", service_account="sa", labels={}, annotations={"note": "a\0b"}
    )
    container = pipeline(
        {"env": [{"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}}]}
    ).spec.containers[0]
    with pytest.raises(ConfigError, match="variable NOTE: the Pod field's value holds a NUL"):
        resolve_env(container, {}, {}, "default", None, pod)
    fine = PodFacts(name="p", namespace="default", uid="u", service_account="sa", labels={}, annotations={"note": "ok"})
    assert resolve_env(container, {}, {}, "default", None, fine).plain["NOTE"] == "ok"
