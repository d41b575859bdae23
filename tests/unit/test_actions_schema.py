"""The actions schema: a strict superset of Kratix Pipelines, refused with field paths when wrong, templated from
the object, with stable idempotency keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from domain.actions import Action, idempotency_key, parse_requested_actions, render, rendered
from domain.errors import InvalidDocument
from domain.parsing import parse_platform_document
from domain.promise_api import check_promise

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "promises" / "golden-path"


def promise_with(actions: list[dict]) -> dict:
    doc = yaml.safe_load((EXAMPLE / "promise.yaml").read_text())
    doc["spec"]["workflows"]["resource"]["configure"][1]["spec"]["actions"] = actions
    return doc


def test_the_golden_path_example_parses_with_its_three_actions() -> None:
    promise = parse_platform_document(yaml.safe_load((EXAMPLE / "promise.yaml").read_text()))
    check_promise(promise)  # type: ignore[arg-type]
    actions = promise.spec.workflows.resource.configure[1].spec.actions  # type: ignore[attr-defined]
    assert [(a.name, a.provider) for a in actions] == [
        ("announce", "slack"),
        ("on-call", "pagerduty"),
        ("provisioning-ticket", "zendesk"),
    ]


@pytest.mark.parametrize(
    "action, field, reason",
    [
        ({"name": "x", "teams": {}}, "spec.actions[0].teams", "field not declared in schema"),
        (
            {"name": "x", "slack": {"secretRef": {"name": "s"}, "text": "t", "colour": "red"}},
            "spec.actions[0].slack.colour",
            "field not declared",
        ),
        (
            {"name": "x", "zendesk": {"secretRef": {"name": "s"}, "subject": "s", "comment": "c", "priority": "asap"}},
            "spec.actions[0].zendesk.priority",
            "Unsupported value",
        ),
        ({"name": "x"}, "spec.actions[0]", "exactly one of slack, pagerduty, zendesk"),
        ({"name": "Bad Name", "slack": {"secretRef": {"name": "s"}, "text": "t"}}, "spec.actions[0].name", "pattern"),
    ],
)
def test_bad_actions_are_refused_when_the_promise_is_applied(action: dict, field: str, reason: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        parse_platform_document(promise_with([action]))
    found = {e.field: e.reason for e in refused.value.errors}
    assert any(f.endswith(field) and reason in r for f, r in found.items()), found


def test_duplicate_action_names_are_refused() -> None:
    twice = {"name": "x", "slack": {"secretRef": {"name": "s"}, "text": "t"}}
    with pytest.raises(InvalidDocument, match="unique"):
        parse_platform_document(promise_with([twice, twice]))


def test_requested_actions_use_the_same_schema() -> None:
    assert parse_requested_actions(None) == []
    [action] = parse_requested_actions([{"name": "a", "slack": {"secretRef": {"name": "s"}, "text": "t"}}])
    assert action.provider == "slack"
    with pytest.raises(InvalidDocument) as refused:
        parse_requested_actions([{"name": "a", "pagerduty": {"service": "s"}}])
    assert [(e.field, e.reason) for e in refused.value.errors] == [
        ("actions.yaml[0].pagerduty.secretRef", "Required value")
    ]


def test_templates_read_the_object_and_leave_secret_names_alone() -> None:
    obj = {"metadata": {"name": "shop"}, "spec": {"team": "payments"}, "status": {}}
    assert render("${metadata.name} for ${spec.team}${status.url}", obj) == "shop for payments"
    action = Action.model_validate(
        {"name": "a", "slack": {"secretRef": {"name": "${spec.team}"}, "channel": "#${spec.team}", "text": "hi"}}
    )
    done = rendered(action, obj)
    assert done.slack is not None and done.slack.channel == "#payments" and done.slack.secret_ref.name == "${spec.team}"


def test_idempotency_keys_are_stable_per_object_life() -> None:
    key = idempotency_key("uid-1", "notify", "announce")
    assert key == idempotency_key("uid-1", "notify", "announce") and key.startswith("ktx-")
    assert key != idempotency_key("uid-2", "notify", "announce")  # a re-created object is a new one outside too
