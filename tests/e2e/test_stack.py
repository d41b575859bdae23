"""`ktx up` on a real machine: the README's first command end to end beside another stack, busy ports, a process that
dies while starting, a tokens file, and CLI failures that read as messages rather than tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import pytest

from cli.stack import PORT_OPTIONS, free_port
from tests.conftest import ROOT

# What a stack holds when started with no port settings, as the old fixed worker health port did.
DEFAULT_PORTS = {"temporal": 7233, "ui": 8233, "api": 8181, "worker_health": 8282}


def _taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _stack_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTX_")}
    return {**env, "KTX_HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}", **extra}


def _ktx(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _up(env: dict[str, str], ports: dict[str, int], timeout: float) -> subprocess.CompletedProcess[str]:
    """`ktx up` on the given ports, each by its flag (temporal, ui, api, worker_health)."""
    flags = [arg for key, port in ports.items() for arg in (PORT_OPTIONS[key][1], str(port))]
    return _ktx(env, "up", *flags, timeout=timeout)


def _listen(port: int) -> socket.socket:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    return holder


def _assert_short_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, f"expected a failure, got {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error") or result.stderr.startswith("Error from server"), result.stderr
    for text in expected:
        assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"


@pytest.fixture
def default_ports_held(tmp_path: Path) -> Iterator[None]:
    """The default ports, worker health 8282 included, held by a real stack (or, where something on this machine
    already holds some of them, by that and plain listeners), as on a developer's machine with `ktx up` running."""
    with ExitStack() as held:
        if not any(_taken(p) for p in DEFAULT_PORTS.values()):
            env = _stack_env(tmp_path / "default-home")
            started = _ktx(env, "up", "--worker-health-port", str(DEFAULT_PORTS["worker_health"]))
            assert started.returncode == 0, started.stderr
            held.callback(_ktx, env, "down")
        for port in DEFAULT_PORTS.values():
            if not _taken(port):
                held.enter_context(_listen(port))
        assert all(_taken(p) for p in DEFAULT_PORTS.values())
        yield


