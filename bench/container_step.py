"""The container step, pair by pair: `.venv/bin/python bench/container_step.py [--runs 7] [--image IMAGE]`.

One container of the same image and command (`true`, no network, the podman runner's isolation and Kratix's
three mounts), started four ways in each round, in a rotating order so that none always runs on a warmer machine:

- `runc`: the floor, `runc run` of a prepared bundle: the OCI runner's own config.json over an already mounted
  root, so the runtime does exactly the work it does for the OCI runner, and nothing of ktx's runs;
- `podman_run`: the podman runner's step (`podman run --rm` with its options);
- `podman_service`: a long-lived `podman system service`, through its libpod REST API on a unix socket (create,
  start, wait, remove), the alternative the issue names;
- `oci`: the OCI runner's step (activities/pipelines/oci_runtime.py: image lookup, root mounted, config written,
  `runc run`, root unmounted).

Wall time and CPU per step: CPU is the bench's cgroup's (cpuacct.usage: this process and everything it starts,
daemons such as conmon and the podman service included; the container's own process runs in its own cgroup and is
the same `true` everywhere). Needs root (rootful podman, runc, cgroup v1's cpuacct). Prints one JSON object with the
medians, their ratios to the floor, and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.pipelines.oci_root import mount_root, unmount_root  # noqa: E402
from activities.pipelines.oci_runtime import DEFAULT_SECCOMP, OciRuntime  # noqa: E402
from activities.pipelines.pod_inputs import ContainerEnv  # noqa: E402
from activities.pipelines.podman_runner import ContainerRuntime, ContainerStart, Isolation  # noqa: E402
from domain.documents import Container  # noqa: E402
from tests.kratix_documents import BEHAVE  # noqa: E402

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CPUACCT = Path("/sys/fs/cgroup/cpuacct")
HOST_UID = 100000
PIDS_LIMIT = 1024


def cgroup_cpu() -> Path:
    """A cpuacct group of the bench's own, this process moved into it (its children follow)."""
    group = CPUACCT / f"ktx-bench-{os.getpid()}"
    group.mkdir(exist_ok=True)
    (group / "cgroup.procs").write_text(str(os.getpid()))
    return group


def cpu_s(group: Path) -> float:
    return int((group / "cpuacct.usage").read_text()) / 1e9


def workspace(root: Path) -> Path:
    for directory in ("input", "output", "metadata"):
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory).chmod(0o777)
    (root / "input" / "object.yaml").write_text("metadata: {name: bench}\n")
    return root


def start_for(name: str, image: str, root: Path) -> ContainerStart:
    return ContainerStart(
        name=name,
        container=Container(name="step", image=image, command=["true"]),
        mounts={
            root / "input": ("/kratix/input", True),
            root / "output": ("/kratix/output", False),
            root / "metadata": ("/kratix/metadata", False),
        },
        env=ContainerEnv(plain={"KRATIX_WORKFLOW_TYPE": "resource"}, secret={}),
        volumes=[],
        resources={},
        pids_limit=PIDS_LIMIT,
        workspace=root,
    )


