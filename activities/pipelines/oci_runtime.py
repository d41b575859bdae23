"""The OCI runner's runtime: each pipeline container started by runc directly, from a config.json ktx writes
(domain/oci_spec.py), over a fresh copy-on-write root on the image's layers in podman's store
(activities/pipelines/oci_root.py). Podman is still what pulls and stores images; it no longer sits between the
worker and the runtime for every container, which is most of a short container's cost (bench/container_step.py).

What a container gets is what the podman runner gives it: the same user-namespace mapping, capabilities, seccomp
profile, masked paths, mounts, limits, environment, log capture and exit codes. Its network is its own namespace
with a loopback only, whatever KTX_PIPELINE_NETWORK says (ktx does not set up podman's bridge), where the platform
API's endpoint is opened as on podman: a createRuntime hook holds the container between the creation of its
namespaces and the start of its process while the worker opens it (activities/pipelines/container_endpoint.py).

Secret values go into the config.json in the run's workspace (0600, as podman's env file), removed when the
container ends; never onto a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import platform
import shutil
import stat
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.pipelines.container_endpoint import Forwarder, listen_in
from activities.pipelines.container_logs import BoundedLog
from activities.pipelines.oci_images import Image, ImageIndex
from activities.pipelines.oci_root import IdMaps, mount_root, unmount_root
from activities.pipelines.podman_runner import ContainerRuntime, ContainerStart, Isolation
from domain.oci_spec import (
    Bind,
    ContainerSpec,
    Hook,
    account_files,
    capabilities,
    container_config,
    hostname_of,
    hosts_file,
    oci_resources,
    process_args,
    process_env,
    resolve_user,
    seccomp_profile,
)

DEFAULT_SECCOMP = Path("/usr/share/containers/seccomp.json")
# The longest the runtime holds a container for the worker to open its endpoint: a live worker takes milliseconds.
HOOK_TIMEOUT_S = 30
# The container's default network (user_mode_network), and how long its setup may take.
SLIRP4NETNS = shutil.which("slirp4netns") or "/usr/bin/slirp4netns"
NETWORK_READY_S = 10.0
SLIRP_DNS = "10.0.2.3"  # slirp4netns's resolver, forwarding to the host's
# podman's exit code when the container cannot be configured (its own error, not the container's).
EXIT_CONFIG_ERROR = 125
# An image's /etc/passwd and /etc/group, read to resolve its USER: a real one is kilobytes.
_ACCOUNTS_MAX = 1024 * 1024
# The hook: write the state runc gives (its pid is the container's), open the reply pipe, say it is ready, and let
# the container start only when the worker writes a line; EOF (the worker gave up) fails the start.
_HOOK_SCRIPT = 'cat > "$1" && exec 3<"$3" && echo > "$2" && read -r _ <&3'


def _read_account_file(root: Path, name: str) -> str:
    """The image's /etc/<name> ("" when it has none), opened a component at a time without following a link: the
    image's files are read by the worker, as root, and a link in them must not lead it to the host's."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds: list[int] = []
    try:
        fds.append(os.open(root, flags | os.O_DIRECTORY))
        fds.append(os.open("etc", flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(name, flags | os.O_NONBLOCK, dir_fd=fds[-1]))
        if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
            return ""  # a FIFO or device would block or never end
        with os.fdopen(fds.pop(), "rb") as handle:
            return handle.read(_ACCOUNTS_MAX).decode(errors="replace")
    except OSError:
        return ""
    finally:
        for fd in fds:
            os.close(fd)


@functools.lru_cache(maxsize=64)
def _resolved_seccomp(profile_json: str, caps: tuple[str, ...]) -> dict[str, Any]:
    release = platform.release().split(".")
    kernel = (int(release[0]), int("".join(c for c in release[1] if c.isdigit()) or 0))
    return seccomp_profile(json.loads(profile_json), platform.machine(), list(caps), kernel)


class OciRuntime(ContainerRuntime):
    name = "oci"

    def __init__(self, podman: str, runc: str, state_root: Path, isolation: Isolation, seccomp: Path):
        super().__init__(podman, [], isolation)
        self.runc = runc
        self.state_root = state_root
        self.images = ImageIndex(podman)
        self.maps = IdMaps()
        self.seccomp = json.dumps(json.loads(seccomp.read_text()))

    def prepare_state(self) -> None:
        """The state root and its roots/: passable (never listable) by the container's mapped root, which mounts its
        root from there (runc keeps its own state in 0700 directories below)."""
        for directory in (self.state_root, self.state_root / "roots"):
            directory.mkdir(mode=0o711, parents=True, exist_ok=True)
            directory.chmod(0o711)

    def _runc(self, *args: str) -> list[str]:
        return [self.runc, f"--root={self.state_root}", *args]

    async def ensure_image(self, image: str, policy: str, authfile: Path | None) -> str | None:
        try:
            if policy != "Always" and await self.images.find(image) is not None:
                return None
            pulled = await super().ensure_image(image, policy, authfile)
            if pulled is None:
                await self.images.find(image)  # what the runner needs of it, checked before the run counts on it
            return pulled
        except ValueError as exc:
            return f'image "{image}" cannot be run by the oci runner: {exc}'[:1000]

    async def image_user(self, image: str) -> str:
        found = await self.images.find(image)
        if found is None:
            raise ApplicationError(f"image {image} could not be inspected")
        return found.config.user

    async def remove(self, name: str) -> None:
        if not (self.state_root / name).exists():
            return  # runc keeps a directory per container: none, nothing to remove (and no runc process to start)
        proc = await asyncio.create_subprocess_exec(
            *self._runc("delete", "--force", name),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    async def run_container(self, start: ContainerStart, log_file: Path, reach: tuple[str, int] | None = None) -> int:
        container = start.container
        image = await self.images.find(container.image)
        if image is None:
            raise ApplicationError(f"image {container.image} left podman's store before its container started")
        bundle = start.workspace / f"oci-{container.name}"
        bundle.mkdir(mode=0o700)
        root = self.state_root / "roots" / start.name
        config = bundle / "config.json"
        await self.remove(start.name)  # a previous attempt of this activity may have left it behind
        log = BoundedLog(log_file)
        host_uid = self.isolation.host_uid
        try:
            try:
                self.prepare_state()
                unmount_root(root)  # a previous attempt's, left by a worker that died
                await asyncio.to_thread(mount_root, image.layers, bundle, root, host_uid, self.maps)
            except OSError as exc:
                raise ApplicationError(f"container {container.name}: its root could not be mounted: {exc}") from None
            held = reach is not None or self.isolation.network == "default"
            prepared = self.config_for(start, image, root, bundle, with_hook=held)
            if isinstance(prepared, str):
                log.write(f"Error: {prepared}\n".encode())
                return EXIT_CONFIG_ERROR
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(prepared, handle, ensure_ascii=True)
            command = self._runc("run", f"--bundle={bundle}", "--", start.name)
            if not held:
                return await self._logged(command, start.name, log)
            return await self._held(command, start.name, log, bundle, reach)
        except asyncio.CancelledError:
            await self.remove(start.name)
            raise
        finally:
            log.close()
            # Secret values were in the config: gone with the container, as the podman runner's env file.
            config.unlink(missing_ok=True)
            unmount_root(root)
            shutil.rmtree(bundle, ignore_errors=True)

    def config_for(
        self, start: ContainerStart, image: Image, root: Path, bundle: Path, with_hook: bool
    ) -> dict[str, Any] | str:
        """The OCI config of `start` over its mounted `root` (the files it binds made in `bundle`), or why the
        container cannot be configured."""
        container = start.container
        context = container.security_context or {}
        passwd, group = _read_account_file(root, "passwd"), _read_account_file(root, "group")
        user = resolve_user(image.config.user, context.get("runAsUser"), context.get("runAsGroup"), passwd, group)
        args = process_args(container.command, container.args, image.config)
        if isinstance(user, str):
            return user
        if not args:
            return "no command or entrypoint provided"
        hostname = hostname_of(start.name)
        files = bundle / "files"
        files.mkdir()
        (files / "hostname").write_text(hostname + "\n")
        (files / "hosts").write_text(hosts_file(hostname))
        read_only = bool(context.get("readOnlyRootFilesystem"))
        # As podman: the name files writable unless the root is not; a resolver only with a network (slirp4netns's).
        own = ["hostname", "hosts"]
        if self.isolation.network == "default":
            (files / "resolv.conf").write_text(f"nameserver {SLIRP_DNS}\n")
            own.append("resolv.conf")
        if self.isolation.host_uid and not read_only:
            for name in own:
                os.chown(files / name, self.isolation.host_uid, self.isolation.host_uid)  # the container's root's
        binds = [Bind(str(files / f), f"/etc/{f}", read_only) for f in own]
        for name, text in zip(("passwd", "group"), account_files(passwd, group, user)):
            if text is not None:
                (files / name).write_text(text)
                binds.append(Bind(str(files / name), f"/etc/{name}", True))
        binds += [Bind(str(host), target, ro) for host, (target, ro) in start.mounts.items()]
        binds += [Bind(str(host), target, ro) for host, target, ro in start.volumes]
        drop = ((context.get("capabilities") or {}).get("drop")) or []
        drop = [c for c in drop if isinstance(c, str) and c.replace("_", "").isalnum()]
        held = capabilities(drop, True)["bounding"]
        env = dict(start.env.plain)
        env.update({k: v.decode(errors="surrogateescape") for k, v in start.env.secret.items()})
        ready, go = bundle / "ready", bundle / "go"
        hook = None
        if with_hook:
            os.mkfifo(ready, 0o600)
            os.mkfifo(go, 0o600)
            hook = Hook(
                path="/bin/sh",
                args=["sh", "-c", _HOOK_SCRIPT, "sh", str(bundle / "state.json"), str(ready), str(go)],
                timeout_s=HOOK_TIMEOUT_S,
            )
        spec = ContainerSpec(
            root=str(root),
            args=args,
            env=process_env(image.config, hostname, env),
            cwd=container.working_dir or image.config.working_dir or "/",
            user=user,
            hostname=hostname,
            binds=binds,
            host_uid=self.isolation.host_uid,
            read_only_root=read_only,
            capabilities_drop=drop,
            resources=oci_resources(start.resources, start.pids_limit),
            cgroups_path=f"/ktx/{start.name}",
            seccomp=_resolved_seccomp(self.seccomp, tuple(held)),
            create_runtime_hook=hook,
        )
        return container_config(spec)

    async def _held(
        self, command: list[str], name: str, log: BoundedLog, bundle: Path, reach: tuple[str, int] | None
    ) -> int:
        """Runs `command`, holding the container once runc made its namespaces (the hook reports its process id) and
        before its process starts, to give it its network (the default network) and the platform API's endpoint
        (`reach`)."""
        loop = asyncio.get_running_loop()
        # Read and write ends kept by the worker: neither open blocks, whenever the hook opens its own.
        ready_fd = os.open(bundle / "ready", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        go_fd = os.open(bundle / "go", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        signalled: asyncio.Future[None] = loop.create_future()
        loop.add_reader(ready_fd, lambda: signalled.done() or signalled.set_result(None))
        running = asyncio.ensure_future(self._logged(command, name, log))
        network: asyncio.subprocess.Process | None = None
        try:
            await asyncio.wait([running, signalled], return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                return running.result()  # runc failed before the container's namespaces were made
            state = json.loads((bundle / "state.json").read_text())
            pid = state.get("pid")
            if not isinstance(pid, int) or pid <= 0:
                raise ApplicationError(f"runc gave no process for container {name} ({pid!r})")
            if self.isolation.network == "default":
                network = await user_mode_network(pid)
            async with contextlib.AsyncExitStack() as stack:
                if reach is not None:
                    await stack.enter_async_context(Forwarder(listen_in(pid), reach))
                os.write(go_fd, b"\n")
                return await running
        except BaseException:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            raise
        finally:
            loop.remove_reader(ready_fd)
            os.close(ready_fd)
            os.close(go_fd)  # without a line, the hook reads EOF and the container never starts
            if network is not None and network.returncode is None:
                network.kill()
                await network.wait()


async def user_mode_network(pid: int) -> asyncio.subprocess.Process:
    """The default network of process `pid`'s network namespace: slirp4netns, as rootless podman gives it (an
    interface with outbound NAT; the host's loopback not reachable through it), running until killed. Returns once
    the interface is configured. Raises ApplicationError."""
    read, write = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            SLIRP4NETNS,
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            f"--ready-fd={write}",
            str(pid),
            "tap0",
            pass_fds=(write,),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        os.close(write)
        write = -1
        try:
            ready = await asyncio.wait_for(asyncio.to_thread(os.read, read, 1), NETWORK_READY_S)
        except TimeoutError:
            ready = b""
        if ready != b"1":
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise ApplicationError(f"slirp4netns gave the container (pid {pid}) no network")
        return proc
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
