"""The web console: static ES modules and CSS under `/ui`, and its JSON views under `/ui/api` (routes.py)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from api.console.routes import BadFilter, routes

STATIC = Path(__file__).parent / "static"
# No inline script or style anywhere (and none allowed): a value shown on a page can never run as code. The token is
# sent only to this origin (connect-src), and no other site may frame the console.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# What a team token may read is never cached by the browser. The code is served under its own content's hash
# (`/ui/static/<version>/`), so it is cached for good and a page load asks for none of it again; an upgraded API
# serves its new files under a new version, which the page (never cached) names.
NO_STORE = (b"cache-control", b"no-store")
IMMUTABLE = (b"cache-control", b"public, max-age=31536000, immutable")


def static_version(directory: Path = STATIC) -> str:
    """The hash of every static file's path and bytes: it changes with any file."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class ConsoleHeaders:
    """Adds the console's security headers to every `/ui` answer (static files and JSON alike)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["path"] == "/ui" or scope["path"].startswith("/ui/")):
            await self.app(scope, receive, send)
            return

        cache = IMMUTABLE if scope["path"].startswith("/ui/static/") else NO_STORE

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                added = [h for h in (*HEADERS, cache) if h[0] not in names]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_headers)


def mount(app: FastAPI) -> None:
    # Seals the requests list's page tokens (routes.py): only tokens this process gave reach Temporal.
    app.state.console_page_key = secrets.token_bytes(32)

    @app.exception_handler(BadFilter)
    async def bad_filter(request: Request, exc: BadFilter) -> JSONResponse:
        return JSONResponse(status_code=400, content={"message": str(exc), "document": None, "errors": []})

    app.include_router(routes())

    version = static_version()
    # The page names this version's files; the modules import each other by relative paths, so they stay in it.
    page = (STATIC / "index.html").read_text().replace("/ui/static/", f"/ui/static/{version}/")

    async def console_page() -> HTMLResponse:
        # One page; the views are routes of its own (`#/requests`, ...), so a reload stays where it was. It holds no
        # data, so it is served without a token: the login is on it.
        return HTMLResponse(page)

    for path in ("/ui", "/ui/"):
        app.add_api_route(path, console_page, methods=["GET"], include_in_schema=False)

    # Another version's files are not found: a tab opened before an upgrade reloads the page when a view's module
    # is missing (main.js), and so gets this version's.
    app.mount(f"/ui/static/{version}", StaticFiles(directory=STATIC), name="console-static")
    app.add_middleware(ConsoleHeaders)
