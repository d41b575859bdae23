"""Local stand-ins for Slack, PagerDuty and Zendesk that speak the documented request and response shapes of the
endpoints ktx calls, with scripted faults (401, 404, 429 + Retry-After, 500, and "done but the answer was lost")."""

from __future__ import annotations

import base64
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.servers.git_servers import BackgroundHttpServer


@dataclass
class Fault:
    method: str
    path: str
    status: int
    after: bool = False  # perform the request, then answer with the error (the answer is lost)
    headers: dict[str, str] = field(default_factory=dict)


class FakeApi(BackgroundHttpServer):
    """A threaded HTTP server; subclasses route (method, path) to handlers returning (status, body)."""

    untyped_bodies_are_json = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.content_types: list[str] = []  # of each request with a body
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1001)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, method: str, path: str, status: int, after: bool = False, **headers: str) -> None:
        self.faults.append(Fault(method, path, status, after, headers))

    def authorized(self, headers: Any) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parsed = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body: Any = {}
                if raw:
                    content_type = self.headers.get("Content-Type") or ""
                    api.content_types.append(content_type)
                    if "json" in content_type or (not content_type and api.untyped_bodies_are_json):
                        body = json.loads(raw)
                    else:
                        body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                with api.lock:
                    api.calls.append((self.command, parsed.path, body))
                    fault = next((f for f in api.faults if (f.method, f.path) == (self.command, parsed.path)), None)
                    if fault is not None:
                        api.faults.remove(fault)
                    if not api.authorized(self.headers):
                        status, payload = 401, api.unauthorized()
                    elif fault is not None and not fault.after:
                        status, payload = fault.status, {"error": f"injected {fault.status}"}
                    else:
                        status, payload = api.route(
                            self.command,
                            parsed.path,
                            {**query, **body} if self.command == "GET" else query,
                            body,
                            self.headers,
                        )
                        if fault is not None:
                            status, payload = (
                                fault.status,
                                {"error": f"injected {fault.status} after the work was done"},
                            )
                text = isinstance(payload, str)  # plain-text endpoints, such as a Pod's log
                data = b"" if payload is None else payload.encode() if text else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in (fault.headers if fault else {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def unauthorized(self) -> Any:
        return {"error": "unauthorized"}


class FakeSlack(FakeApi):
    """Slack Web API (https://api.slack.com/methods): chat.postMessage, chat.update, chat.getPermalink,
    conversations.history; errors as `{"ok": false, "error": ...}` with HTTP 200, rate limits as 429 + Retry-After."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token
        self.channels: dict[str, list[dict[str, Any]]] = {}
        self.replies: list[dict[str, Any]] = []

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Any:
        return {"ok": False, "error": "invalid_auth"}

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        name = path.rsplit("/", 1)[-1]
        args = {**query, **(body if isinstance(body, dict) else {})}
        if name == "chat.postMessage":
            channel = self._channel(args["channel"])
            ts = f"{next(self.ids)}.000100"
            message = {"ts": ts, "text": args.get("text", ""), "metadata": args.get("metadata")}
            if args.get("thread_ts"):
                self.replies.append({**message, "thread_ts": args["thread_ts"]})
            else:
                self.channels.setdefault(channel, []).insert(0, message)
            return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}
        if name == "chat.update":
            found = next((m for m in self.channels.get(args["channel"], []) if m["ts"] == args["ts"]), None)
            if found is None:
                return 200, {"ok": False, "error": "message_not_found"}
            found["text"] = args.get("text", "")
            return 200, {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": found["text"]}
        if name == "chat.getPermalink":
            return 200, {
                "ok": True,
                "channel": args["channel"],
                "permalink": (
                    f"https://fake.slack.com/archives/{args['channel']}/p{args['message_ts'].replace('.', '')}"
                ),
            }
        if name == "conversations.list":
            names = ["payments", "audit", "x"]
            return 200, {
                "ok": True,
                "channels": [{"id": self._channel(f"#{n}"), "name": n} for n in names],
                "response_metadata": {"next_cursor": ""},
            }
        if name == "conversations.history":
            channel = args["channel"]
            if not channel.startswith("C"):
                return 200, {"ok": False, "error": "channel_not_found"}  # history takes a conversation ID
            with_metadata = str(args.get("include_all_metadata")).lower() in ("1", "true")
            messages = [
                {k: v for k, v in m.items() if k != "metadata" or with_metadata} for m in self.channels.get(channel, [])
            ]
            return 200, {"ok": True, "messages": messages, "has_more": False}
        return 404, {"ok": False, "error": "unknown_method"}

    def _channel(self, name: str) -> str:
        """chat.postMessage accepts `#name` or an ID; both map to one stable ID."""
        if name.startswith("C"):
            return name
        return "C" + base64.b32encode(name.lstrip("#").encode()).decode().strip("=")[:8]

    def messages(self) -> list[dict[str, Any]]:
        return [m for msgs in self.channels.values() for m in msgs]


class FakePagerDuty(FakeApi):
    """PagerDuty REST API v2 (services, escalation_policies, schedules, users: classic pagination) and the Events
    API v2 (`POST /v2/enqueue`, 202 with the dedup_key), in one server."""

    COLLECTIONS = {
        "services": "service",
        "escalation_policies": "escalation_policy",
        "schedules": "schedule",
        "users": "user",
    }

    def __init__(self, token: str, routing_key: str):
        super().__init__()
        self.token = token
        self.routing_key = routing_key
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in self.COLLECTIONS}
        self.incidents: dict[str, dict[str, Any]] = {}

    def add_user(self, email: str) -> str:
        uid = f"PU{next(self.ids)}"
        self.objects["users"][uid] = {"id": uid, "type": "user", "email": email, "name": email.split("@")[0]}
        return uid

    def authorized(self, headers: Any) -> bool:
        return True  # REST checks the token per route; Events API v2 checks the routing key in the body

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        if path == "/v2/enqueue":
            if body.get("routing_key") != self.routing_key:
                return 400, {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": ["Invalid routing key"],
                }
            key = body.get("dedup_key") or f"generated-{next(self.ids)}"
            incident = self.incidents.setdefault(key, {"status": "resolved", "triggers": 0})
            if body["event_action"] == "trigger":
                incident["triggers"] += 1
                incident["status"] = "triggered"
                incident["summary"] = body["payload"]["summary"]
            elif body["event_action"] == "resolve":
                incident["status"] = "resolved"
            return 202, {"status": "success", "message": "Event processed", "dedup_key": key}
        if headers.get("Authorization") != f"Token token={self.token}":
            return 401, {"error": {"message": "Unauthorized", "code": 2006}}
        parts = path.strip("/").split("/")
        kind = parts[0]
        if kind not in self.COLLECTIONS:
            return 404, {"error": {"message": "Not Found", "code": 2100}}
        items = self.objects[kind]
        if method == "GET" and len(parts) == 1:
            q = (query.get("query") or "").lower()
            found = [o for o in items.values() if q in o.get("name", "").lower() or q in o.get("email", "").lower()]
            return 200, {kind: found, "limit": 100, "offset": 0, "more": False, "total": len(found)}
        if method == "POST" and len(parts) == 1:
            obj = dict(body[self.COLLECTIONS[kind]])
            obj["id"] = f"P{kind[:2].upper()}{next(self.ids)}"
            obj["html_url"] = f"https://fake.pagerduty.com/{kind}/{obj['id']}"
            items[obj["id"]] = obj
            return 201, {self.COLLECTIONS[kind]: obj}
        if method == "DELETE" and len(parts) == 2:
            return (204, None) if items.pop(parts[1], None) is not None else (404, {"error": {"message": "Not Found"}})
        return 404, {"error": {"message": "Not Found"}}


class FakeZendesk(FakeApi):
    """Zendesk Support API v2: tickets by external_id, create, update with a comment; Basic `email/token:token`."""

    def __init__(self, email: str, token: str):
        super().__init__()
        self.expected = "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.tickets: dict[int, dict[str, Any]] = {}

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == self.expected

    def unauthorized(self) -> Any:
        return {"error": "Couldn't authenticate you"}

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        if path == "/api/v2/tickets.json" and method == "GET":
            return 200, {
                "tickets": [t for t in self.tickets.values() if t["external_id"] == query.get("external_id")],
                "next_page": None,
                "count": 1,
            }
        if path == "/api/v2/tickets.json" and method == "POST":
            ticket = body["ticket"]
            tid = next(self.ids)
            self.tickets[tid] = {
                "id": tid,
                "subject": ticket["subject"],
                "external_id": ticket.get("external_id"),
                "priority": ticket.get("priority"),
                "status": "new",
                "tags": ticket.get("tags", []),
                "comments": [ticket["comment"]["body"]],
            }
            return 201, {"ticket": self.tickets[tid]}
        if path.startswith("/api/v2/tickets/") and method == "PUT":
            tid = int(path.rsplit("/", 1)[-1].removesuffix(".json"))
            if tid not in self.tickets:
                return 404, {"error": "RecordNotFound", "description": "Not found"}
            update = body["ticket"]
            if "comment" in update:
                self.tickets[tid]["comments"].append(update["comment"]["body"])
            if "status" in update:
                self.tickets[tid]["status"] = update["status"]
            return 200, {"ticket": self.tickets[tid]}
        return 404, {"error": "InvalidEndpoint"}