class Service:
    """`podman system service` on a private socket, and one container step through its libpod API."""

    def __init__(self, directory: Path):
        self.socket = directory / "podman.sock"
        self.proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)), base_url="http://podman/v4.0.0/libpod"
        )

    async def ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # a bench, not a test: the service's socket appears when it is up
            try:
                if (await self.client.get("/_ping")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        raise SystemExit("podman system service did not come up in 30 s")

    async def step(self, start: ContainerStart) -> int:
        mapping = [{"container_id": 0, "host_id": HOST_UID, "size": 65536}]
        spec = {
            "name": start.name,
            "image": start.container.image,
            "entrypoint": start.container.command,
            "netns": {"nsmode": "none"},
            "idmappings": {"UIDMap": mapping, "GIDMap": mapping},
            "no_new_privileges": True,
            "resource_limits": {"pids": {"limit": start.pids_limit}},
            "env": start.env.plain,
            "mounts": [
                {"destination": target, "source": str(host), "type": "bind", "options": ["ro"] if ro else []}
                for host, (target, ro) in start.mounts.items()
            ],
        }
        created = await self.client.post("/containers/create", json=spec)
        created.raise_for_status()
        ident = created.json()["Id"]
        (await self.client.post(f"/containers/{ident}/start")).raise_for_status()
        waited = await self.client.post(f"/containers/{ident}/wait", timeout=60)
        code = int(waited.text)
        if code != 0:
            logs = await self.client.get(f"/containers/{ident}/logs", params={"stdout": "true", "stderr": "true"})
            print("podman service:", code, logs.content[-500:], file=sys.stderr)
        (await self.client.delete(f"/containers/{ident}", params={"force": "true"})).raise_for_status()
        return code

    async def close(self) -> None:
        await self.client.aclose()
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def runc_floor(oci: OciRuntime, image: str, work: Path, root: Path) -> Path:
    """A bundle prepared once: the OCI runner's root mounted and its config written; each run a new container."""
    found = await oci.images.find(image)
    assert found is not None, f"{image} is not in podman's store: scripts/build-images.sh"
    bundle = work / "floor-bundle"
    bundle.mkdir()
    oci.prepare_state()
    mount_root(found.layers, bundle, root, HOST_UID, oci.maps)
    config = oci.config_for(start_for("floor", image, workspace(work / "floor")), found, root, bundle, False)
    assert not isinstance(config, str), config
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--image", default=BEHAVE)
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: rootful podman and runc")
    group = cgroup_cpu()
    work = Path(tempfile.mkdtemp(prefix="ktx-container-step-"))
    isolation = Isolation(network="none", host_uid=HOST_UID)
    podman = ContainerRuntime("podman", [], isolation)
    oci = OciRuntime("podman", RUNC, Path("/run/ktx-oci") / f"bench-{os.getpid()}", isolation, DEFAULT_SECCOMP)
    service = Service(work)
    load_before = os.getloadavg()
    floor_root = oci.state_root / "roots" / "floor"
    try:
        await service.ready()
        bundle = await runc_floor(oci, options.image, work, floor_root)
        counter = iter(range(1_000_000))

        async def floor() -> int:
            proc = await asyncio.create_subprocess_exec(
                RUNC, f"--root={oci.state_root}", "run", f"--bundle={bundle}", f"ktx-floor-{next(counter)}",
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            return await proc.wait()

        async def via(runtime: ContainerRuntime, tag: str) -> int:
            root = workspace(work / f"{tag}-{next(counter)}")
            start = start_for(f"ktx-bench-{tag}-{next(counter)}", options.image, root)
            return await runtime.run_container(start, work / "logs" / f"{start.name}.log")

        async def through_service() -> int:
            root = workspace(work / f"service-{next(counter)}")
            return await service.step(start_for(f"ktx-bench-service-{next(counter)}", options.image, root))

        steps = {
            "runc": floor,
            "podman_run": lambda: via(podman, "podman"),
            "podman_service": through_service,
            "oci": lambda: via(oci, "oci"),
        }
        for name, step in steps.items():  # warm: image lookups, the service's first container, page cache
            assert await step() == 0, f"{name} failed"
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
        names = list(steps)
        for round_ in range(options.runs):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                wall, cpu = time.perf_counter(), cpu_s(group)
                code = await steps[name]()
                samples[name].append((time.perf_counter() - wall, cpu_s(group) - cpu))
                assert code == 0, f"{name} exited {code}"
    finally:
        unmount_root(floor_root)
        shutil.rmtree(oci.state_root, ignore_errors=True)
        await service.close()
        (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()
    result: dict[str, Any] = {"runs": options.runs, "image": options.image, "load_before": load_before}
    floor_wall = statistics.median(w for w, _ in samples["runc"])
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        ratios = [w / f for (w, _), (f, _) in zip(values, samples["runc"])]  # pair by pair: same round
        result[name] = {
            "wall_s": round(wall, 4),
            "cpu_s": round(statistics.median(c for _, c in values), 4),
            "ratio_to_runc": round(statistics.median(ratios), 2),
            "ratio_of_medians": round(wall / floor_wall, 2),
        }
    result["load_after"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
