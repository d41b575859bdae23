"""The worker's probe and scrape endpoints: /healthz, /readyz and /metrics on worker_health_host:worker_health_port.

The HTTP server runs in its own threads so a probe is answered even while the event loop is busy. Readiness is
checked *on* the loop (the Temporal client belongs to it) with a bounded wait: the handler thread blocks, never the
loop, and a loop that cannot answer in time is itself a reason not to be ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from temporalio.client import Client

if TYPE_CHECKING:
    from worker.main import PlatformWorkers

TEMPORAL_TIMEOUT_S = 2.0
# Temporal's timeout plus time for the loop to pick the check up; under the probes' 3 s timeoutSeconds
# (deploy/base), so a stuck loop is reported with its reason instead of as a probe timeout.
LOOP_TIMEOUT_S = TEMPORAL_TIMEOUT_S + 0.5

log = logging.getLogger(__name__)


async def temporal_unready_reason(client: Client) -> str | None:
    """None when Temporal answers a health check in time (the API's /readyz uses it too)."""
    target = client.service_client.config.target_host
    try:
        # A lazy or dropped connection is re-established inside the call, outside check_health's own timeout.
        async with asyncio.timeout(TEMPORAL_TIMEOUT_S):
            serving = await client.service_client.check_health(timeout=timedelta(seconds=TEMPORAL_TIMEOUT_S))
    except TimeoutError:
        return f"Temporal at {target} did not answer within {TEMPORAL_TIMEOUT_S:g}s"
    except Exception as exc:  # noqa: BLE001 - whatever the client raises is the reason
        return f"Temporal at {target} is unreachable: {exc}"
    return None if serving else f"Temporal at {target} reports its workflow service is not serving"


class HealthServer:
    """Serves the probes for `workers` and `client` while entered (`async with`), from the running event loop."""

    def __init__(self, client: Client, workers: PlatformWorkers, host: str, port: int):
        self.client = client
        self.workers = workers
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "the health server is not started"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    async def __aenter__(self) -> "HealthServer":
        self._loop = asyncio.get_running_loop()
        self._server = ThreadingHTTPServer((self._host, self._port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="ktx-health", daemon=True).start()
        log.info("health endpoints on http://%s:%d (/healthz, /readyz, /metrics)", *self.address)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()

    async def unready_reason(self) -> str | None:
        """None when ready; runs on the event loop."""
        if not self.workers.running:
            return "the Temporal workers are not running"
        return await temporal_unready_reason(self.client)

    def readiness(self) -> str | None:
        """Called from a handler thread."""
        assert self._loop is not None
        try:
            future = asyncio.run_coroutine_threadsafe(self.unready_reason(), self._loop)
        except RuntimeError:  # the loop is closed: the worker is going away
            return "the worker's event loop has stopped"
        try:
            return future.result(timeout=LOOP_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return f"the worker's event loop did not answer within {LOOP_TIMEOUT_S:g}s"


def _handler(health: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "application/json", json.dumps({"status": "ok"}).encode())
            elif path == "/readyz":
                reason = health.readiness()
                body = {"status": "ready"} if reason is None else {"status": "not ready", "reason": reason}
                self._send(200 if reason is None else 503, "application/json", json.dumps(body).encode())
            elif path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept"))
                self._send(200, content_type, encoder(REGISTRY))
            else:
                self._send(404, "application/json", json.dumps({"detail": "Not Found"}).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes arrive every few seconds; access lines would drown the worker's log."""

    return Handler
