"""`ktx up` / `ktx down`: the embedded stack (Temporal dev server + Web UI, worker, API) under KTX_HOME."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import httpx

from cli import kube_credentials

if TYPE_CHECKING:  # the settings are built by the commands that need them (cli/invocation.py)
    from worker.settings import Settings

# The dev server's database: WAL with normal sync (a commit is not an fsync), and auto_vacuum=full so pages that
# retention frees go back to the disk instead of holding the file at its high-water mark forever. SQLite takes
# auto_vacuum only when it creates the file: a database made before keeps its mode until a VACUUM.
TEMPORAL_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal", "auto_vacuum=full")


def sqlite_pragma_args(pragmas: tuple[str, ...] = TEMPORAL_SQLITE_PRAGMAS) -> list[str]:
    """`temporal server start-dev`'s options for the pragmas."""
    return [arg for pragma in pragmas for arg in ("--sqlite-pragma", pragma)]


BOOTSTRAP = """\
apiVersion: platform.kratix.io/v1alpha1
kind: GitStateStore
metadata:
  name: default
spec:
  url: {url}
  branch: main
  gitAuthor:
    name: kratix
    email: kratix@ktx.local
---
apiVersion: platform.kratix.io/v1alpha1
kind: Destination
metadata:
  name: local
  labels:
    environment: dev
spec:
  path: local
  stateStoreRef:
    kind: GitStateStore
    name: default
---
# The platform itself: Kratix documents written here (a compound Promise's component requests) are applied back.
apiVersion: platform.kratix.io/v1alpha1
kind: Destination
metadata:
  name: platform
  labels:
    environment: platform
  annotations:
    ktx.io/platform-destination: "true"
spec:
  path: platform
  strictMatchLabels: true
  stateStoreRef:
    kind: GitStateStore
    name: default
"""


class StackError(RuntimeError):
    pass


# How a user moves each port of the stack: named in the refusal when the port is taken.
PORT_OPTIONS = {
    "temporal": ("the Temporal server", "--temporal-port", "KTX_TEMPORAL_PORT"),
    "ui": ("the Temporal Web UI", "--ui-port", "KTX_UI_PORT"),
    "api": ("the ktx API", "--api-port", "KTX_API_PORT"),
    "worker_health": ("the worker's health endpoints", "--worker-health-port", "KTX_WORKER_HEALTH_PORT"),
    "kube_api": ("the Kubernetes API (HTTPS)", "--kube-api-port", "KTX_KUBE_API_PORT"),
}
LOG_TAIL_LINES = 15


def _state_file(home: Path) -> Path:
    return home / "stack.json"


def _alive(pid: int) -> bool:
    try:
        # Reaps it if it is a child of this process that exited: a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def api_url(home: Path) -> str:
    state = _state_file(home)
    if "KTX_API_URL" in os.environ:
        return os.environ["KTX_API_URL"]
    if state.exists():
        return json.loads(state.read_text())["api_url"]
    from worker.settings import Settings  # only when no stack says where its API is

    settings = Settings.from_env()
    return f"http://{settings.api_host}:{settings.api_port}"


