"""A stand-in OCI registry that only checks credentials: every request gets 401 with an HTTP Basic challenge (the
distribution spec's `GET /v2/` flow), and the Authorization headers clients sent are kept for the test to read."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers.git_servers import BackgroundHttpServer


class ChallengingRegistry(BackgroundHttpServer):
    def __init__(self) -> None:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                seen.append(self.headers.get("Authorization", ""))
                body = b'{"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="ktx-test"')
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.authorizations = seen
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
