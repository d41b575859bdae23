"""domain/kube/rbac.py: Kubernetes RBAC rule evaluation, each caller's rules, and the apiserver's wording of a refusal;
domain/kube/protobuf.py: reading the reviews kubectl sends as Kubernetes protobuf."""

from __future__ import annotations

import pytest

from domain.kube import pipeline_token, protobuf
from domain.kube.rbac import (
    BASIC_RULES,
    Attributes,
    Rule,
    allows,
    forbidden_message,
    matches,
    pipeline_subject,
    token_subject,
    why_denied,
)

GROUP = "example.com"
TEAM = token_subject("team-a-ci", "team", ["team-a", "team-a-dev"])
PLATFORM = token_subject("ops", "platform", [])
APIS = [(GROUP, "widgets")]


def ask(verb: str, resource: str, namespace: str | None = None, name: str = "", group: str = GROUP, sub: str = ""):
    return Attributes(verb, group, resource, sub, namespace, name)


@pytest.mark.parametrize(
    "rule, attrs, expected",
    [
        (Rule(("get",), (GROUP,), ("widgets",)), ask("get", "widgets", "x"), True),
        (Rule(("get",), (GROUP,), ("widgets",)), ask("list", "widgets", "x"), False),
        (Rule(("*",), (GROUP,), ("widgets",)), ask("deletecollection", "widgets", "x"), True),
        (Rule(("get",), ("other.io",), ("widgets",)), ask("get", "widgets", "x"), False),
        (Rule(("get",), ("*",), ("widgets",)), ask("get", "widgets", "x"), True),
        # A subresource is its own resource: `widgets` does not grant `widgets/status`, `*` and `*/status` do.
        (Rule(("patch",), (GROUP,), ("widgets",)), ask("patch", "widgets", "x", sub="status"), False),
        (Rule(("patch",), (GROUP,), ("widgets/status",)), ask("patch", "widgets", "x", sub="status"), True),
        (Rule(("patch",), (GROUP,), ("*/status",)), ask("patch", "widgets", "x", sub="status"), True),
        (Rule(("patch",), (GROUP,), ("*/status",)), ask("patch", "widgets", "x"), False),
        (Rule(("patch",), (GROUP,), ("*",)), ask("patch", "widgets", "x", sub="status"), True),
        # resourceNames: only requests naming one of them (never a create or a list).
        (Rule(("get",), ("",), ("secrets",), ("db",)), ask("get", "secrets", "x", "db", ""), True),
        (Rule(("get",), ("",), ("secrets",), ("db",)), ask("get", "secrets", "x", "other", ""), False),
        (Rule(("list",), ("",), ("secrets",), ("db",)), ask("list", "secrets", "x", group=""), False),
        # A rule bound in a namespace grants there only, and never cluster-scoped or all-namespace requests.
        (Rule(("get",), (GROUP,), ("widgets",), namespace="a"), ask("get", "widgets", "a"), True),
        (Rule(("get",), (GROUP,), ("widgets",), namespace="a"), ask("get", "widgets", "b"), False),
        (Rule(("list",), (GROUP,), ("widgets",), namespace="a"), ask("list", "widgets", None), False),
        (Rule(("list",), (GROUP,), ("widgets",)), ask("list", "widgets", None), True),
        # Non-resource URLs: exact, or a prefix ending in *; never from a namespaced binding; never a resource.
        (Rule(("get",), non_resource_urls=("/apis/*",)), Attributes("get", path="/apis/x/v1"), True),
        (Rule(("get",), non_resource_urls=("/apis",)), Attributes("get", path="/apis/x"), False),
        (Rule(("get",), non_resource_urls=("*",), namespace="a"), Attributes("get", path="/version"), False),
        (Rule(("get",), non_resource_urls=("*",)), ask("get", "widgets", "x"), False),
        (Rule(("*",), ("*",), ("*",)), Attributes("get", path="/version"), False),
    ],
)
def test_rule_evaluation_is_kubernetes_rbac(rule: Rule, attrs: Attributes, expected: bool) -> None:
    assert matches(rule, attrs) is expected


def test_platform_tokens_may_do_anything_anywhere() -> None:
    rules = PLATFORM.rules()
    for attrs in (
        ask("delete", "secrets", "x", "s", ""),
        ask("list", "widgets"),
        ask("create", "promises", group="platform.kratix.io"),
        Attributes("get", path="/metrics"),
    ):
        assert allows(rules, attrs)


