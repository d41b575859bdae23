"""A plain HTTP server of a directory's files (a Helm chart repository, a chart archive), optionally behind one
redirect, as release downloads are."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.servers.git_servers import BackgroundHttpServer


class StaticFiles(BackgroundHttpServer):
    def __init__(self, root: Path):
        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.startswith("/redirect/"):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/redirect"))
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
