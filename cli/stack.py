"""`ktx up` / `ktx down`: the embedded stack (Temporal dev server + Web UI, worker, API) under KTX_HOME."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from worker.settings import Settings, connect_client

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


def _state_file(home: Path) -> Path:
    return home / "stack.json"


def _alive(pid: int) -> bool:
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
    settings = Settings.from_env()
    return f"http://{settings.api_host}:{settings.api_port}"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _temporal_cli() -> str:
    found = Path(sys.executable).parent / "temporal"
    return str(found) if found.exists() else (shutil.which("temporal") or "temporal")


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return proc.pid


def _wait(check, what: str, timeout: float, pids: list[int]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not check():
        if time.monotonic() > deadline or not all(_alive(p) for p in pids):
            raise StackError(f"{what} did not become ready; see the logs under KTX_HOME/logs")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


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

    await ensure_search_attributes(await connect_client(settings))


def up(settings: Settings, temporal_port: int, ui_port: int) -> dict[str, object]:
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    state_file = _state_file(home)
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if all(_alive(p) for p in state["pids"].values()) and _healthy(state["api_url"]):
            return {**state, "reused": True}
        down(settings)
    env = {**os.environ, "KTX_HOME": str(home), "KTX_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
           "KTX_API_PORT": str(settings.api_port), "KTX_API_HOST": settings.api_host}
    settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{temporal_port}"})
    logs = home / "logs"
    pids: dict[str, int] = {}
    pids["temporal"] = _spawn(
        [_temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(temporal_port), "--ui-port", str(ui_port),
         "--db-filename", str(home / "temporal.db"), "--sqlite-pragma", "journal_mode=wal",
         "--sqlite-pragma", "synchronous=normal", "--log-level", "error"],
        logs / "temporal.log", env,
    )
    try:
        def temporal_ready() -> bool:
            try:
                asyncio.run(_register_search_attributes(settings))
            except Exception:
                return False
            return True

        _wait(temporal_ready, "the Temporal dev server", 60, list(pids.values()))
        pids["worker"] = _spawn([sys.executable, "-m", "worker"], logs / "worker.log", env)
        pids["api"] = _spawn([sys.executable, "-m", "api.app"], logs / "api.log", env)
        url = f"http://{settings.api_host}:{settings.api_port}"
        _wait(lambda: _healthy(url), "the API", 60, list(pids.values()))
        remote = _state_store_repo(home)
        response = httpx.post(f"{url}/apply", content=BOOTSTRAP.format(url=remote), timeout=60)
        response.raise_for_status()
    except BaseException:
        _stop(list(pids.values()))
        raise
    state = {"pids": pids, "api_url": url, "temporal_address": settings.temporal_address,
             "ui_url": f"http://127.0.0.1:{ui_port}", "state_store": str(remote)}
    state_file.write_text(json.dumps(state, indent=2))
    return {**state, "reused": False}


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
