"""The local pipeline runner: each container of a pipeline in turn with a docker-compatible CLI (podman by default),
sharing host directories mounted at Kratix's paths, heartbeating while each runs."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.pipelines.container_endpoint import Forwarder, listen_in
from activities.pipelines.container_logs import BoundedLog, read_tail
from activities.pipelines.downward_api import PodFacts, Unavailable, pod_facts
from activities.pipelines.oci_images import inspect_image
from activities.pipelines.models import ContainerRun, ContainersOutcome, RunPipelineInput
from activities.pipelines.platform_access import SERVICE_ACCOUNT_MOUNT, PlatformAccess
from activities.pipelines.pod_inputs import (
    ConfigError,
    ContainerEnv,
    SecretProvider,
    capability_args,
    ignored_fields,
    mounts_for,
    prepare_volumes,
    resolve_env,
    resource_args,
    write_auth_file,
    write_env_file,
)
from domain.config import PlatformConfig
from domain.documents import Container
from domain.pipeline_rules import check_container, timed_out
from domain.pod_fields import effective_resources, pull_policy
from temporalio.exceptions import ApplicationError

_HEARTBEAT_EVERY = 5.0
_UNSAFE_NAME = re.compile(r"[^a-zA-Z0-9_.-]")
# One plain path component: no separator, and never '.' or '..' (it cannot start with a dot).
_PATH_PART = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*")


def container_name(run_id: str, container: str) -> str:
    return _UNSAFE_NAME.sub("-", f"ktx-{run_id}-{container}")[:250]


def log_path(logs_dir: Path, run_id: str, container: str) -> Path:
    """`<logs_dir>/<run_id>/<container>.log`. The names were checked at apply, and are checked again here: the worker
    writes as root, and a container named `../../etc/x` would otherwise put its log anywhere on the host."""
    for part in (run_id, container):
        if not _PATH_PART.fullmatch(part):
            raise ValueError(f"refusing log path component {part!r}: not a plain file name")
    path = logs_dir / run_id / f"{container}.log"
    root = logs_dir.resolve()
    if root not in path.resolve().parents:
        raise ValueError(f"refusing log path {path}: outside {root}")
    return path


@dataclass(frozen=True)
class Isolation:
    """What every pipeline container gets from the platform, whatever its Pipeline says."""

    network: str = "default"
    host_uid: int = 0  # container uid 0 as seen from the host; 0 = no mapping


def isolation_args(isolation: Isolation, security_context: dict[str, Any] | None) -> list[str]:
    """Flags for the platform's isolation and the container's securityContext (the fields a local runtime can honour).

    No host path is mounted besides Kratix's three directories; setuid binaries cannot raise privileges."""
    args = ["--security-opt=no-new-privileges"]
    if isolation.network == "none":
        args.append("--network=none")
    if isolation.host_uid:
        args += [f"--uidmap=0:{isolation.host_uid}:65536", f"--gidmap=0:{isolation.host_uid}:65536"]
    context = security_context or {}
    user, group = context.get("runAsUser"), context.get("runAsGroup")
    if user is not None:
        args.append(f"--user={user}" + (f":{group}" if group is not None else ""))
    elif group is not None:
        args.append(f"--group-add={group}")
    if context.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    return args


def checks_image_user(security_context: dict[str, Any] | None) -> bool:
    """Kubelet's rule: runAsNonRoot without runAsUser leaves it to the image's USER to be non-root."""
    context = security_context or {}
    return bool(context.get("runAsNonRoot")) and context.get("runAsUser") is None


def is_root_user(image_user: str) -> bool:
    """An image USER of root: unset, uid 0 or the name root (a group after `:` does not matter)."""
    return image_user.split(":", 1)[0] in ("", "0", "root")


@dataclass(frozen=True)
class ContainerStart:
    """One container of a run, resolved: what a runtime starts it from."""

    name: str
    container: Container
    mounts: dict[Path, tuple[str, bool]]  # Kratix's directories: host -> (path, read-only)
    env: ContainerEnv
    volumes: list[tuple[Path, str, bool]]  # its volumeMounts: (host, path, read-only)
    resources: dict[str, Any]  # its effective resources
    pids_limit: int
    workspace: Path  # the run's private directory, removed with it


