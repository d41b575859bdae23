"""The API process's listeners: the plain-HTTP port, and the HTTPS port Kubernetes clients and pipelines use.

Both serve the same app (one lifespan, one Platform) from one event loop. The HTTPS listener marks every request it
serves, so authentication asks each for a token there whatever the tokens file says (api/auth.py HTTPS_LISTENER).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.auth import HTTPS_LISTENER
from worker.settings import Settings


class HttpsListener:
    """The app as the HTTPS listener serves it: each request marked as having come through TLS."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, HTTPS_LISTENER: True}
        await self.app(scope, receive, send)


class ListenerConfigError(RuntimeError):
    pass


def https_config(settings: Settings, app: FastAPI) -> uvicorn.Config | None:
    if settings.kube_api_port is None:
        return None
    cert, key = settings.kube_api_tls_cert, settings.kube_api_tls_key
    if cert is None or key is None:
        raise ListenerConfigError(
            "KTX_KUBE_API_PORT is set: the HTTPS listener needs KTX_KUBE_API_TLS_CERT and KTX_KUBE_API_TLS_KEY"
        )
    for path, variable in ((cert, "KTX_KUBE_API_TLS_CERT"), (key, "KTX_KUBE_API_TLS_KEY")):
        if not path.is_file():
            raise ListenerConfigError(f"{variable} {path}: no such file")
    return uvicorn.Config(
        HttpsListener(app),
        host=settings.kube_api_host or settings.api_host,
        port=settings.kube_api_port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_version=ssl.PROTOCOL_TLS_SERVER,
        # Forwarded headers could make a request look as if it came some other way: this port trusts none.
        proxy_headers=False,
        lifespan="off",  # the app's lifespan runs once, around both listeners
        log_level="warning",
    )


class Listeners:
    """The plain-HTTP listener and, when a port is set, the HTTPS one, serving one app from one event loop."""

    def __init__(self, settings: Settings, app: FastAPI):
        self.app = app
        configs = [
            uvicorn.Config(app, host=settings.api_host, port=settings.api_port, lifespan="off", log_level="warning")
        ]
        if (secure := https_config(settings, app)) is not None:
            configs.append(secure)
        self.servers = [uvicorn.Server(config) for config in configs]

    async def serve(self) -> None:
        """Both listeners until either stops (a signal stops both: uvicorn passes it from one to the next)."""
        async with self.app.router.lifespan_context(self.app):
            tasks = [asyncio.create_task(server.serve()) for server in self.servers]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            self.stop()
            await asyncio.gather(*tasks)

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
