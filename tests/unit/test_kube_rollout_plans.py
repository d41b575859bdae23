"""What a write to a RolloutPlan asks for on the Kubernetes API, its progress column, and who may manage it there."""

from __future__ import annotations

import copy

import pytest

from api.kube.rollouts import plan_refusal
from domain.errors import Conflict, InvalidDocument
from domain.kube.rbac import token_subject
from domain.kube.rollout_plans import CONTROL_ANNOTATION, LAST_APPLIED, requested_control, with_progress

PLAN = {
    "apiVersion": "platform.ktx.dev/v1alpha1",
    "kind": "RolloutPlan",
    "metadata": {"name": "db-v2", "uid": "u", "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {
        "promiseRef": {"name": "db"},
        "fromVersion": "v1",
        "toVersion": "v2",
        "groups": [{"name": "canary", "namespaces": ["team-a"]}, {"name": "rest", "namespaces": ["team-b"]}],
    },
    "status": {"phase": "Running"},
}


def annotated(**annotations: str) -> dict:
    wanted = copy.deepcopy(PLAN)
    wanted["metadata"]["annotations"] = annotations
    return wanted


def test_the_control_annotation_is_a_control_and_kubectls_bookkeeping_is_nothing() -> None:
    assert requested_control(PLAN, annotated(**{CONTROL_ANNOTATION: "pause"})) == "pause"
    assert requested_control(PLAN, annotated(**{LAST_APPLIED: "{}"})) is None
    # What the server keeps is no change: a client sends back what it read, or nothing of it.
    bare = copy.deepcopy(PLAN)
    bare["metadata"] = {"name": "db-v2"}
    assert requested_control(PLAN, bare) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["spec"].update(failureThreshold=2),
        lambda p: p["metadata"].update(labels={"tier": "prod"}),
        lambda p: p["metadata"].update(annotations={"team": "db"}),
    ],
)
def test_any_other_change_is_refused(change) -> None:
    wanted = copy.deepcopy(PLAN)
    change(wanted)
    with pytest.raises(Conflict, match="does not change once it runs"):
        requested_control(PLAN, wanted)


@pytest.mark.parametrize("value", ["delete", "explode", ""])
def test_a_control_that_is_not_one_names_the_annotation(value: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        requested_control(PLAN, annotated(**{CONTROL_ANNOTATION: value}))
    assert refused.value.errors[0].field == f"metadata.annotations[{CONTROL_ANNOTATION}]"


def test_progress_counts_the_requests_done_with() -> None:
    plan = {
        **PLAN,
        "status": {
            "groups": [
                {"name": "canary", "counts": {"Succeeded": 1, "Failed": 1}},
                {"name": "rest", "counts": {"Running": 1, "Pending": 2}},
            ]
        },
    }
    assert with_progress(plan)["status"]["progress"] == "2/5"
    assert "status" not in with_progress({"spec": {}})  # no status yet: none made up
    assert with_progress({"status": {"groups": ["junk", {"counts": "junk"}]}})["status"]["progress"] == "0/0"


def test_a_team_manages_only_the_plans_confined_to_its_namespaces() -> None:
    both = token_subject("ab-ci", "team", ["team-a", "team-b"])
    only_a = token_subject("a-ci", "team", ["team-a"])
    assert plan_refusal(both, "get", PLAN) is None
    assert 'in namespace "team-b"' in (plan_refusal(only_a, "get", PLAN) or "")
    by_selector = copy.deepcopy(PLAN)
    by_selector["spec"]["groups"] = [{"name": "all", "selector": {"matchLabels": {"tier": "prod"}}}]
    assert "managed by platform tokens" in (plan_refusal(both, "patch", by_selector) or "")
    assert plan_refusal(token_subject("ops", "platform", []), "patch", by_selector) is None
