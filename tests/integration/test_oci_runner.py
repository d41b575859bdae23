"""The OCI runner against the podman runner: the same containers probed from inside under both, and what each sees
compared (ids, capabilities, seccomp, mounts, network, environment, limits, exit codes)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from activities.pipelines.oci_runtime import DEFAULT_SECCOMP, OciRuntime
from activities.pipelines.podman_runner import ContainerRuntime, Isolation, PodmanRunner
from domain.documents import Container
from tests.integration.test_hostile_fields import run_input, workspace
from tests.kratix_documents import BEHAVE
from worker.settings import Settings

# Run inside the container: what it is and what it may do, minus what names the one container (its host name).
PROBE = r"""
import json, os
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
mounts = {}
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    rest = fields[fields.index("-") + 1:]
    mounts[fields[4]] = {"type": rest[0], "ro": "ro" in fields[5].split(",")}
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
report = {
    "ids": [os.getuid(), os.getgid(), sorted(os.getgroups())],
    "uid_map": open("/proc/self/uid_map").read().split(),
    "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
    "seccomp": status["Seccomp"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "mounts": mounts, "interfaces": sorted(os.listdir("/sys/class/net")),
    "env": sorted(k for k in os.environ if k not in ("HOSTNAME",)), "cwd": os.getcwd(),
    "writable": {p: writable(p) for p in ("/kratix/output/x", "/kratix/input/x", "/etc/x", "/tmp/x")},
    "pids_max": open("/sys/fs/cgroup/pids/pids.max").read().strip(),
    "memory": open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().strip(),
}
open("/kratix/output/report.json", "w").write(json.dumps(report))
"""


def runtimes(tmp_path: Path, network: str) -> dict[str, ContainerRuntime]:
    isolation = Isolation(network=network, host_uid=100000)
    state = Settings(home=tmp_path / "home").oci_state_dir
    return {
        "podman": ContainerRuntime("podman", [], isolation),
        "oci": OciRuntime("podman", "runc", state, isolation, DEFAULT_SECCOMP),
    }


async def probe_both(tmp_path: Path, network: str, **fields: Any) -> dict[str, dict[str, Any]]:
    reports = {}
    for name, runtime in runtimes(tmp_path, network).items():
        runner = PodmanRunner(runtime, tmp_path / name / "logs")
        container = Container(name="probe", image=BEHAVE, command=["python3", "-c", PROBE], **fields)
        root = workspace(tmp_path / name)
        outcome = await runner.run(run_input(f"parity-{secrets.token_hex(3)}", container), root)
        assert outcome.succeeded, (name, outcome.message, outcome.containers[-1].log_tail)
        reports[name] = json.loads((root / "output" / "report.json").read_text())
    return reports


@pytest.mark.parametrize(
    "network, fields",
    [
        ("none", {}),
        ("default", {}),
        (
            "none",
            {
                "security_context": {
                    "runAsUser": 1000,
                    "runAsGroup": 1000,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["NET_BIND_SERVICE"]},
                },
                "working_dir": "/tmp",
                "resources": {"limits": {"memory": "64Mi"}},
            },
        ),
    ],
)
async def test_a_container_sees_the_same_under_both_runners(
    tmp_path: Path, network: str, fields: dict[str, Any], pipeline_images
) -> None:
    reports = await probe_both(tmp_path, network, **fields)
    podman, oci = reports["podman"], reports["oci"]
    # Podman's own files (/run/.containerenv; /etc/passwd and /etc/group when it adds the user) are its bookkeeping.
    for report in (podman, oci):
        for own in ("/run/.containerenv", "/etc/passwd", "/etc/group"):
            report["mounts"].pop(own, None)
        if network == "default":
            report["interfaces"] = [i for i in report["interfaces"] if i != "lo"] and ["network"]
    assert oci == podman


async def test_exit_codes_and_the_memory_limit_are_reported_alike(tmp_path: Path, pipeline_images) -> None:
    hog = "b = []\nwhile True: b.append(bytearray(16 * 1024 * 1024))"
    for name, runtime in runtimes(tmp_path, "none").items():
        runner = PodmanRunner(runtime, tmp_path / name / "logs")
        failing = Container(name="c", image=BEHAVE, command=["sh", "-c", "echo said; exit 3"])
        outcome = await runner.run(run_input(f"exit-{secrets.token_hex(3)}", failing), workspace(tmp_path / name / "a"))
        assert outcome.message == f"container 'c' ({BEHAVE}) exited with code 3", (name, outcome.message)
        assert outcome.containers[-1].log_tail == "said\n"
        oom = Container(
            name="c", image=BEHAVE, command=["python3", "-c", hog], resources={"limits": {"memory": "32Mi"}}
        )
        outcome = await runner.run(run_input(f"oom-{secrets.token_hex(3)}", oom), workspace(tmp_path / name / "b"))
        assert outcome.containers[-1].exit_code == 137, (name, outcome.message)
        assert "OOMKilled" in outcome.message