@pytest.mark.parametrize("verb", ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"])
def test_team_requests_reads_and_deletes_promise_api_resources_in_its_namespaces_only(verb: str) -> None:
    rules = TEAM.rules(APIS)
    assert allows(rules, ask(verb, "widgets", "team-a")) and allows(rules, ask(verb, "widgets", "team-a-dev"))
    assert not allows(rules, ask(verb, "widgets", "team-b"))
    assert not allows(rules, ask(verb, "widgets", None))  # -A needs a cluster-wide rule
    # The rules cover the APIs they are expanded for, not every group.
    assert not allows(TEAM.rules([]), ask(verb, "widgets", "team-a"))


def test_team_reads_what_the_platform_publishes_and_never_secrets() -> None:
    rules = TEAM.rules(APIS)
    kratix = "platform.kratix.io"
    assert allows(rules, ask("watch", "promises", group=kratix))
    assert not allows(rules, ask("patch", "promises", group=kratix))
    assert allows(rules, ask("list", "customresourcedefinitions", group="apiextensions.k8s.io"))
    for plural in ("healthrecords", "works", "workplacements"):
        assert allows(rules, ask("get", plural, "team-a", group=kratix))
        assert not allows(rules, ask("get", plural, "team-b", group=kratix))
        assert not allows(rules, ask("create", plural, "team-a", group=kratix))
    assert allows(rules, ask("list", "events", "team-a", group=""))
    assert allows(rules, ask("get", "namespaces", None, "team-a", ""))
    assert not allows(rules, ask("get", "namespaces", None, "team-b", ""))
    assert not allows(rules, ask("list", "namespaces", None, group=""))
    for verb in ("get", "list", "create"):
        assert not allows(rules, ask(verb, "secrets", "team-a", group=""))
    assert not allows(rules, ask("patch", "widgets", "team-a", sub="status"))
    for plural in ("destinations", "gitstatestores", "bucketstatestores"):
        assert not allows(rules, ask("get", plural, group=kratix))


def test_every_caller_may_review_itself_and_read_discovery() -> None:
    reviews = ask("create", "selfsubjectaccessreviews", group="authorization.k8s.io")
    for subject in (TEAM, PLATFORM):
        assert allows(subject.rules(), reviews)
        assert allows(subject.rules(), Attributes("get", path="/apis/platform.kratix.io/v1alpha1"))
    assert not allows(TEAM.rules(), Attributes("get", path="/metrics"))


def claims(permissions: list[dict]) -> pipeline_token.PipelineClaims:
    obj = pipeline_token.ObjectRef(group=GROUP, version="v1", kind="Widget", plural="widgets", name="w", namespace="a")
    return pipeline_token.claims_for(
        obj=obj,
        promise="widgets",
        workflow_type="resource",
        action="configure",
        pipeline="p",
        permissions=[pipeline_token.Permission.model_validate(p) for p in permissions],
        expires_at=0,
    )


def test_a_pipeline_holds_what_its_token_carries_and_the_basic_rules() -> None:
    subject = pipeline_subject(
        claims([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNamespace": "shared"}])
    )
    assert subject.user == "system:serviceaccount:a:widgets-resource-configure-p"
    assert subject.groups == ("system:serviceaccounts", "system:serviceaccounts:a", "system:authenticated")
    rules = subject.rules([(GROUP, "other")])  # a pipeline's rules are fixed: the APIs given change nothing
    assert allows(rules, ask("patch", "widgets", "a", sub="status"))
    assert allows(rules, ask("create", "works", "a", group="platform.kratix.io"))
    assert not allows(rules, ask("get", "widgets", "b"))
    assert allows(rules, ask("get", "secrets", "shared", "x", ""))
    assert not allows(rules, ask("get", "secrets", "a", "x", ""))
    assert not allows(rules, ask("get", "other", "a"))
    assert set(BASIC_RULES) <= set(rules)


def test_refusals_are_worded_as_the_apiserver_words_them_with_ktx_reason() -> None:
    secrets = ask("list", "secrets", "team-b", group="")
    assert forbidden_message(TEAM, secrets, why_denied(TEAM, secrets)) == (
        'secrets is forbidden: User "team-a-ci" cannot list resource "secrets" in API group "" in the namespace '
        '"team-b": Secrets are managed by platform tokens'
    )
    widget = ask("get", "widgets", "team-b", "w")
    assert forbidden_message(TEAM, widget, why_denied(TEAM, widget, APIS)) == (
        'widgets.example.com "w" is forbidden: User "team-a-ci" cannot get resource "widgets" in API group '
        '"example.com" in the namespace "team-b": its namespaces are team-a, team-a-dev'
    )
    status = ask("patch", "promises", None, "p", "platform.kratix.io", "status")
    assert forbidden_message(TEAM, status, why_denied(TEAM, status)) == (
        'promises.platform.kratix.io "p" is forbidden: User "team-a-ci" cannot patch resource "promises/status" in '
        'API group "platform.kratix.io" at the cluster scope: Promises are managed by platform tokens'
    )
    path = Attributes("get", path="/metrics")
    assert forbidden_message(TEAM, path, "no").startswith('forbidden: User "team-a-ci" cannot get path "/metrics"')
    pipeline = pipeline_subject(claims([]))
    assert "holds what Kratix grants its ServiceAccount" in why_denied(pipeline, secrets)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (all the reviews use), lengths below 128."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_protobuf_reviews_decode_the_fields_the_schema_names() -> None:
    attributes = _field(1, b"team-a") + _field(2, b"create") + _field(5, b"widgets") + _field(9, b"ignored")
    raw = _field(2, _field(1, attributes)) + bytes([3 << 3 | 0, 1])  # and a varint field nobody asked for
    envelope = _field(1, _field(1, b"authorization.k8s.io/v1") + _field(2, b"SelfSubjectAccessReview"))
    body = protobuf.MAGIC + envelope + _field(2, raw)
    schema: protobuf.Schema = {
        2: (
            "spec",
            {1: ("resourceAttributes", {1: ("namespace", "string"), 2: ("verb", "string"), 5: ("resource", "string")})},
        )
    }
    assert protobuf.decode_object(body, schema) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "team-a", "verb": "create", "resource": "widgets"}},
    }


@pytest.mark.parametrize(
    "body, phrase",
    [
        (b'{"spec": {}}', "no k8s"),
        (protobuf.MAGIC + b"\x0a\x05ab", "runs past the end"),
        (protobuf.MAGIC + b"\x0a" + b"\xff" * 11, "varint"),
        (protobuf.MAGIC + b"\x12\x04\x0a\x02\xff\xfe", "not UTF-8"),
        (protobuf.MAGIC + b"\x0b", "wire type 3"),
    ],
)
def test_protobuf_refuses_what_it_cannot_read(body: bytes, phrase: str) -> None:
    with pytest.raises(protobuf.ProtobufError, match=phrase):
        protobuf.decode_object(body, {1: ("namespace", "string")})
