"""Real git servers on loopback: `git daemon` (git://) and git's smart HTTP backend behind Basic auth (http://)."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cli.stack import free_port
from tests.waiting import eventually_blocking


def wait_listening(port: int, process: subprocess.Popen | None = None, timeout: float = 60) -> None:  # type: ignore[type-arg]
    """Block until something accepts connections on the port (the server is up); fail at once if its process died,
    and after `timeout` if it never listens (a server that hangs starting must not hang the test run)."""

    def accepts() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True

    # Polled often: every server fixture starts through here, and each poll is one local connect.
    eventually_blocking(
        accepts,
        timeout=timeout,
        what=f"a server listening on 127.0.0.1:{port}",
        interval=0.05,
        max_interval=0.1,
        ignoring=(OSError,),
    )


class ServerProcess:
    """A server run as a child process for the length of a `with` block."""

    process: subprocess.Popen | None = None  # type: ignore[type-arg]

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait()


class GitDaemon(ServerProcess):
    """`git daemon` serving every bare repository under `base`, with push enabled."""

    def __init__(self, base: Path, port: int | None = None):
        self.base = base
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    def url(self, repo: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repo}"

    def __enter__(self) -> "GitDaemon":
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                f"--base-path={self.base}",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                "--informative-errors",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port, self.process)
        return self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing: a test's output shows its own failures, not every request served."""

    def log_message(self, *args: object) -> None:
        pass


class BackgroundHttpServer:
    """A ThreadingHTTPServer on a free loopback port, serving from a thread for the length of a `with` block."""

    server: ThreadingHTTPServer

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        """Binds a free loopback port; `host` (host:port) and `url` say where."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"

    def __enter__(self):  # type: ignore[no-untyped-def]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class GitHttpServer(BackgroundHttpServer):
    """git-http-backend (smart HTTP) for repositories under `base`, requiring HTTP Basic credentials: `username` and
    `password`, or whatever `authorize` accepts of the Authorization header (tokens that change)."""

    def __init__(self, base: Path, username: str, password: str = "", authorize: Callable[[str], bool] | None = None):
        self.base = base
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.authorize = authorize or (lambda header: header == expected)
        self.username = username
        self.authorized_requests = 0
        self.refused_requests = 0
        # Every authorized request's method and service: `GET git-upload-pack` starts a fetch, `GET
        # git-receive-pack` a push.
        self.services: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                if not outer.authorize(self.headers.get("Authorization") or ""):
                    outer.refused_requests += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.authorized_requests += 1
                path, _, query = self.path.partition("?")
                service = query.removeprefix("service=") if query else path.rsplit("/", 1)[-1]
                outer.services.append(f"{self.command} {service}")
                body = self._body()
                env = {
                    **os.environ,
                    "GIT_PROJECT_ROOT": str(outer.base),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": outer.username,
                    "REMOTE_ADDR": "127.0.0.1",
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                head, _, payload = result.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def bare_repo(base: Path, name: str, seed: bool = True) -> Path:
    """A bare repository (with one commit on main unless `seed` is false)."""
    repo = base / name
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    if seed:
        work = base / f"{name}-seed"
        subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True, capture_output=True)
        (work / "README.md").write_text("state store\n")
        git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
    return repo


def refuse_pushes(repo: Path, message: str) -> None:
    """A pre-receive hook that refuses every push, as a protected branch or a policy check would."""
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(0o755)


def accept_pushes(repo: Path) -> None:
    (repo / "hooks" / "pre-receive").unlink(missing_ok=True)


class GitSshServer(ServerProcess):
    """OpenSSH's sshd on loopback, accepting one client key, serving repositories by absolute path (ssh://)."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]
        self.client_key = workdir / "client_key"
        self.known_hosts = ""

    def url(self, repo: Path) -> str:
        return f"ssh://{os.environ.get('USER') or 'root'}@127.0.0.1:{self.port}{repo}"

    def __enter__(self) -> "GitSshServer":
        self.dir.mkdir(parents=True, exist_ok=True)
        host_key = self.dir / "host_key"
        for key in (host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = self.dir / "authorized_keys"
        authorized.write_text((self.dir / "client_key.pub").read_text())
        authorized.chmod(0o600)
        self.known_hosts = (
            f"[127.0.0.1]:{self.port} {(self.dir / 'host_key.pub').read_text().split(' ')[0]} "
            f"{(self.dir / 'host_key.pub').read_text().split(' ')[1]}\n"
        )
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
            f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"StrictModes no\nUsePAM no\nPidFile {self.dir / 'sshd.pid'}\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        self.process = subprocess.Popen(
            [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "sshd.log").open("wb"),
        )
        wait_listening(self.port, self.process)
        return self
