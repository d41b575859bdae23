"""The request-body limit, enforced as the body arrives rather than after the app has buffered it."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    # An HTTPException so FastAPI's own body parsing (JSON bodies of other routes) passes it through as 413
    # instead of turning it into "There was an error parsing the body" (400).
    def __init__(self, limit: int):
        super().__init__(
            status_code=413,
            detail=f"request body over the limit of {limit} bytes ({_readable(limit)}, "
            "KTX_API_MAX_BODY); split the documents into several requests",
        )


class BodyLimit:
    """Refuses on Content-Length before reading anything, and counts while reading so a chunked body cannot get past.

    Pure ASGI: the check sits in `receive`, so it fires in whichever route reads the body, where the app's exception
    handlers answer it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def _readable(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} B"
