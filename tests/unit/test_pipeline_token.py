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
from domain.kube.rbac import Attributes, pipeline_subject
from domain.kube import rbac
from domain.pipeline_rules import check_pipeline
from worker.settings import Settings
from domain.documents import Pipeline

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
REDIS = ObjectRef(group="marketplace.kratix.io", version="v1alpha1", kind="Redis", plural="redis", name="r1",
                  namespace="team-a")  # fmt: skip


def allows(
    claims: PipelineClaims, verb: str, group: str, resource: str, namespace: str | None, name: str = "", **more: str
) -> bool:
    """As the API decides for a request carrying the token (domain/kube/rbac.py)."""
    attributes = Attributes(verb, group, resource, more.get("subresource", ""), namespace, name)
    return rbac.allows(pipeline_subject(claims).rules(), attributes)


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
        assert allows(claims, verb, "marketplace.kratix.io", "redis", "team-a", "r1")
    assert allows(claims, "patch", "marketplace.kratix.io", "redis", "team-a", "r1", subresource="status")
    # Kratix's Role is on the kind in the namespace: another Redis there too, but not delete.
    assert allows(claims, "get", "marketplace.kratix.io", "redis", "team-a", "r2")
    assert not allows(claims, "delete", "marketplace.kratix.io", "redis", "team-a", "r1")
    assert allows(claims, "delete", "platform.kratix.io", "works", "team-a", "w")
    # Nothing of another team, no other kind, no Secret, nothing cluster-wide.
    assert not allows(claims, "get", "marketplace.kratix.io", "redis", "team-b", "r1")
    assert not allows(claims, "list", "marketplace.kratix.io", "redis", None)
    assert not allows(claims, "get", "", "secrets", "team-a", "creds")
    assert not allows(claims, "get", "platform.kratix.io", "promises", None, "redis")


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
    assert allows(claims, "patch", "platform.kratix.io", "promises", None, "redis", subresource="status")
    assert allows(claims, "list", "platform.kratix.io", "works", "team-a")
    assert not allows(claims, "delete", "platform.kratix.io", "promises", None, "redis")
    assert not allows(claims, "get", "", "secrets", "kratix-platform-system", "x")


def test_rbac_permissions_bind_where_resource_namespace_says():
    claims = resource_claims(
        [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["creds"]},
            {"resourceNamespace": "shared", "apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
            {"resourceNamespace": "*", "apiGroups": ["marketplace.kratix.io"], "resources": ["*"], "verbs": ["get"]},
        ]
    )
    # No resourceNamespace: a Role in the pipeline's namespace; resourceNames limit it to those objects.
    assert allows(claims, "get", "", "secrets", "team-a", "creds")
    assert not allows(claims, "get", "", "secrets", "team-a", "other")
    assert not allows(claims, "list", "", "secrets", "team-a")
    assert not allows(claims, "get", "", "secrets", "shared", "creds")
    # A namespace: a ClusterRole bound there only.
    assert allows(claims, "list", "", "configmaps", "shared")
    assert not allows(claims, "list", "", "configmaps", "team-a")
    # '*': bound cluster-wide, every namespace, subresources too ('*' matches them in Kubernetes).
    assert allows(claims, "get", "marketplace.kratix.io", "postgres", "team-b", "p")
    assert allows(claims, "get", "marketplace.kratix.io", "postgres", "team-b", "p", subresource="status")
    assert not allows(claims, "get", "platform.kratix.io", "promises", None, "p")


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


def test_the_token_key_is_made_once_0600_and_shared_by_whoever_reads_it(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path / "home")
    key = settings.pipeline_token_key()
    path = tmp_path / "home" / "pipeline-token.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert path.stat().st_mode & 0o777 == 0o600
    # The API and the worker read the same key; nothing else is left beside it.
    assert Settings(home=tmp_path / "home").pipeline_token_key() == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["pipeline-token.key"]
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 8)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(pipeline_token_key_file=short).pipeline_token_key()
    monkeypatch.setenv("KTX_PIPELINE_TOKEN_KEY_FILE", str(short))
    assert Settings.from_env().pipeline_token_key_file == short


@pytest.mark.parametrize(
    ("values", "address"),
    [
        ({}, None),
        ({"kube_api_port": 6443}, ("127.0.0.1", 6443)),
        ({"kube_api_port": 6443, "kube_api_host": "0.0.0.0"}, ("127.0.0.1", 6443)),
        ({"kube_api_port": 6443, "api_host": "10.0.0.5"}, ("10.0.0.5", 6443)),
        (
            {"kube_api_port": 6443, "pipeline_api_address": "ktx-api.ktx-system.svc:8443"},
            ("ktx-api.ktx-system.svc", 8443),
        ),
        ({"pipeline_api_address": "[::1]:6443"}, ("::1", 6443)),
    ],
)
def test_where_the_worker_forwards_pipelines_connections(values, address):
    assert Settings(**values).pipeline_api == address


def test_a_pipeline_api_address_that_could_be_an_option_is_refused():
    with pytest.raises(ValueError):
        Settings(pipeline_api_address="--network=host:1")
