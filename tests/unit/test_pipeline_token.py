"""Pipeline tokens: signed, expiring, bounded, and carrying exactly the rules Kratix binds to a pipeline's account."""

from __future__ import annotations

import pytest

from domain.kube.pipeline_token import (
    MAX_PERMISSIONS,
    MAX_TOKEN_BYTES,
    ObjectRef,
    PipelineClaims,
    claims_for,
    mint,
    parse_permissions,
    verify,
)
from domain.pipeline_rules import check_pipeline
from domain.documents import Pipeline

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
REDIS = ObjectRef(group="marketplace.kratix.io", version="v1alpha1", kind="Redis", plural="redis", name="r1",
                  namespace="team-a")  # fmt: skip


def resource_claims(permissions: list[dict] | None = None) -> PipelineClaims:
    parsed, errors = parse_permissions(permissions or [], "rbac.permissions")
    assert errors == []
    return claims_for(
        obj=REDIS,
        promise="redis",
        workflow_type="resource",
        action="configure",
        pipeline="instance",
        permissions=parsed,
        expires_at=0,
    )


def test_a_minted_token_verifies_to_its_claims_until_it_expires():
    claims = resource_claims()
    token = mint(claims, KEY, ttl_s=60, now=1000.0)
    got = verify(token, KEY, now=1059.0)
    assert got is not None and got.object == REDIS and got.expires_at == 1060.0
    assert got.username == "system:serviceaccount:team-a:redis-resource-configure-instance"
    assert verify(token, KEY, now=1060.0) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.replace("ktxp1.", "ktxp2.", 1),  # version
        lambda t: ".".join([t.split(".")[0], t.split(".")[1][:-4] + "AAAA", t.split(".")[2]]),  # claims
        lambda t: t + ".x",
        lambda t: "",
        lambda t: "ktxp1..",
        lambda t: t + "A" * MAX_TOKEN_BYTES,
    ],
)
def test_a_tampered_or_malformed_token_is_refused(tamper):
    token = mint(resource_claims(), KEY, ttl_s=60, now=0)
    assert verify(tamper(token), KEY, now=1) is None


def test_another_key_refuses_the_token_and_a_short_key_mints_nothing():
    token = mint(resource_claims(), KEY, ttl_s=60, now=0)
    assert verify(token, OTHER_KEY, now=1) is None
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint(resource_claims(), b"short", ttl_s=60, now=0)


def test_a_resource_pipeline_gets_kratix_default_role_in_its_namespace():
    claims = resource_claims()
    for verb in ("get", "list", "update", "create", "patch"):
        assert claims.allows(verb, "marketplace.kratix.io", "redis", "team-a", "r1")
    assert claims.allows("patch", "marketplace.kratix.io", "redis", "team-a", "r1", subresource="status")
    # Kratix's Role is on the kind in the namespace: another Redis there too, but not delete.
    assert claims.allows("get", "marketplace.kratix.io", "redis", "team-a", "r2")
    assert not claims.allows("delete", "marketplace.kratix.io", "redis", "team-a", "r1")
    assert claims.allows("delete", "platform.kratix.io", "works", "team-a", "w")
    # Nothing of another team, no other kind, no Secret, nothing cluster-wide.
    assert not claims.allows("get", "marketplace.kratix.io", "redis", "team-b", "r1")
    assert not claims.allows("list", "marketplace.kratix.io", "redis", None)
    assert not claims.allows("get", "", "secrets", "team-a", "creds")
    assert not claims.allows("get", "platform.kratix.io", "promises", None, "redis")


def test_a_promise_pipeline_gets_kratix_default_cluster_role():
    claims = claims_for(
        obj=ObjectRef(group="platform.kratix.io", version="v1alpha1", kind="Promise", plural="promises", name="redis"),
        promise="redis",
        workflow_type="promise",
        action="configure",
        pipeline="promise",
        permissions=[],
        expires_at=0,
    )
    assert claims.namespace == "kratix-platform-system"
    assert claims.allows("patch", "platform.kratix.io", "promises", None, "redis", subresource="status")
    assert claims.allows("list", "platform.kratix.io", "works", "team-a")
    assert not claims.allows("delete", "platform.kratix.io", "promises", None, "redis")
    assert not claims.allows("get", "", "secrets", "kratix-platform-system", "x")


def test_rbac_permissions_bind_where_resource_namespace_says():
    claims = resource_claims(
        [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["creds"]},
            {"resourceNamespace": "shared", "apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
            {"resourceNamespace": "*", "apiGroups": ["marketplace.kratix.io"], "resources": ["*"], "verbs": ["get"]},
        ]
    )
    # No resourceNamespace: a Role in the pipeline's namespace; resourceNames limit it to those objects.
    assert claims.allows("get", "", "secrets", "team-a", "creds")
    assert not claims.allows("get", "", "secrets", "team-a", "other")
    assert not claims.allows("list", "", "secrets", "team-a")
    assert not claims.allows("get", "", "secrets", "shared", "creds")
    # A namespace: a ClusterRole bound there only.
    assert claims.allows("list", "", "configmaps", "shared")
    assert not claims.allows("list", "", "configmaps", "team-a")
    # '*': bound cluster-wide, every namespace, subresources too ('*' matches them in Kubernetes).
    assert claims.allows("get", "marketplace.kratix.io", "postgres", "team-b", "p")
    assert claims.allows("get", "marketplace.kratix.io", "postgres", "team-b", "p", subresource="status")
    assert not claims.allows("get", "platform.kratix.io", "promises", None, "p")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"apiGroups": [""], "resources": ["secrets"]}, "verbs"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["--get"]}, "verbs"),
        ({"apiGroups": ["Not_A_Group"], "resources": ["secrets"], "verbs": ["get"]}, "apiGroups"),
        ({"apiGroups": [""], "resources": ["../secrets"], "verbs": ["get"]}, "resources"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNamespace": "Team A"}, "resource"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "shell": "rm -rf /"}, "shell"),
        ({"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, "nonResourceURLs"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"] * 33}, "verbs"),
    ],
)
def test_a_bad_permission_is_refused_at_apply_naming_its_field(entry, field):
    pipeline = Pipeline.model_validate(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "instance"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "rbac": {"permissions": [entry]}},
        }
    )
    errors = check_pipeline(pipeline, "spec.workflows.resource.configure[0]")
    assert errors and errors[0].field.startswith("spec.workflows.resource.configure[0].spec.rbac.permissions[0].")
    assert field in errors[0].field


def test_too_many_or_too_large_permissions_are_refused_and_the_largest_allowed_fit_a_token():
    rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    assert parse_permissions([rule] * (MAX_PERMISSIONS + 1), "p")[1][0].reason.startswith("Too many")
    big = [{**rule, "resourceNames": [f"{i:0>200}"]} for i in range(30)]
    assert parse_permissions(big, "p")[1][0].reason.startswith("Too long")
    # As many as fit the JSON bound still make a token under its bound.
    parsed, errors = parse_permissions(big[:14], "p")
    assert errors == [] and len(parsed) == 14
    claims = claims_for(
        obj=REDIS.model_copy(update={"name": "n" * 253, "plural": "p" * 253, "group": "g" * 253}),
        promise="p" * 253,
        workflow_type="resource",
        action="configure",
        pipeline="i" * 63,
        permissions=parsed,
        expires_at=0,
    )
    assert len(mint(claims, KEY, ttl_s=60, now=0)) <= MAX_TOKEN_BYTES
