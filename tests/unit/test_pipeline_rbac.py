"""A pipeline's ServiceAccount and RBAC objects are the ones Kratix's pipeline_factory.go makes: names, labels, rules,
bindings, each written out here as Kratix's code builds it, and each valid by Kubernetes' OpenAPI schemas."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import kubernetes_validate
from kubernetes_validate.utils import latest_version

from activities.pipelines.job import pipeline_rbac_input, pods_expired
from domain.kube.pipeline_token import ObjectRef, Permission, claims_for
from domain.pipeline_rbac import PipelineRbacInput, deterministic_name, pipeline_rbac_objects, stale_objects
from tests.unit.test_pipeline_job import full_defaults, manifest, pod_spec, resource_context, run_input


@pytest.mark.parametrize(
    ("name", "inputs", "expected"),
    [
        # lib/objectutil/name_test.go's cases, the suffix being the first 5 hex digits of md5.
        ("a-short-name", (), "a-short-name-ada84"),
        ("a" * 56 + "trimmed", (), "a" * 56 + "-e1991"),
        ("a" * 55 + "b", (), "a" * 55 + "b-645f4"),
        ("kratix-promise-1.-@$#%&*()_+{}|:<>?/\\`~[]", (), "kratix-promise-1-d7adc"),
        ("a-short-name", ("input1", "input2"), "a-short-name-fd1ad"),
    ],
)
def test_deterministic_names_are_kratixs(name: str, inputs: tuple[str, ...], expected: str) -> None:
    assert deterministic_name(name, *inputs) == expected


def _by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def _subject(name: str, namespace: str) -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]


def _validate(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, latest_version(), strict=True)


def test_a_promise_pipeline_gets_a_service_account_and_kratixs_cluster_role() -> None:
    rbac = PipelineRbacInput(
        promise="redis",
        workflow_type="promise",
        action="configure",
        pipeline="deps",
        namespace="kratix-platform-system",
    )
    objects = pipeline_rbac_objects(rbac)
    _validate(objects)
    assert objects == [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "redis-promise-configure-deps",
                "namespace": "kratix-platform-system",
                "labels": {"kratix.io/promise-name": "redis"},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "redis-promise-configure-deps", "labels": {"kratix.io/promise-name": "redis"}},
            "rules": [
                {
                    "apiGroups": ["platform.kratix.io"],
                    "resources": ["promises", "promises/status", "works"],
                    "verbs": ["get", "list", "update", "create", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "redis-promise-configure-deps", "labels": {"kratix.io/promise-name": "redis"}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "redis-promise-configure-deps",
            },
            "subjects": _subject("redis-promise-configure-deps", "kratix-platform-system"),
        },
    ]


def _resource(**overrides: Any) -> PipelineRbacInput:
    values: dict[str, Any] = {
        "promise": "redis",
        "workflow_type": "resource",
        "action": "configure",
        "pipeline": "instance",
        "namespace": "default",
        "resource_namespace": "default",
        "group": "marketplace.kratix.io",
        "plural": "redis",
    }
    values.update(overrides)
    return PipelineRbacInput.model_validate(values)


OBJECT_RULE = {
    "apiGroups": ["marketplace.kratix.io"],
    "resources": ["redis", "redis/status"],
    "verbs": ["get", "list", "update", "create", "patch"],
}


def test_a_resource_pipeline_gets_a_role_in_its_namespace() -> None:
    objects = pipeline_rbac_objects(_resource())
    _validate(objects)
    kinds = _by_kind(objects)
    assert set(kinds) == {"ServiceAccount", "Role", "RoleBinding"}
    (role,) = kinds["Role"]
    assert role["metadata"] == {
        "name": "redis-resource-configure-instance",
        "namespace": "default",
        "labels": {"kratix.io/promise-name": "redis"},
    }
    assert role["rules"] == [OBJECT_RULE, {"apiGroups": ["platform.kratix.io"], "resources": ["works"], "verbs": ["*"]}]
    (binding,) = kinds["RoleBinding"]
    assert binding["metadata"] == role["metadata"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "redis-resource-configure-instance",
    }
    assert binding["subjects"] == _subject("redis-resource-configure-instance", "default")


def test_a_pipeline_namespace_adds_kratixs_cluster_role_for_the_resources_namespace() -> None:
    objects = pipeline_rbac_objects(_resource(namespace="pipelines", resource_namespace="team-a"))
    _validate(objects)
    kinds = _by_kind(objects)
    assert kinds["ServiceAccount"][0]["metadata"]["namespace"] == "pipelines"
    assert kinds["Role"][0]["metadata"]["namespace"] == "pipelines"
    (cluster_role,) = kinds["ClusterRole"]
    assert cluster_role["metadata"] == {
        "name": "redis-resource-configure-instance-team-a",
        "labels": {"kratix.io/promise-name": "redis"},
    }
    assert cluster_role["rules"] == [OBJECT_RULE]
    (binding,) = kinds["ClusterRoleBinding"]
    assert binding["metadata"] == cluster_role["metadata"]
    assert binding["roleRef"]["name"] == "redis-resource-configure-instance-team-a"
    assert binding["subjects"] == _subject("redis-resource-configure-instance", "pipelines")


def _permission(where: str, resource: str) -> Permission:
    return Permission.model_validate(
        {"resourceNamespace": where, "apiGroups": [""], "resources": [resource], "verbs": ["get", "list"]}
    )


def test_user_permissions_make_roles_or_cluster_roles_bound_where_kratix_binds_them() -> None:
    rbac = _resource(
        namespace="pipelines",
        resource_namespace="pipelines",
        permissions=[_permission("", "secrets"), _permission("other", "configmaps"), _permission("*", "namespaces")],
    )
    objects = pipeline_rbac_objects(rbac)
    _validate(objects)
    kinds = _by_kind(objects)
    labels = {
        "kratix.io/promise-name": "redis",
        "kratix.io/workflow-type": "resource",
        "kratix.io/pipeline-name": "instance",
        "kratix.io/workflow-action": "configure",
        "kratix.io/pipeline-namespace": "pipelines",
    }
    default_role, user_role = kinds["Role"]
    assert default_role["metadata"]["name"] == "redis-resource-configure-instance"
    assert user_role["metadata"] == {
        "name": "redis-resource-configure-instance-bd900",
        "namespace": "pipelines",
        "labels": labels,
    }
    assert user_role["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]}]

    other, everywhere = kinds["ClusterRole"]
    assert other["metadata"] == {
        "name": "redis-resource-configure-instance-other-ef323",
        "labels": {**labels, "kratix.io/resource-namespace": "other"},
    }
    assert everywhere["metadata"] == {
        "name": "redis-resource-configure-instance-kratix-all-namespaces-cad58",
        "labels": {**labels, "kratix.io/resource-namespace": "kratix_all_namespaces"},
    }

    bindings = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in kinds["RoleBinding"]}
    assert set(bindings) == {
        ("pipelines", "redis-resource-configure-instance"),
        ("pipelines", "redis-resource-configure-instance-bd900"),
        # Named after the pipeline's namespace, in the permission's.
        ("other", "redis-resource-configure-instance-pipelines-5907b"),
    }
    cross = bindings[("other", "redis-resource-configure-instance-pipelines-5907b")]
    assert cross["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "redis-resource-configure-instance-other-ef323",
    }
    assert cross["metadata"]["labels"] == other["metadata"]["labels"]
    assert cross["subjects"] == _subject("redis-resource-configure-instance", "pipelines")

    (all_binding,) = kinds["ClusterRoleBinding"]
    assert all_binding["metadata"] == {"name": "redis-resource-configure-instance-pipelines-5907b", "labels": labels}
    assert all_binding["roleRef"]["name"] == "redis-resource-configure-instance-kratix-all-namespaces-cad58"


def test_a_named_service_account_is_the_one_bound() -> None:
    objects = pipeline_rbac_objects(_resource(service_account="mine"))
    kinds = _by_kind(objects)
    assert kinds["ServiceAccount"][0]["metadata"]["name"] == "mine"
    assert kinds["RoleBinding"][0]["subjects"] == _subject("mine", "default")
    # The Role keeps the pipeline's ID.
    assert kinds["Role"][0]["metadata"]["name"] == "redis-resource-configure-instance"


def test_user_permission_objects_no_longer_wanted_are_stale() -> None:
    before = pipeline_rbac_objects(
        _resource(permissions=[_permission("", "secrets"), _permission("other", "configmaps")])
    )
    after = pipeline_rbac_objects(_resource(permissions=[_permission("", "secrets")]))
    labelled = [o for o in before if "kratix.io/pipeline-namespace" in o["metadata"]["labels"]]
    stale = stale_objects(after, labelled)
    assert [(o["kind"], o["metadata"]["name"]) for o in stale] == [
        ("RoleBinding", "redis-resource-configure-instance-default-4912b"),
        ("ClusterRole", "redis-resource-configure-instance-other-ef323"),
    ]
    assert stale_objects(before, labelled) == []


def test_with_pipeline_rbac_a_job_runs_in_the_pipeline_namespace_as_kratixs_account() -> None:
    defaults = full_defaults(pipeline_rbac=True)
    run = run_input(resource_context(pipeline_namespace="kube-public"))
    doc = manifest(run, defaults)
    assert doc["metadata"]["namespace"] == "kube-public"
    spec = pod_spec(doc)
    # The pipeline's own account, its token mounted as Kratix's Pods have it.
    assert spec["serviceAccountName"] == f"{run.context.promise_name}-resource-configure-{run.pipeline.metadata.name}"
    assert spec["automountServiceAccountToken"] is True
    rbac = pipeline_rbac_input(run, defaults)
    assert (rbac.namespace, rbac.resource_namespace) == ("kube-public", run.context.object_namespace)
    # Without pipelineNamespace, ktx's one namespace is the resource's too: no cross-namespace ClusterRole.
    plain = pipeline_rbac_input(run_input(), defaults)
    assert plain.namespace == plain.resource_namespace == "ktx-pipelines"
    assert not [o for o in pipeline_rbac_objects(plain) if o["kind"] == "ClusterRole"]
    # Off, the platform's one account with no token, as before.
    assert pod_spec(manifest(run))["serviceAccountName"] == "ktx-pipeline"


def test_pods_expire_a_ttl_after_their_job_finished() -> None:
    def job(name: str, finished: str | None) -> dict[str, Any]:
        conditions = [{"type": "Complete", "status": "True", "lastTransitionTime": finished}] if finished else []
        return {"metadata": {"name": name}, "status": {"conditions": conditions}}

    jobs = [job("old", "2026-01-01T00:00:00Z"), job("recent", "2026-01-01T00:00:50Z"), job("running", None)]
    now = datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)
    assert pods_expired(jobs, 30, now) == ["old"]
    assert pods_expired(jobs, 10, now) == ["old", "recent"]


def test_a_pipeline_namespace_moves_the_token_there_with_kratixs_cross_namespace_rule() -> None:
    obj = ObjectRef(group="marketplace.kratix.io", version="v1", kind="Redis", plural="redis", name="r", namespace="a")
    claims = claims_for(
        obj=obj,
        promise="redis",
        workflow_type="resource",
        action="configure",
        pipeline="instance",
        permissions=[_permission("", "secrets")],
        expires_at=0,
        configured_namespace="pipelines",
        service_account="mine",
    )
    assert claims.username == "system:serviceaccount:pipelines:mine"
    where = [(r.resources, r.namespace) for r in claims.rules]
    assert where == [
        (["redis", "redis/status"], "pipelines"),
        (["works"], "pipelines"),
        (["redis", "redis/status"], None),  # the resource's kind wherever it is
        (["secrets"], "pipelines"),
    ]