class ContainerRuntime:
    """A docker-compatible CLI (podman): one `run` per container."""

    name = "podman"

    def __init__(self, command: str, extra_flags: list[str], isolation: Isolation = Isolation()):
        self.command = command
        self.extra_flags = extra_flags
        self.isolation = isolation

    async def run_container(self, start: ContainerStart, log_file: Path, reach: tuple[str, int] | None = None) -> int:
        """Runs one container to its end (see `run`) and returns its exit code."""
        env_file = start.workspace / f"{start.container.name}.env"
        extra = [
            "--pull=never",
            *resource_args(start.resources, start.pids_limit),
            *capability_args(start.container.security_context),
        ]
        if start.env.secret:
            extra.append(f"--env-file={write_env_file(env_file, start.env.secret)}")
        args = self.run_args(start.name, start.container, start.mounts, start.env.plain, start.volumes, extra)
        try:
            return await self.run(args, start.name, log_file, reach=reach)
        finally:
            # The Secret values it was given are read by now; nothing of them outlives the container.
            env_file.unlink(missing_ok=True)

    def run_args(
        self,
        name: str,
        container: Container,
        mounts: dict[Path, tuple[str, bool]],
        env: dict[str, str],
        volumes: list[tuple[Path, str, bool]] = [],
        extra: list[str] = [],
    ) -> list[str]:
        """Kubernetes semantics: `command` replaces the image ENTRYPOINT, `args` replace its CMD. `volumes` are the
        container's volumeMounts (host, path, read-only); `extra` the options for its resources, image and env file,
        each `--option=value`."""
        # Every option carries its value after '=', so no value can be read as an option of its own, and `--` ends
        # the options: the image and its arguments are never options, whatever they hold.
        args = [
            self.command,
            "run",
            "--rm",
            f"--name={name}",
            *isolation_args(self.isolation, container.security_context),
            *self.extra_flags,
            *extra,
        ]
        for host, target, read_only in [(h, t, r) for h, (t, r) in mounts.items()] + list(volumes):
            args.append(f"--volume={host}:{target}{':ro' if read_only else ''}")
        for key, value in env.items():
            args.append(f"--env={key}={value}")
        if container.command:
            args.append(f"--entrypoint={json.dumps(container.command)}")
        if container.working_dir:
            args.append(f"--workdir={container.working_dir}")
        return [*args, "--", container.image, *(container.args or [])]

    async def image_user(self, image: str) -> str:
        """The image's USER (the image is here: ensure_image came first)."""
        out = await inspect_image(self.command, image, "{{.Config.User}}")
        if out is None:
            raise ApplicationError(f"image {image} could not be inspected")
        return out.decode().strip()

    async def ensure_image(self, image: str, policy: str, authfile: Path | None) -> str | None:
        """The image present as `policy` says (Always: pulled; IfNotPresent: pulled if missing; Never: must be here),
        or kubelet's reason it cannot be. The container then runs with `--pull=never`: the one pull is this one."""
        exists = await asyncio.create_subprocess_exec(
            self.command,
            "image",
            "exists",
            "--",
            image,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        present = await exists.wait() == 0
        if policy == "Never" or (present and policy == "IfNotPresent"):
            return (
                None
                if present
                else f'ErrImageNeverPull: Container image "{image}" is not present with pull policy of Never'
            )
        pull = await asyncio.create_subprocess_exec(
            self.command,
            "pull",
            "--quiet",
            *([f"--authfile={authfile}"] if authfile else []),
            "--",
            image,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await pull.communicate()
        if pull.returncode == 0:
            return None
        # podman's last line says why (no such image, unauthorized, no network); bounded, as status shows it.
        reason = (err.decode(errors="replace").strip().splitlines() or ["podman pull failed"])[-1][-1000:]
        return f'ErrImagePull: failed to pull image "{image}" (imagePullPolicy {policy}): {reason}'

    async def remove(self, name: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            # --time=0: a container being removed is discarded (cancelled, past its deadline or left by an earlier
            # attempt); waiting the default 10 s for a PID 1 that ignores SIGTERM would only hold the slot longer.
            self.command,
            "rm",
            "-f",
            "--time=0",
            "--ignore",
            "--",
            name,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    async def run(self, args: list[str], name: str, log_file: Path, reach: tuple[str, int] | None = None) -> int:
        """Run to completion and return the exit code; on cancellation the container is killed, not orphaned.

        With `reach`, the container gets the platform API's endpoint (activities/pipelines/container_endpoint.py)
        forwarded to that address: created and initialised first (its network namespace exists, its process has not
        started), the endpoint opened in it, then started."""
        await self.remove(name)  # a previous attempt of this activity may have left it behind
        # The worker reads the output itself, so that only its end is kept however much a container prints.
        log = BoundedLog(log_file)
        try:
            if reach is None:
                return await self._logged(args, name, log)
            # What create prints is the container's id: only its errors belong in the log.
            created = await self._logged([args[0], "create", *args[2:]], name, log, output=False)
            if created != 0:
                return created
            try:
                listener = listen_in(await self._init(name))
            except (ApplicationError, OSError):
                await self.remove(name)  # created, never started: --rm would never remove it
                raise
            async with Forwarder(listener, reach):
                return await self._logged([self.command, "start", "--attach", "--", name], name, log)
        except asyncio.CancelledError:
            await self.remove(name)
            raise
        finally:
            log.close()

    async def _init(self, name: str) -> int:
        """Initialises a created container and returns its (not yet started) process id."""
        for step in (["init", "--", name], ["inspect", "--format={{.State.Pid}}", "--", name]):
            proc = await asyncio.create_subprocess_exec(
                self.command, *step, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await proc.communicate()
            if proc.returncode != 0:
                raise ApplicationError(f"{self.command} {step[0]} {name} failed: {err.decode(errors='replace')[:500]}")
        pid = out.decode().strip()
        if not pid.isdigit() or int(pid) <= 0:
            raise ApplicationError(f"{self.command} gave no process for container {name} ({pid!r})")
        return int(pid)

    async def _logged(self, args: list[str], name: str, log: BoundedLog, output: bool = True) -> int:
        """Runs `args` to the end, their output (`output`) and errors into `log`, heartbeating meanwhile."""
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.STDOUT if output else asyncio.subprocess.PIPE,
        )
        pump = asyncio.ensure_future(_pump(proc.stdout if output else proc.stderr, log))
        try:
            while True:
                try:
                    code = await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=_HEARTBEAT_EVERY)
                    # The rest of the output is in the pipe; a process the container left holding it does not hold us.
                    await asyncio.wait([pump], timeout=_HEARTBEAT_EVERY)
                    return code
                except TimeoutError:
                    # `ktx test pipeline` runs the same code with no activity around it, so nothing to heartbeat to.
                    if activity.in_activity():
                        activity.heartbeat(name)
        except asyncio.CancelledError:
            await self.remove(name)
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise
        finally:
            pump.cancel()


async def _pump(stream: asyncio.StreamReader | None, log: BoundedLog) -> None:
    while stream is not None and (chunk := await stream.read(64 * 1024)):
        log.write(chunk)


def killed_reason(exit_code: int, resources: dict[str, Any]) -> str:
    """128 + SIGKILL: what the kernel's OOM killer leaves, as kubelet's OOMKilled reports it, when a memory limit was
    set (podman removes the container with --rm, so its OOMKilled flag cannot be read afterwards)."""
    limit = (resources.get("limits") or {}).get("memory")
    if exit_code != 137:
        return ""
    if limit is None:
        return " (killed by SIGKILL)"
    return f" (OOMKilled: killed by SIGKILL, as when it passes its memory limit of {limit})"


def log_tail(log_file: Path, limit: int = 2048) -> str:
    return read_tail(log_file, limit)[0] if log_file.exists() else ""


def service_account_note(pod: PodFacts, token: bool, runner: str) -> str:
    """What a named rbac.serviceAccount means here: the token's identity (and spec.serviceAccountName), with the rules
    Kratix binds to it; any other RBAC a cluster binds to an account of that name has no counterpart, as the platform
    API serves no RBAC objects."""
    if not token:
        return (
            f"spec.rbac.serviceAccount: not applied on the {runner} runner: this worker gives pipelines no platform "
            "API token (only fieldRef spec.serviceAccountName reads it)"
        )
    return (
        f"spec.rbac.serviceAccount: the token is system:serviceaccount:{pod.namespace}:{pod.service_account} with "
        f"Kratix's rules and rbac.permissions only; other RBAC bound to that account is not applied on the {runner} "
        "runner (the platform API serves no RBAC objects)"
    )


class PodmanRunner:
    """The pipeline runner on this host: each container in turn through `runtime` (podman's CLI, or runc directly:
    activities/pipelines/oci_runtime.py)."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        logs_dir: Path,
        platform: PlatformAccess | None = None,
        api_address: tuple[str, int] | None = None,
        secrets: SecretProvider | None = None,
        config: PlatformConfig | None = None,
    ):
        """With `platform` and `api_address` (the API's HTTPS listener as the worker reaches it) each container gets
        the platform API's endpoint and a token for it; without, neither (as before the platform spoke Kubernetes).
        `secrets` are the platform's Secrets, which env, envFrom, secret volumes and imagePullSecrets read from (none
        without); `config` holds the default pull policy, resources and pids limit."""
        self.runtime = runtime
        self.name = runtime.name
        self.logs_dir = logs_dir
        self.platform = platform if api_address is not None else None
        self.api_address = api_address
        self.secrets = secrets
        self.config = config or PlatformConfig()

    async def run(self, input: RunPipelineInput, workspace: Path) -> ContainersOutcome:
        """`workspace` holds input/, output/ and metadata/, mounted where Kratix's containers expect them."""
        kratix_input, output, metadata = workspace / "input", workspace / "output", workspace / "metadata"
        for directory in (output, metadata):
            directory.chmod(0o777)  # containers may run as a non-root user
        mounts = {
            kratix_input: ("/kratix/input", True),
            output: ("/kratix/output", False),
            metadata: ("/kratix/metadata", False),
        }
        kratix_env = input.context.env(input.pipeline.metadata.name)
        service_env: dict[str, str] = {}
        if self.platform is not None:
            # One token for the run, as one ServiceAccount for a Pod's containers; the Service's variables come first
            # so a container's own env overrides them, as in Kubernetes.
            account = self.platform.write_service_account(input, workspace / "serviceaccount")
            mounts[account] = (SERVICE_ACCOUNT_MOUNT, True)
            service_env = self.platform.env()
        spec = input.pipeline.spec
        resources = {
            c.name: effective_resources(c.resources, self.config.default_container_resources) for c in spec.containers
        }
        pod = pod_facts(input, resources, workspace)
        # The Pod's namespace, where its Secrets are read: the Promise's pipelineNamespace when set, as in Kratix.
        namespace = pod.namespace
        authfile, notes = write_auth_file(workspace / "auth.json", spec, namespace, self.secrets)
        notes = [*(f"{f}: ignored on the {self.name} runner" for f in ignored_fields(spec, resources)), *notes]
        if spec.rbac is not None and spec.rbac.service_account:
            notes.append(service_account_note(pod, self.platform is not None, self.name))
        runs: list[ContainerRun] = []
        try:
            volumes = prepare_volumes(
                spec, namespace, self.secrets, workspace / "volumes", self.runtime.isolation.host_uid
            )
        except ConfigError as exc:
            first = spec.containers[0]
            runs.append(ContainerRun(name=first.name, image=first.image, started_at=time.time()))
            return ContainersOutcome(
                containers=runs, failed_container=first.name, message=f"container {first.name!r}: {exc}", notes=notes
            )
        # One deadline for the whole run, image pulls included, as a Job's activeDeadlineSeconds.
        deadline = asyncio.get_running_loop().time() + input.timeout_s
        for container in input.pipeline.spec.containers:
            # Refused at apply already; checked again at the last step before a command line and a path are built.
            refused = check_container(container, f"container {container.name!r}")
            if refused:
                runs.append(ContainerRun(name=container.name, image=container.image, started_at=time.time()))
                return ContainersOutcome(
                    containers=runs,
                    failed_container=container.name,
                    message="refused to run: " + "; ".join(str(e) for e in refused),
                )
            try:
                env = resolve_env(container, service_env, kratix_env, namespace, self.secrets, pod)
                user_mounts = mounts_for(container, volumes)
            except Unavailable as exc:
                # Refused at apply where the platform knows its runner is podman; a Promise admitted elsewhere (the
                # runner changed since) fails here, every run, with the same reason.
                raise ApplicationError(
                    f"container {container.name!r}: {exc}", type="UnsupportedPipeline", non_retryable=True
                ) from None
            except ConfigError as exc:
                runs.append(ContainerRun(name=container.name, image=container.image, started_at=time.time()))
                return ContainersOutcome(
                    containers=runs,
                    failed_container=container.name,
                    message=f"container {container.name!r}: CreateContainerConfigError: {exc}",
                    notes=notes,
                )
            notes += [f"container {container.name!r}: {n}" for n in env.notes]
            name = container_name(input.run_id, container.name)
            log_file = log_path(self.logs_dir, input.run_id, container.name)
            started, started_at = time.monotonic(), time.time()
            policy = pull_policy(container.image, container.image_pull_policy, self.config.default_image_pull_policy)
            try:
                # Past the deadline the container is killed and removed (ContainerRuntime.run's cancellation).
                async with asyncio.timeout_at(deadline):
                    pull_failure = await self.runtime.ensure_image(container.image, policy, authfile)
                    if pull_failure is not None:
                        runs.append(ContainerRun(name=container.name, image=container.image, started_at=started_at))
                        return ContainersOutcome(
                            containers=runs,
                            failed_container=container.name,
                            message=f"container {container.name!r}: {pull_failure}",
                            notes=notes,
                        )
                    if checks_image_user(container.security_context) and is_root_user(
                        await self.runtime.image_user(container.image)
                    ):
                        runs.append(ContainerRun(name=container.name, image=container.image, started_at=time.time()))
                        return ContainersOutcome(
                            containers=runs,
                            failed_container=container.name,
                            message=f"container {container.name!r} ({container.image}) has runAsNonRoot and the "
                            "image will run as root",
                            notes=notes,
                        )
                    exit_code = await self.runtime.run_container(
                        ContainerStart(
                            name=name,
                            container=container,
                            mounts=mounts,
                            env=env,
                            volumes=user_mounts,
                            resources=resources[container.name],
                            pids_limit=self.config.pipeline_pids_limit,
                            workspace=workspace,
                        ),
                        log_file,
                        reach=self.api_address,
                    )
            except TimeoutError:
                runs.append(
                    ContainerRun(
                        name=container.name,
                        image=container.image,
                        started_at=started_at,
                        duration_seconds=round(time.monotonic() - started, 3),
                        log_tail=log_tail(log_file),
                        log_file=str(log_file),
                    )
                )
                return ContainersOutcome(
                    containers=runs,
                    failed_container=container.name,
                    message=f"container {container.name!r} ({container.image}) was stopped: "
                    f"{timed_out(input.timeout_s)}",
                    notes=notes,
                )
            runs.append(
                ContainerRun(
                    name=container.name,
                    image=container.image,
                    exit_code=exit_code,
                    started_at=started_at,
                    duration_seconds=round(time.monotonic() - started, 3),
                    log_tail=log_tail(log_file),
                    log_file=str(log_file),
                )
            )
            if exit_code != 0:
                return ContainersOutcome(
                    containers=runs,
                    failed_container=container.name,
                    message=f"container {container.name!r} ({container.image}) exited with code {exit_code}"
                    + killed_reason(exit_code, resources[container.name]),
                    notes=notes,
                )
        return ContainersOutcome(containers=runs, notes=notes)
