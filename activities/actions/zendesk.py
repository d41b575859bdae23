"""Zendesk Support, REST API v2 over httpx: one ticket per action, found again by `external_id`, so a retry never
opens a second one; updates add a comment; deletion solves it. Auth: `email` + API `token` from the Secret."""

from __future__ import annotations

import base64

import httpx
from pydantic import BaseModel, Field
from temporalio import activity

from activities.actions.errors import missing_credentials, provider_error
from activities.metrics import counted_action
from activities.stores.secrets import SecretNotFound, SecretProvider
from domain.documents import SecretRef


class TicketInput(BaseModel):
    secret_ref: SecretRef
    external_id: str
    subject: str
    comment: str
    priority: str = "normal"
    tags: list[str] = Field(default_factory=list)
    ticket_id: str = ""
    solve: bool = False


class TicketResult(BaseModel):
    ticket_id: str
    link: str = ""
    status: str = ""


class ZendeskActivities:
    def __init__(self, secrets: SecretProvider):
        self.secrets = secrets

    def _client(self, ref: SecretRef) -> httpx.Client:
        try:
            creds = self.secrets.get(ref)
        except SecretNotFound as exc:
            raise missing_credentials("zendesk", str(exc)) from exc
        missing = [k for k in ("url", "email", "token") if not creds.get(k)]
        if missing:
            raise missing_credentials("zendesk", f"Secret {ref.name} has no {', '.join(missing)}")
        auth = base64.b64encode(f"{creds['email'].decode()}/token:{creds['token'].decode()}".encode()).decode()
        return httpx.Client(
            base_url=creds["url"].decode().rstrip("/"),
            timeout=20,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )

    @activity.defn
    @counted_action("zendesk")
    async def zendesk_ticket(self, input: TicketInput) -> TicketResult:
        """Create once (by external id), else comment on the same ticket; `solve` closes it (compensation)."""
        with self._client(input.secret_ref) as client:
            try:
                if not input.ticket_id:
                    found = _json(client.get("/api/v2/tickets.json", params={"external_id": input.external_id}))[
                        "tickets"
                    ]
                    if found:
                        return _result(client, found[0])  # created by an earlier attempt whose answer was lost
                    ticket = _json(
                        client.post(
                            "/api/v2/tickets.json",
                            json={
                                "ticket": {
                                    "subject": input.subject,
                                    "comment": {"body": input.comment},
                                    "priority": input.priority,
                                    "external_id": input.external_id,
                                    "tags": input.tags,
                                }
                            },
                        )
                    )["ticket"]
                    return _result(client, ticket)
                update: dict[str, object] = {"comment": {"body": input.comment}}
                if input.solve:
                    update["status"] = "solved"
                ticket = _json(client.put(f"/api/v2/tickets/{input.ticket_id}.json", json={"ticket": update}))["ticket"]
                return _result(client, ticket)
            except httpx.TransportError as exc:
                raise provider_error("zendesk", None, f"cannot reach Zendesk: {type(exc).__name__}") from None


def _json(response: httpx.Response) -> dict:  # type: ignore[type-arg]
    if response.status_code >= 300:
        detail = response.text[:300]
        raise provider_error("zendesk", response.status_code, detail, response.headers.get("Retry-After"))
    return response.json()


def _result(client: httpx.Client, ticket: dict) -> TicketResult:  # type: ignore[type-arg]
    link = f"{client.base_url}/agent/tickets/{ticket['id']}"
    return TicketResult(ticket_id=str(ticket["id"]), link=link, status=ticket.get("status", ""))
