"""The API's readiness and scrape endpoints, and its request counter (by route template, so cardinality is bounded)."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, Counter
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from activities.metrics import metric
from worker.health import temporal_unready_reason

API_REQUESTS = metric(
    Counter,
    "ktx_api_requests_total",
    "API requests answered, by route template and status.",
    ["method", "route", "status"],
)

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestMetrics:
    """Pure ASGI rather than @app.middleware, which would buffer streamed responses and break contextvars."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception escaping the app is answered 500 by the server error middleware outside this one

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # The router records the matched route in the scope; a path no route matches must not become a label.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            API_REQUESTS.labels(method, route, str(status)).inc()


def instrument(app: FastAPI) -> None:
    app.add_middleware(RequestMetrics)

    @app.get("/readyz", responses={503: {"description": "Temporal does not answer within 2 s"}})
    async def readyz(request: Request) -> JSONResponse:
        reason = await temporal_unready_reason(request.app.state.platform.client)
        if reason is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get("/metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept"))
        return Response(encoder(REGISTRY), media_type=content_type)