def test_quickstart_on_a_fresh_home_beside_a_stack_on_the_default_ports(
    tmp_path: Path, default_ports_held: None, pipeline_images: None
) -> None:
    home = tmp_path / "fresh-home"
    # Ports of its own and nothing else: the worker health port is not set, so the stack must choose one.
    env = _stack_env(
        home, KTX_TEMPORAL_PORT=str(free_port()), KTX_UI_PORT=str(free_port()), KTX_API_PORT=str(free_port())
    )
    try:
        done = subprocess.run(
            [str(ROOT / "scripts" / "quickstart.sh")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"quickstart failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        assert "appconfig/checkout condition met" in done.stdout
        assert "local/resources/default/app-config/checkout/render/5058f/configmap.yaml" in done.stdout
        assert "name: checkout-config" in done.stdout
        state = json.loads((home / "stack.json").read_text())
        health_port = int(state["worker_health_url"].rsplit(":", 1)[1])
        assert health_port not in DEFAULT_PORTS.values()
        assert state["api_url"] == f"http://127.0.0.1:{env['KTX_API_PORT']}"
        _kubectl_reaches_the_stack(env, home)
    finally:
        _ktx(env, "down")


def _kubectl_reaches_the_stack(env: dict[str, str], home: Path) -> None:
    """`ktx kubeconfig` as the docs show it: kubectl verifies the stack's HTTPS certificate and acts as its admin."""

    def ktx(*args: str) -> subprocess.CompletedProcess[str]:
        return _ktx(env, *args)

    printed = ktx("kubeconfig")
    assert printed.returncode == 0, printed.stderr
    config = home / "kubeconfig"
    config.write_text(printed.stdout)
    assert (home / "kube" / "admin-token").stat().st_mode & 0o077 == 0
    kubectl = {**env, "KUBECONFIG": str(config)}
    run = [str(ROOT / ".venv" / "bin" / "kubectl")]
    promises = subprocess.run([*run, "get", "promises"], env=kubectl, capture_output=True, text=True, timeout=60)
    assert promises.returncode == 0 and "app-config" in promises.stdout, promises.stderr
    whoami = subprocess.run([*run, "auth", "whoami"], env=kubectl, capture_output=True, text=True, timeout=60)
    assert "Username    ktx-admin" in whoami.stdout, whoami.stderr


@pytest.mark.parametrize("which", ["temporal", "ui", "api", "worker_health", "kube_api"])
def test_a_busy_port_is_refused_naming_how_to_move_it(tmp_path: Path, which: str) -> None:
    ports = {key: free_port() for key in [*DEFAULT_PORTS, "kube_api"]}
    with _listen(ports[which]):
        env = _stack_env(tmp_path / "home")
        result = _up(env, ports, timeout=30)
    _, flag, variable = PORT_OPTIONS[which]
    _assert_short_error(result, f"port {ports[which]}", flag, variable)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "stack.json").exists()
    assert not _taken(ports["temporal"]) or which == "temporal", "nothing of the stack may be left running"


def test_a_process_that_exits_while_starting_stops_up_with_its_log(tmp_path: Path) -> None:
    ports = {key: free_port() for key in ("temporal", "ui", "api")}
    # The API refuses to start on a tokens file it cannot read; the worker and Temporal start fine.
    env = _stack_env(tmp_path / "home", KTX_API_TOKENS_FILE=str(tmp_path / "missing.yaml"), KTX_TOKEN="anything")
    result = _up(env, ports, timeout=90)
    _assert_short_error(
        result, "the API exited during start-up", str(tmp_path / "home" / "logs" / "api.log"), "missing.yaml"
    )
    assert not (tmp_path / "home" / "stack.json").exists()
    assert not _taken(ports["temporal"]), "the Temporal server it had started must be stopped"


def test_up_with_a_tokens_file_bootstraps_with_the_callers_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plain = _stack_env(home)
    created = _ktx(plain, "token", "create", "admin", "--role", "platform")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    token = lines[1]
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text("\n".join(lines[lines.index(next(x for x in lines if x.startswith("- name:"))) :]) + "\n")
    ports = {key: str(free_port()) for key in ("KTX_TEMPORAL_PORT", "KTX_UI_PORT", "KTX_API_PORT")}
    without_token = _ktx(_stack_env(home, KTX_API_TOKENS_FILE=str(tokens_file), **ports), "up", timeout=30)
    _assert_short_error(without_token, "export KTX_TOKEN")
    env = _stack_env(home, KTX_API_TOKENS_FILE=str(tokens_file), KTX_TOKEN=token, **ports)
    try:
        started = _ktx(env, "up")
        assert started.returncode == 0, started.stderr
        listed = _ktx(env, "get", "destinations")
        assert listed.returncode == 0 and "local" in listed.stdout and "platform" in listed.stdout, listed.stderr
        refused = _ktx({**env, "KTX_TOKEN": "not-a-listed-token"}, "get", "destinations")
        _assert_short_error(refused, "401", "unknown token")
    finally:
        _ktx(env, "down")


def test_cli_failures_are_a_line_or_two_not_a_traceback(tmp_path: Path) -> None:
    nobody = _stack_env(tmp_path / "home", KTX_API_URL=f"http://127.0.0.1:{free_port()}")
    _assert_short_error(_ktx(nobody, "get", "promises"), "cannot reach the ktx API")
    _assert_short_error(_ktx(nobody, "apply", "-f", str(tmp_path / "absent.yaml")), "absent.yaml")
    # `up` is a command that reads the worker's settings (`get` needs only the API's address, so it ignores them).
    _assert_short_error(_ktx({**nobody, "KTX_PIPELINE_CONCURRENCY": "many"}, "up"), "pipeline_concurrency")
    unreadable = tmp_path / "secret.txt"
    _assert_short_error(_ktx(nobody, "create", "secret", "generic", "s", f"--from-file=k={unreadable}"), "secret.txt")
