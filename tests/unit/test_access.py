"""The access rules of domain/access.py: token entries, token lookup, and each role against each action and kind."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from domain.access import (
    LOOPBACK,
    ROLLOUT_VERBS,
    rollout_refusal,
    rollout_verb_refusal,
    Principal,
    Target,
    TokenEntry,
    TokenFile,
    identify,
    is_loopback,
    refusal,
    token_digest,
)
from domain.kube.rbac import pipeline_subject
from tests.unit.test_kube_rbac import claims

PLATFORM = Principal(name="ops", role="platform")
TEAM = Principal(name="team-a-ci", role="team", namespaces=["team-a", "team-a-dev"])
PLATFORM_KINDS = ["Destination", "GitStateStore", "BucketStateStore", "Secret", "PromiseRelease"]
ALL_ACTIONS = ["apply", "get", "list", "delete", "label", "reconcile", "logs", "tree", "wait", "manifests"]
RESOURCE_ACTIONS = ["apply", "get", "list", "delete", "label", "reconcile", "logs", "tree", "wait"]


def resource(namespace: str | None, name: str | None = "checkout") -> Target:
    return Target("AppConfig", name, namespace, builtin=False)


def builtin(kind: str, namespace: str | None = None, name: str | None = "x") -> Target:
    return Target(kind, name, namespace, builtin=True)


@pytest.mark.parametrize("action", ALL_ACTIONS)
@pytest.mark.parametrize(
    "target",
    [
        resource("team-b"),
        resource(None),
        builtin("Promise"),
        builtin("Secret", "team-a"),
        builtin("Destination"),
        builtin("HealthRecord", "other"),
    ],
    ids=repr,
)
def test_platform_and_loopback_may_do_everything(action: str, target: Target) -> None:
    assert refusal(PLATFORM, action, target) is None  # type: ignore[arg-type]
    assert refusal(LOOPBACK, action, target) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("action", RESOURCE_ACTIONS)
@pytest.mark.parametrize("namespace", ["team-a", "team-a-dev"])
def test_team_acts_on_resources_in_its_namespaces(action: str, namespace: str) -> None:
    assert refusal(TEAM, action, resource(namespace)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("action", RESOURCE_ACTIONS)
def test_team_is_refused_resources_elsewhere_with_the_reason(action: str) -> None:
    reason = refusal(TEAM, action, resource("team-b"))  # type: ignore[arg-type]
    assert reason == (
        f'team token "team-a-ci" may not {action} AppConfig "checkout" in namespace "team-b": '
        "its namespaces are team-a, team-a-dev"
    )


def test_team_list_without_namespace_is_allowed_for_filtering_and_with_one_is_checked() -> None:
    assert refusal(TEAM, "list", resource(None, name=None)) is None
    assert refusal(TEAM, "list", resource("team-a", name=None)) is None
    assert refusal(TEAM, "list", resource("default", name=None)) == (
        'team token "team-a-ci" may not list AppConfig in namespace "default": its namespaces are team-a, team-a-dev'
    )


@pytest.mark.parametrize("action", ["get", "list", "wait"])
def test_team_reads_promises_whatever_namespace_the_client_sends(action: str) -> None:
    # The CLI sends namespace=default on every get; Promises are cluster-scoped, so it must not matter.
    assert refusal(TEAM, action, builtin("Promise", "default")) is None  # type: ignore[arg-type]
    assert refusal(TEAM, action, builtin("Promise")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("action", ["apply", "delete", "label", "reconcile", "logs", "tree"])
def test_team_may_not_change_promises(action: str) -> None:
    assert refusal(TEAM, action, builtin("Promise")) == (  # type: ignore[arg-type]
        f'team token "team-a-ci" may not {action} Promise "x": Promises are managed by platform tokens'
    )


@pytest.mark.parametrize("action", ALL_ACTIONS)
@pytest.mark.parametrize("kind", PLATFORM_KINDS)
def test_team_may_not_touch_destinations_stores_or_secrets_even_in_its_namespace(action: str, kind: str) -> None:
    reason = refusal(TEAM, action, builtin(kind, "team-a"))  # type: ignore[arg-type]
    assert reason is not None and reason.startswith(f'team token "team-a-ci" may not {action} {kind} "x": ')
    assert "managed by platform tokens" in reason


def test_team_reads_health_records_in_its_namespaces_only_and_never_writes_them() -> None:
    assert refusal(TEAM, "get", builtin("HealthRecord", "team-a")) is None
    assert refusal(TEAM, "list", builtin("HealthRecord", None, name=None)) is None
    assert 'in namespace "team-b"' in (refusal(TEAM, "get", builtin("HealthRecord", "team-b")) or "")
    for action in ("apply", "delete"):
        assert "HealthRecords are written by platform tokens" in (
            refusal(TEAM, action, builtin("HealthRecord", "team-a")) or ""
        )


def test_sees_limits_teams_to_their_namespaces_and_cluster_scoped_objects() -> None:
    assert TEAM.sees("team-a") and TEAM.sees(None) and not TEAM.sees("team-b")
    assert PLATFORM.sees("team-b")


@pytest.mark.parametrize(
    "document, expected",
    [
        (
            {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Promise", "metadata": {"name": "p"}},
            Target("Promise", "p", None, True),
        ),
        # A wrong version of a platform kind is still that kind (the API refuses it 422 for platform tokens).
        (
            {"apiVersion": "platform.kratix.io/v1beta1", "kind": "Destination", "metadata": {"name": "d"}},
            Target("Destination", "d", None, True),
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"}},
            Target("Secret", "s", "team-a", True),
        ),
        # A Promise may serve a kind called Secret in its own group: that is a resource request.
        (
            {"apiVersion": "example.com/v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"}},
            Target("Secret", "s", "team-a", False),
        ),
        (
            {"apiVersion": "example.com/v1", "kind": "AppConfig", "metadata": {"name": "c"}},
            Target("AppConfig", "c", "default", False),
        ),
        (
            {"apiVersion": "example.com/v1", "kind": "AppConfig", "metadata": "not a mapping"},
            Target("AppConfig", None, "default", False),
        ),
    ],
    ids=lambda v: repr(v)[:60],
)
def test_targets_of_documents(document: dict, expected: Target) -> None:
    assert Target.of_document(document) == expected


def test_targets_of_routes_accept_what_users_type() -> None:
    assert Target.of_route("dests", "dev", "default") == Target("Destination", "dev", "default", True)
    assert Target.of_route("SECRETS", None, None) == Target("Secret", None, None, True)
    assert Target.of_route("appconfig", "c", "team-a") == Target("appconfig", "c", "team-a", False)


def entry(name: str, token: str, role: str = "team", namespaces: list[str] | None = None) -> TokenEntry:
    return TokenEntry(
        name=name,
        role=role,
        namespaces=["team-a"] if namespaces is None else namespaces,  # type: ignore[arg-type]
        sha256=hashlib.sha256(token.encode()).hexdigest(),
    )


def test_identify_finds_the_entry_by_digest_and_returns_no_digest() -> None:
    entries = [entry("a", "token-a"), entry("ops", "token-ops", "platform", [])]
    found = identify("token-ops", entries)
    assert found == Principal(name="ops", role="platform") and not hasattr(found, "sha256")
    assert identify("token-a", entries) == Principal(name="a", role="team", namespaces=["team-a"])
    assert identify("token-", entries) is None and identify("", entries) is None
    assert token_digest("token-a") == entries[0].sha256


@pytest.mark.parametrize(
    "entries, phrase",
    [
        ([], "holds no tokens"),
        ([{"name": "a", "role": "team", "sha256": "0" * 64}], 'team token "a" needs at least one namespace'),
        ([{"name": "a", "role": "platform", "namespaces": ["x"], "sha256": "0" * 64}], "reaches every namespace"),
        ([{"name": "a", "role": "team", "namespaces": ["Team_A"], "sha256": "0" * 64}], "not DNS-1123 labels"),
        ([{"name": "a", "role": "admin", "sha256": "0" * 64}], "'platform' or 'team'"),
        ([{"name": "a", "role": "platform", "sha256": "not-a-digest"}], "String should match pattern"),
        ([{"name": "a", "role": "platform", "sha256": "0" * 64, "token": "clear"}], "Extra inputs are not permitted"),
        (
            [
                {"name": "a", "role": "platform", "sha256": "0" * 64},
                {"name": "a", "role": "platform", "sha256": "1" * 64},
            ],
            "token names must be unique",
        ),
        (
            [
                {"name": "a", "role": "platform", "sha256": "0" * 64},
                {"name": "b", "role": "platform", "sha256": "0" * 64},
            ],
            "same sha256",
        ),
    ],
)
def test_token_files_are_checked_whole(entries: list, phrase: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TokenFile.model_validate(entries)
    assert phrase in str(raised.value)


@pytest.mark.parametrize(
    "host, expected",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("api.example", False),
    ],
)
def test_loopback_hosts(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_a_team_manages_only_plans_confined_to_its_namespaces() -> None:
    team = Principal(name="team-a", role="team", namespaces=["a", "b"])
    platform = Principal(name="ops", role="platform")
    assert rollout_refusal(platform, "create", "p", None) is None
    assert rollout_refusal(team, "pause", "p", {"a"}) is None
    everywhere = rollout_refusal(team, "create", "p", None)
    assert everywhere and "selector alone reaches every namespace" in everywhere
    elsewhere = rollout_refusal(team, "rollback", "p", {"a", "c"})
    assert elsewhere == 'team token "team-a" may not rollback RolloutPlan "p" in namespace "c": its namespaces are a, b'


def test_who_may_not_touch_rollout_plans_at_all_is_refused_before_any_plan_is_read() -> None:
    team = Principal(name="team-a", role="team", namespaces=["a"])
    # A team may do every action on some plan, so its refusal (if any) is the plan's to decide.
    actions = [*ROLLOUT_VERBS, "create", "get", "delete", "update", "patch", "list", "watch"]
    assert all(rollout_verb_refusal(team.subject(), action, "p") is None for action in actions)
    # A pipeline's token carries no rule on RolloutPlans: refused whatever the plan, with RBAC's reason.
    pipeline = pipeline_subject(claims([]))
    refused = rollout_verb_refusal(pipeline, "pause", "any-name")
    assert refused and refused.startswith('pipeline "') and 'may not pause RolloutPlan "any-name"' in refused
    # A pipeline granted plans cluster-wide (rbac.permissions) may pause them, and still not delete them.
    granted = pipeline_subject(
        claims(
            [
                {
                    "apiGroups": ["platform.ktx.dev"],
                    "resources": ["rolloutplans"],
                    "verbs": ["patch"],
                    "resourceNamespace": "*",
                }
            ]
        )
    )
    assert rollout_verb_refusal(granted, "pause", "p") is None
    assert rollout_verb_refusal(granted, "delete", "p") is not None
