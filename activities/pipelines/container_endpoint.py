"""The platform API's one endpoint inside a pipeline container's own network namespace.

The worker opens a listening socket on the container's loopback (127.0.0.1:443) after podman has made the container's
namespace and before its process starts, and forwards each connection to the API's HTTPS listener from the worker's
own namespace. TLS runs end to end between the container's client and the API: the worker only moves bytes. With
KTX_PIPELINE_NETWORK=none the container has nothing but that loopback, so this is the one thing it can reach; with the
default network it is reached the same way (the API may listen on the host's loopback only).

Entering a namespace is per thread (setns(2)): a fresh thread enters, makes the socket (which stays in that namespace
for good) and leaves, and is never reused, so no other code ever runs in the container's namespace. It needs
CAP_SYS_ADMIN, i.e. a worker running as root with rootful podman.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import threading
from typing import Any

ENDPOINT_HOST = "127.0.0.1"
ENDPOINT_PORT = 443
# Connections one container may hold open at once: kubectl and the `kubernetes` client use one or two, a watch one
# more; past this a connection is closed at once rather than taking another of the worker's sockets.
MAX_CONNECTIONS = 32
# Reaching the API is local (the worker's host or its cluster): 10 s is a dead API, not a slow one.
CONNECT_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024
_CLONE_NEWNET = 0x40000000


def _setns(libc: Any, fd: int) -> None:
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _listen_in_namespace(pid: int, host: str, port: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(libc, target)
            try:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                # Should this fail, the thread ends here all the same and nothing else ever runs in it.
                _setns(libc, own)
        finally:
            os.close(target)
    finally:
        os.close(own)
    try:
        listener.bind((host, port))
        listener.listen(MAX_CONNECTIONS)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


def listen_in(pid: int, host: str = ENDPOINT_HOST, port: int = ENDPOINT_PORT) -> socket.socket:
    """A listening socket on `host:port` in the network namespace of process `pid`."""
    result: dict[str, Any] = {}

    def enter() -> None:
        try:
            result["socket"] = _listen_in_namespace(pid, host, port)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            result["error"] = exc

    thread = threading.Thread(target=enter, name=f"ktx-netns-{pid}", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["socket"]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still be answering
    except (ConnectionError, OSError):
        writer.close()


class Forwarder:
    """Serves a listener by forwarding every connection to `upstream` (host, port) until closed."""

    def __init__(self, listener: socket.socket, upstream: tuple[str, int]):
        self.listener = listener
        self.upstream = upstream
        self.connections: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "Forwarder":
        self.server = await asyncio.start_server(self._accepted, sock=self.listener)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        await self.server.wait_closed()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self.connections.add(task)
        upstream_writer = None
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT_S
            )
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (OSError, TimeoutError):
            pass  # the API is not there: the container's client sees its connection closed, as it would
        finally:
            self.connections.discard(task)
            for w in (writer, upstream_writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()