def _healthy(url: str, ca: Path | None = None) -> bool:
    try:
        verify = ssl.create_default_context(cafile=ca) if ca else True
        return httpx.get(f"{url}/readyz", timeout=3, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def _temporal_cli() -> str:
    found = Path(sys.executable).parent / "temporal"
    return str(found) if found.exists() else (shutil.which("temporal") or "temporal")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_taken(host: str, port: int) -> bool:
    # SO_REUSEADDR, as the servers themselves bind: a socket lingering in TIME_WAIT does not count, a listener does.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _refuse_taken_ports(ports: dict[str, tuple[str, int]]) -> None:
    for key, (host, port) in ports.items():
        if _port_taken(host, port):
            what, flag, variable = PORT_OPTIONS[key]
            raise StackError(
                f"error: port {port} on {host} ({what}) is already in use; choose another with {flag} or "
                f"{variable} (and a separate KTX_HOME for a second stack)"
            )


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def _spawn(name: str, args: list[str], log: Path, env: dict[str, str]) -> _Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    return _Process(name, proc, log)


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return "  (no log)"
    return "\n".join(f"  | {line}" for line in lines) or "  (its log is empty)"


def _exited(processes: list[_Process]) -> StackError | None:
    # poll(), not kill(pid, 0): a child that died stays a zombie of this process until reaped, and kill() finds it.
    for proc in processes:
        code = proc.popen.poll()
        if code is not None:
            return StackError(
                f"error: {proc.name} exited during start-up (exit code {code}); the last lines of "
                f"{proc.log}:\n{_log_tail(proc.log)}"
            )
    return None


def _wait(check: Callable[[], bool], process: _Process, timeout: float, processes: list[_Process]) -> None:
    """Until check() holds; stops at once when any process of the stack exits, and at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not check():
        if (failed := _exited(processes)) is not None:
            raise failed
        if time.monotonic() > deadline:
            raise StackError(
                f"error: {process.name} did not become ready within {timeout:g}s; the last lines of "
                f"{process.log}:\n{_log_tail(process.log)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _while_running(
    call: Callable[[], httpx.Response], what: str, timeout: float, processes: list[_Process]
) -> httpx.Response:
    """call() in a daemon thread, given up as soon as a process of the stack exits (its answer would never come).

    A daemon thread, so a call left hanging does not hold `ktx up` open after it has reported the failure."""
    answers: queue.Queue[httpx.Response | httpx.HTTPError] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            answers.put(call())
        except httpx.HTTPError as exc:
            answers.put(exc)

    threading.Thread(target=run, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = answers.get(timeout=0.2)
        except queue.Empty:
            if (failed := _exited(processes)) is not None:
                raise failed from None
            continue
        if isinstance(answer, httpx.HTTPError):
            raise StackError(f"error: {what} failed: {answer}")
        return answer
    raise StackError(f"error: {what} got no answer within {timeout:g}s")


def _state_store_repo(home: Path) -> Path:
    """A bare repository with a first commit on main, so GitOps agents can watch the branch from the start."""
    remote = home / "state" / "kratix.git"
    if remote.exists():
        return remote
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    with tempfile.TemporaryDirectory() as seed:
        subprocess.run(["git", "clone", "-q", str(remote), seed], check=True, capture_output=True)
        Path(seed, "README.md").write_text("Kratix state store managed by ktx.\n")
        git = ["git", "-C", seed, "-c", "user.name=kratix", "-c", "user.email=kratix@ktx.local"]
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "Initialise state store"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
    return remote


async def _register_search_attributes(settings: Settings) -> None:
    # Imported here: the worker module pulls in every activity (kubernetes, boto3, the Temporal worker), a second of
    # start-up that every `ktx get` would pay when only `ktx up` needs it.
    from worker.main import ensure_search_attributes
    from worker.settings import connect_client

    await ensure_search_attributes(await connect_client(settings))


def _bootstrap_headers(settings: Settings) -> dict[str, str]:
    token = os.environ.get("KTX_TOKEN")
    if settings.api_tokens_file is not None and not token:
        raise StackError(
            "error: KTX_API_TOKENS_FILE is set, so the API asks every caller for a token: export KTX_TOKEN "
            "as a platform token listed in that file (ktx token create NAME --role platform)"
        )
    return (
        {"Authorization": f"Bearer {token}", "content-type": "application/yaml"}
        if token
        else {"content-type": "application/yaml"}
    )


def up(
    settings: Settings, temporal_port: int, ui_port: int, worker_health_port: int | None = None
) -> dict[str, object]:
    """Starts the stack under settings.home, or reports the one already running there.

    The worker's health port and the Kubernetes API's HTTPS port are chosen free unless given, and kept in
    stack.json: a second stack on its own KTX_HOME and ports starts beside the first with nothing else set."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    state_file = _state_file(home)
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if all(_alive(p) for p in state["pids"].values()) and _healthy(state["api_url"]):
            return {**state, "reused": True}
        down(settings)
    headers = _bootstrap_headers(settings)
    health_port = worker_health_port or free_port(settings.worker_health_host)
    kube_host = settings.kube_api_host or settings.api_host
    kube_port = settings.kube_api_port or free_port(kube_host)
    _refuse_taken_ports(
        {
            "temporal": ("127.0.0.1", temporal_port),
            "ui": ("127.0.0.1", ui_port),
            "api": (settings.api_host, settings.api_port),
            "worker_health": (settings.worker_health_host, health_port),
            "kube_api": (kube_host, kube_port),
        }
    )
    try:
        credentials = kube_credentials.ensure(home, settings.kube_api_cert_sans)
    except kube_credentials.CredentialsError as exc:
        raise StackError(str(exc)) from None
    env = {
        **os.environ,
        "KTX_HOME": str(home),
        "KTX_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "KTX_API_PORT": str(settings.api_port),
        "KTX_API_HOST": settings.api_host,
        "KTX_WORKER_HEALTH_PORT": str(health_port),
        "KTX_KUBE_API_HOST": kube_host,
        "KTX_KUBE_API_PORT": str(kube_port),
        "KTX_KUBE_API_TLS_CERT": str(credentials.cert),
        "KTX_KUBE_API_TLS_KEY": str(credentials.key),
        "KTX_KUBE_API_TLS_CA": str(credentials.ca),
        "KTX_API_ADMIN_TOKEN_FILE": str(credentials.admin_token),
        "KTX_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
    }
    settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{temporal_port}"})
    logs = home / "logs"
    temporal = _spawn(
        "the Temporal dev server",
        [
            _temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(temporal_port),
            "--ui-port",
            str(ui_port),
            "--db-filename",
            str(home / "temporal.db"),
            *sqlite_pragma_args(),
            "--log-level",
            "error",
        ],
        logs / "temporal.log",
        env,
    )
    processes = [temporal]
    try:

        def temporal_ready() -> bool:
            try:
                asyncio.run(_register_search_attributes(settings))
            except Exception:  # noqa: BLE001 - not ready yet, whatever the reason; the deadline and exit checks decide
                return False
            return True

        _wait(temporal_ready, temporal, 60, processes)
        worker = _spawn("the worker", [sys.executable, "-m", "worker"], logs / "worker.log", env)
        api = _spawn("the API", [sys.executable, "-m", "api.app"], logs / "api.log", env)
        processes += [worker, api]
        url = f"http://{settings.api_host}:{settings.api_port}"
        _wait(lambda: _healthy(f"http://{settings.worker_health_host}:{health_port}"), worker, 60, processes)
        _wait(lambda: _healthy(url), api, 60, processes)
        kube_url = f"https://{_url_host(kube_host)}:{kube_port}"
        _wait(lambda: _healthy(kube_url, credentials.ca), api, 30, processes)
        remote = _state_store_repo(home)
        response = _while_running(
            lambda: httpx.post(f"{url}/apply", content=BOOTSTRAP.format(url=remote), headers=headers, timeout=60),
            "the bootstrap apply (state store and Destinations)",
            65,
            processes,
        )
        if response.status_code >= 400:
            raise StackError(f"error: the bootstrap apply was refused ({response.status_code}): {_reason(response)}")
    except BaseException:
        _stop([p.popen.pid for p in processes])
        raise
    pids = {"temporal": temporal.popen.pid, "worker": worker.popen.pid, "api": api.popen.pid}
    state = {
        "pids": pids,
        "api_url": url,
        "temporal_address": settings.temporal_address,
        "ui_url": f"http://127.0.0.1:{ui_port}",
        "worker_health_url": f"http://{settings.worker_health_host}:{health_port}",
        "kube_api_url": kube_url,
        "kube_api_ca": str(credentials.ca),
        "state_store": str(remote),
    }
    state_file.write_text(json.dumps(state, indent=2))
    return {**state, "reused": False}


def _url_host(host: str) -> str:
    """The host as a URL names it: an IPv6 address in brackets; a wildcard bind is dialled on this machine."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def kube_api(home: Path) -> dict[str, str]:
    """The running stack's Kubernetes API: its HTTPS URL and CA file (from stack.json)."""
    state = _state_file(home)
    if not state.exists():
        raise StackError(f"error: no embedded stack under {home} (start one with ktx up, or pass --server)")
    found = json.loads(state.read_text())
    if "kube_api_url" not in found:
        raise StackError("error: the running stack predates the Kubernetes API; restart it (ktx down; ktx up)")
    return {key: found[key] for key in ("kube_api_url", "kube_api_ca")}


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("message") or body.get("detail") or body)[:500] if isinstance(body, dict) else str(body)[:500]


def _stop(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


def down(settings: Settings) -> bool:
    state_file = _state_file(settings.home)
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    # The API and worker go first so nothing is mid-write when the server stops.
    _stop([state["pids"][k] for k in ("api", "worker") if k in state["pids"]])
    _stop([state["pids"]["temporal"]])
    state_file.unlink()
    return True
