"""Off-platform actions (Slack, PagerDuty, Zendesk) declared in a Pipeline or requested by its containers.

A strict superset of Kratix: `spec.actions` on a Pipeline, and `/kratix/metadata/actions.yaml` written by a
container, in the same schema. A Promise that uses neither parses exactly as before. Strings are templated from the
object with `${metadata.name}`, `${spec.team}`, `${status.url}`; credentials are named by `secretRef`, never given.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from domain.errors import FieldError, InvalidDocument, errors_from_pydantic
from domain.kube import SecretRef, StrictKubeModel

ACTIONS_FILE = "actions.yaml"


class SlackMessage(StrictKubeModel):
    """Post to a channel (bot token) or an incoming webhook; the message is updated as the object's status changes."""

    secret_ref: SecretRef
    channel: str | None = None
    text: str
    update_on_status_change: bool = True
    thread_on_failure: bool = True


class OnCallSchedule(StrictKubeModel):
    name: str
    time_zone: str = "UTC"
    users: list[str] = Field(default_factory=list)  # e-mail addresses, one weekly rotation layer


class PagerDutyService(StrictKubeModel):
    """Create or reuse a service, its escalation policy and on-call schedule; page on failure through Events v2."""

    secret_ref: SecretRef
    service: str
    description: str = ""
    schedule: OnCallSchedule | None = None
    incident_on_failure: bool = True
    severity: Literal["critical", "error", "warning", "info"] = "error"


class ZendeskTicket(StrictKubeModel):
    """Open a ticket once (by external id), comment on updates, solve it on delete."""

    secret_ref: SecretRef
    subject: str
    comment: str
    priority: Literal["urgent", "high", "normal", "low"] = "normal"
    tags: list[str] = Field(default_factory=list)


class Action(StrictKubeModel):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    slack: SlackMessage | None = None
    pagerduty: PagerDutyService | None = None
    zendesk: ZendeskTicket | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> "Action":
        given = [p for p in ("slack", "pagerduty", "zendesk") if getattr(self, p) is not None]
        if len(given) != 1:
            raise ValueError(f"an action needs exactly one of slack, pagerduty, zendesk (got {given or 'none'})")
        return self

    @property
    def provider(self) -> Literal["slack", "pagerduty", "zendesk"]:
        return "slack" if self.slack else "pagerduty" if self.pagerduty else "zendesk"


def check_unique(actions: list[Action]) -> list[Action]:
    names = [a.name for a in actions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"action names must be unique within a pipeline, got {duplicates} more than once")
    return actions


def parse_requested_actions(data: Any, field: str = ACTIONS_FILE) -> list[Action]:
    """Actions a container asked for in /kratix/metadata/actions.yaml; raises InvalidDocument with field paths."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidDocument([FieldError(field, "must be a list of actions")])
    actions, errors = [], []
    for index, item in enumerate(data):
        try:
            actions.append(Action.model_validate(item))
        except ValidationError as exc:
            errors += [
                FieldError(f"{field}[{index}].{e.field}".rstrip("."), e.reason) for e in errors_from_pydantic(exc)
            ]
    if errors:
        raise InvalidDocument(errors)
    try:
        return check_unique(actions)
    except ValueError as exc:
        raise InvalidDocument([FieldError(field, str(exc))]) from exc


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")


def render(text: str, obj: dict[str, Any]) -> str:
    """`${a.b.c}` from the object; a missing field renders empty, as a Go template's zero value would."""

    def value(match: re.Match[str]) -> str:
        node: Any = obj
        for part in match.group(1).split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)

    return _PLACEHOLDER.sub(value, text)


def rendered(action: Action, obj: dict[str, Any]) -> Action:
    """The action with every string field templated (secret references are names, and stay as written)."""

    def walk(node: Any, key: str = "") -> Any:
        if key == "secretRef":
            return node
        if isinstance(node, str):
            return render(node, obj)
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return Action.model_validate(walk(action.model_dump(by_alias=True, exclude_none=True)))


def idempotency_key(uid: str, pipeline: str, action: str) -> str:
    """Stable for one object's life (its uid), so retries and restarts find the same external object."""
    return f"ktx-{hashlib.sha256(f'{uid}/{pipeline}/{action}'.encode()).hexdigest()[:32]}"


class ActionRecord(BaseModel):
    """What an action did, kept in the object's status and used for updates and for compensation on delete."""

    pipeline: str
    name: str
    provider: Literal["slack", "pagerduty", "zendesk"]
    key: str
    state: Literal["Pending", "Succeeded", "Failed", "Compensated"] = "Pending"
    external_id: str = ""
    link: str = ""
    # Provider ids needed later: Slack channel, PagerDuty schedule/policy ids and whether we created them, ...
    refs: dict[str, str] = Field(default_factory=dict)
    incident: Literal["", "triggered", "resolved"] = ""
    message: str = ""
    updated_at: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)

    def status_entry(self) -> dict[str, Any]:
        entry = {
            "pipeline": self.pipeline,
            "name": self.name,
            "provider": self.provider,
            "state": self.state,
            "externalId": self.external_id,
            "link": self.link,
            "lastUpdateTime": self.updated_at,
        }
        if self.incident:
            entry["incident"] = self.incident
        if self.message:
            entry["message"] = self.message
        return {k: v for k, v in entry.items() if v}
