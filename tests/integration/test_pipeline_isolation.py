"""What a pipeline container sees of the worker's host, probed from inside real containers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import read_remote
from tests.integration.test_destinations import git_store, install
from tests.kratix_documents import BEHAVE, condition, eventually, get, pipeline, pipeline_entry, promise, resource

# Run inside the container: who it is on the host, which interfaces it has, what is mounted into it.
PROBE = """
import os, yaml
uid_map = open("/proc/self/uid_map").read().split()
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
report = {"uid": int(status["Uid"].split()[0]), "host_uid_of_root": int(uid_map[1]) if uid_map[0] == "0" else None,
          "interfaces": sorted(os.listdir("/sys/class/net")),
          "mounts": sorted(m for m in mounts if not m.startswith(("/proc", "/sys", "/dev")) and m != "/")}
open("/kratix/output/probe.yaml", "w").write(yaml.safe_dump({"kind": "ConfigMap", "metadata": {"name": "probe"},
                                                             "data": {"report": yaml.safe_dump(report)}}))
"""
# What podman itself bind-mounts into every container; everything else must be Kratix's three directories.
RUNTIME_FILES = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/run/.containerenv"}


def probe(name: str, security_context: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "probe", "image": BEHAVE, "command": ["python3", "-c", PROBE]}
    if security_context:
        container["securityContext"] = security_context
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }


async def probed(platform, git_remote: Path, pipeline: dict[str, Any]) -> dict[str, Any]:
    await install(platform, git_remote, "probe", "Probe", pipeline)
    await platform.apply(resource("Probe", "one"))
    await eventually(
        lambda: get(platform, "probe", "one"), lambda o: condition(o, "WorksSucceeded").get("status") == "True"
    )
    written = yaml.safe_load(
        read_remote(git_remote, f"dev/resources/default/probe/one/{pipeline['metadata']['name']}/5058f/probe.yaml")
    )
    return yaml.safe_load(written["data"]["report"])


async def test_without_network_a_container_has_only_loopback_and_its_root_is_not_the_hosts(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform = await platform_factory(settings={"pipeline_network": "none"})
    report = await probed(platform, git_remote, probe("isolated"))
    assert report["interfaces"] == ["lo"]
    assert report["uid"] == 0 and report["host_uid_of_root"] == 100000
    assert set(report["mounts"]) - RUNTIME_FILES == {"/kratix/input", "/kratix/output", "/kratix/metadata"}


async def test_a_security_context_user_is_honoured_and_the_network_is_there_by_default(
    platform, git_remote: Path, pipeline_images
) -> None:
    report = await probed(platform, git_remote, probe("as-user", {"runAsUser": 1000, "runAsGroup": 1000}))
    assert report["uid"] == 1000
    assert report["interfaces"] != ["lo"]


async def test_run_as_non_root_refuses_an_image_that_runs_as_root_and_says_so(
    platform, git_remote: Path, pipeline_images
) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(promise("strict", "Strict", configure=[probe("strict", {"runAsNonRoot": True})]))
    await platform.wait_condition("promise", "strict", "default", "Available", timeout=60)
    await platform.apply(resource("Strict", "one"))
    failed = await eventually(
        lambda: get(platform, "strict", "one"),
        lambda o: condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed",
        what="the pipeline failed",
    )
    assert pipeline_entry(failed, "strict")["phase"] == "Failed"
    assert "'probe'" in pipeline_entry(failed, "strict")["message"]
    assert "runAsNonRoot and the image will run as root" in pipeline_entry(failed, "strict")["message"]


async def test_a_link_inside_the_output_is_delivered_as_its_file_and_one_out_of_it_fails_the_run(
    platform, git_remote: Path, pipeline_images
) -> None:
    inside = pipeline(
        "inside",
        FILES={"app.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}},
        LINKS={"output/relative.yaml": "app.yaml", "output/nested/absolute.yaml": "/kratix/output/app.yaml"},
    )
    await install(platform, git_remote, "linked", "Linked", inside)
    await platform.apply(resource("Linked", "one"))
    await platform.wait_condition("linked", "one", "default", "Reconciled", timeout=120)
    base = "dev/resources/default/linked/one/inside/5058f"
    original = read_remote(git_remote, f"{base}/app.yaml")
    assert yaml.safe_load(original) == {"kind": "ConfigMap", "metadata": {"name": "one"}}
    assert read_remote(git_remote, f"{base}/relative.yaml") == original
    assert read_remote(git_remote, f"{base}/nested/absolute.yaml") == original

    # On the worker's host /etc/passwd is the host's: the run fails and names the link instead of reading it.
    outside = pipeline("outside", FILES={"app.yaml": {"kind": "ConfigMap"}}, LINKS={"output/passwd": "/etc/passwd"})
    await install(platform, git_remote, "leaky", "Leaky", outside)
    await platform.apply(resource("Leaky", "one"))
    failed = await eventually(
        lambda: get(platform, "leaky", "one"),
        lambda o: condition(o, "ConfigureWorkflowCompleted").get("reason") == "ConfigureWorkflowFailed",
        what="the pipeline failed",
    )
    message = pipeline_entry(failed, "outside")["message"]
    assert "/kratix/output/passwd is a symbolic link that leads out of /kratix/output" in message
    assert "root:" not in str(failed)
