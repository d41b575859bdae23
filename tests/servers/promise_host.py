"""Kratix's PromiseRelease test hoster (test/system/assets/promise-release/test-server): Promises served over plain
HTTP, `/secure/...` only with `Authorization: Bearer your-secret-token` (401 without), and redirects (`/redirect/P`
to P, or any path in `redirects`). Tests
put bodies in `routes` and read what each request carried in `requests`."""

from __future__ import annotations


from tests.servers.git_servers import BackgroundHttpServer, QuietHandler

TOKEN = "Bearer your-secret-token"


class PromiseHost(BackgroundHttpServer):
    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}  # path -> Location, e.g. another host's URL
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                auth = self.headers.get("Authorization")
                outer.requests.append((self.path, auth))
                if self.path.startswith("/redirect/") or self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects.get(self.path) or self.path.removeprefix("/redirect"))
                    self.end_headers()
                    return
                body = outer.routes.get(self.path)
                if self.path.startswith("/secure/") and auth != TOKEN:
                    self.send_error(401, "Unauthorized")
                    return
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._listen(Handler)
