"""PagerDuty, through pdpyras: an on-call rota (schedule, escalation policy, service) created or reused by name,
and incidents through the Events API v2 keyed by a `dedup_key` derived from the object, so a retry never pages twice.

pdpyras retries on its own with sleeps; it is told to try once more at most and at once, so backoff (and 429's
Retry-After) belongs to the activity's retry policy, visible in Temporal.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import activity

from activities.actions.errors import missing_credentials, provider_error
from activities.metrics import counted_action
from activities.stores.secrets import SecretNotFound, SecretProvider
from domain.actions import OnCallSchedule
from domain.documents import SecretRef

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pdpyras announces its successor on import; it is what the design card names
    import pdpyras

logging.getLogger("pdpyras").setLevel(logging.CRITICAL)  # it logs URLs and truncated keys on errors


class RotaInput(BaseModel):
    secret_ref: SecretRef
    service: str
    description: str = ""
    schedule: OnCallSchedule | None = None


class RotaResult(BaseModel):
    service_id: str
    link: str = ""
    # Which objects this platform created (and so removes on delete), by kind: services, schedules, policies.
    created: dict[str, str] = Field(default_factory=dict)


class IncidentInput(BaseModel):
    secret_ref: SecretRef
    action: Literal["trigger", "resolve"]
    dedup_key: str
    summary: str = ""
    source: str = ""
    severity: str = "error"


class IncidentResult(BaseModel):
    dedup_key: str


class RemoveRotaInput(BaseModel):
    secret_ref: SecretRef
    created: dict[str, str] = Field(default_factory=dict)


class RemoveRotaResult(BaseModel):
    removed: list[str] = Field(default_factory=list)


def _quiet(session: Any) -> Any:
    session.retry = {429: 1, 500: 1, 502: 1, 503: 1, 504: 1}
    session.sleep_timer = 0.0
    session.max_network_attempts = 1
    return session


class PagerDutyActivities:
    def __init__(
        self,
        secrets: SecretProvider,
        api_url: str = "https://api.pagerduty.com",
        events_url: str = "https://events.pagerduty.com",
    ):
        self.secrets = secrets
        self.api_url = api_url
        self.events_url = events_url

    def _secret(self, ref: SecretRef, key: str) -> str:
        try:
            value = self.secrets.get(ref).get(key)
        except SecretNotFound as exc:
            raise missing_credentials("pagerduty", str(exc)) from exc
        if not value:
            raise missing_credentials("pagerduty", f"Secret {ref.name} has no {key}")
        return value.decode()

    def _api(self, ref: SecretRef) -> Any:
        session = _quiet(pdpyras.APISession(self._secret(ref, "apiToken")))
        session.url = self.api_url
        return session

    @activity.defn
    @counted_action("pagerduty")
    async def pagerduty_ensure_rota(self, input: RotaInput) -> RotaResult:
        """Idempotent: every object is looked up by name before it is created."""
        session = self._api(input.secret_ref)
        created: dict[str, str] = {}
        try:
            target = None
            if input.schedule is not None:
                schedule = session.find("schedules", input.schedule.name)
                if schedule is None:
                    schedule = session.rpost("schedules", json={"schedule": self._schedule(session, input.schedule)})
                    created["schedules"] = schedule["id"]
                target = {"type": "schedule_reference", "id": schedule["id"]}
            policy_name = f"{input.service} escalation"
            policy = session.find("escalation_policies", policy_name)
            if policy is None:
                rules = [{"escalation_delay_in_minutes": 30, "targets": [target]}] if target else []
                policy = session.rpost(
                    "escalation_policies",
                    json={
                        "escalation_policy": {
                            "type": "escalation_policy",
                            "name": policy_name,
                            "escalation_rules": rules,
                        }
                    },
                )
                created["escalation_policies"] = policy["id"]
            service = session.find("services", input.service)
            if service is None:
                service = session.rpost(
                    "services",
                    json={
                        "service": {
                            "type": "service",
                            "name": input.service,
                            "description": input.description,
                            "escalation_policy": {"type": "escalation_policy_reference", "id": policy["id"]},
                        }
                    },
                )
                created["services"] = service["id"]
        except pdpyras.PDClientError as exc:
            raise _error(exc) from None
        return RotaResult(service_id=service["id"], link=service.get("html_url", ""), created=created)

    def _schedule(self, session: Any, spec: OnCallSchedule) -> dict[str, Any]:
        users = []
        for email in spec.users:
            user = session.find("users", email, attribute="email")
            if user is None:
                raise provider_error("pagerduty", 404, f"no PagerDuty user with e-mail {email}")
            users.append({"user": {"type": "user_reference", "id": user["id"]}})
        return {
            "type": "schedule",
            "name": spec.name,
            "time_zone": spec.time_zone,
            "schedule_layers": [
                {
                    "name": "Weekly rotation",
                    "start": "2026-01-05T09:00:00Z",
                    "rotation_virtual_start": "2026-01-05T09:00:00Z",
                    "rotation_turn_length_seconds": 7 * 24 * 3600,
                    "users": users,
                }
            ],
        }

    @activity.defn
    @counted_action("pagerduty")
    async def pagerduty_incident(self, input: IncidentInput) -> IncidentResult:
        """Idempotent by `dedup_key`: PagerDuty folds repeated triggers into one incident."""
        session = _quiet(pdpyras.EventsAPISession(self._secret(input.secret_ref, "routingKey")))
        session.url = self.events_url
        try:
            if input.action == "trigger":
                session.trigger(input.summary, input.source, dedup_key=input.dedup_key, severity=input.severity)
            else:
                session.resolve(input.dedup_key)
        except pdpyras.PDClientError as exc:
            raise _error(exc) from None
        return IncidentResult(dedup_key=input.dedup_key)

    @activity.defn
    @counted_action("pagerduty")
    async def pagerduty_remove_rota(self, input: RemoveRotaInput) -> RemoveRotaResult:
        """Compensation: delete what this platform created (service first, it references the policy); gone is fine."""
        session = self._api(input.secret_ref)
        removed = []
        for kind in ("services", "escalation_policies", "schedules"):
            if kind not in input.created:
                continue
            try:
                session.rdelete(f"/{kind}/{input.created[kind]}")
            except pdpyras.PDHTTPError as exc:
                if exc.response.status_code != 404:
                    raise _error(exc) from None
            except pdpyras.PDClientError as exc:
                raise _error(exc) from None
            removed.append(kind)
        return RemoveRotaResult(removed=removed)


def _error(exc: Any) -> Exception:
    response = getattr(exc, "response", None)
    if response is None:
        return provider_error("pagerduty", None, "cannot reach PagerDuty")
    detail = response.text[:300]
    return provider_error("pagerduty", response.status_code, detail, response.headers.get("Retry-After"))
