"""What a podman pipeline container is given from its Pod fields, as kubelet would give it: Secrets as environment
variables and files, emptyDir volumes, pull credentials, resource limits, and the fields podman cannot honour.

Secret values are read here, inside the pipeline activity, from the platform's SecretProvider in the pipeline's
namespace, and leave only as files in the run's private workspace (an env file podman reads, a volume's files, an
auth file), removed with the workspace. They never reach a workflow's input or result, a log, an event or a command
line. A missing Secret or key is a failed run with kubelet's words (`CreateContainerConfigError`), never an error.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from decimal import ROUND_CEILING
from pathlib import Path
from typing import Any, Protocol

from activities.pipelines.downward_api import PodFacts, Unavailable
from domain.documents import Container, PipelineSpec, SecretRef
from domain.grammar import env_var_name
from domain.pipeline_rules import MAX_ARGUMENT_BYTES
from domain.pod_fields import NOT_SERVED, PODMAN_RESOURCES, PODMAN_VOLUMES, quantity

# kubelet's default mode for a Secret volume's files.
DEFAULT_SECRET_MODE = 0o644
# securityContext fields the podman runner honours (podman_runner.isolation_args and capability_args).
HONOURED_SECURITY = {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem", "capabilities"}
# Kubernetes rounds CPU requests to cgroup shares (cpu * 1024, at least 2), as podman's --cpu-shares takes them.
_MIN_SHARES = 2


class SecretProvider(Protocol):
    """What runners read of the platform's SecretProvider (activities/stores/secrets.py), which raises its
    SecretNotFound, a LookupError, for a Secret that is not there."""

    def get(self, ref: SecretRef) -> dict[str, bytes]: ...


class ConfigError(Exception):
    """A container cannot be configured (kubelet's CreateContainerConfigError): the run fails with this reason."""


@dataclass
class ContainerEnv:
    plain: dict[str, str]
    # From Secrets: written to the env file, never on the command line.
    secret: dict[str, bytes]
    notes: list[str] = field(default_factory=list)


def _secret(secrets: SecretProvider | None, namespace: str, name: str) -> dict[str, bytes] | None:
    """None when missing; a runner without a provider (`ktx test pipeline`) finds none."""
    if secrets is None:
        return None
    try:
        return secrets.get(SecretRef(name=name, namespace=namespace))
    except LookupError:
        return None


def resolve_env(
    container: Container,
    first: dict[str, str],
    kratix: dict[str, str],
    namespace: str,
    secrets: SecretProvider | None,
    pod: PodFacts | None = None,
) -> ContainerEnv:
    """kubelet's order: the Service's variables (`first`), then envFrom in order, then `env` (Kratix's variables, then
    the container's own); a later one wins; fieldRef and resourceFieldRef read `pod`. Raises ConfigError for a Secret
    or key that is missing and not optional, Unavailable for a Pod field the runner cannot give."""
    values: dict[str, str | bytes] = dict(first)
    notes: list[str] = []
    for index, source in enumerate(container.env_from):
        ref, prefix = source.get("secretRef") or {}, source.get("prefix") or ""
        data = _secret(secrets, namespace, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'secret "{ref.get("name")}" not found')
        skipped = []
        for key, value in sorted(data.items()):
            if env_var_name("", prefix + key):
                skipped.append(key)  # kubelet skips them too (an InvalidEnvironmentVariableNames event)
            else:
                values[prefix + key] = value
        if skipped:
            notes.append(f"envFrom[{index}]: keys skipped, not valid variable names: {', '.join(skipped)}")
    values.update(kratix)
    for index, env in enumerate(container.env):
        if env.value_from is None:
            values[env.name] = env.value or ""
            continue
        ref = env.value_from.get("secretKeyRef")
        if ref is None:
            try:
                if pod is None:
                    raise Unavailable("no Pod fields are given here")
                value = pod.value(env.value_from, container.name)
            except Unavailable as exc:
                raise Unavailable(f"env[{index}].valueFrom.{next(iter(env.value_from))}: {exc}") from None
            # An annotation's value goes on podman's command line: one no process argument can hold is no variable.
            if "\0" in value or len(value.encode()) > MAX_ARGUMENT_BYTES:
                raise ConfigError(
                    f"variable {env.name}: the Pod field's value holds a NUL or is over {MAX_ARGUMENT_BYTES} bytes"
                )
            values[env.name] = value
            continue
        data = _secret(secrets, namespace, ref["name"])
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            if data is None:
                raise ConfigError(f'secret "{ref["name"]}" not found')
            raise ConfigError(f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}")
        values[env.name] = data[ref["key"]]
    secret = {k: v for k, v in values.items() if isinstance(v, bytes)}
    for key, value in secret.items():
        # podman's env file holds one variable a line; NUL ends a C string; both would be a different value.
        if any(c in value for c in (b"\n", b"\r", b"\0")):
            raise ConfigError(
                f"variable {key}: the Secret value holds a line break or NUL, which the podman runner cannot pass in "
                "an environment variable (mount the Secret as a volume instead)"
            )
        if len(value) > MAX_ARGUMENT_BYTES:
            raise ConfigError(f"variable {key}: the Secret value is over {MAX_ARGUMENT_BYTES} bytes")
    return ContainerEnv(plain={k: v for k, v in values.items() if isinstance(v, str)}, secret=secret, notes=notes)


def write_env_file(path: Path, secret: dict[str, bytes]) -> Path:
    """`NAME=VALUE` lines, 0600 (the worker's user, which runs podman, reads it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(k.encode() + b"=" + v + b"\n" for k, v in secret.items()))
    return path


def prepare_volumes(
    spec: PipelineSpec, namespace: str, secrets: SecretProvider | None, root: Path, owner: int | None
) -> dict[str, tuple[Path, bool]]:
    """Each volume's directory under `root`, made before the first container (as kubelet sets up a Pod's volumes):
    name -> (directory, always read-only). `owner` is the host uid of the container's root, so a Secret file of mode
    0400 is readable by the container's root, as in Kubernetes. Raises ConfigError."""
    made: dict[str, tuple[Path, bool]] = {}
    root.mkdir(mode=0o755)
    for volume in spec.volumes:
        name = volume["name"]
        kind = next(k for k in volume if k != "name")
        if kind not in PODMAN_VOLUMES:
            reason = NOT_SERVED.get(kind, "the podman runner mounts only secret and emptyDir volumes")
            raise ConfigError(f'volume "{name}": {kind}: {reason}; use the kubernetes runner')
        directory = root / name
        directory.mkdir()
        if kind == "emptyDir":
            directory.chmod(0o777)  # kubelet's mode: any user the containers run as writes there
            made[name] = (directory, False)
            continue
        source = volume["secret"]
        directory.chmod(0o755)
        data = _secret(secrets, namespace, source["secretName"])
        if data is None:
            if source.get("optional"):
                made[name] = (directory, True)
                continue
            raise ConfigError(
                f'MountVolume.SetUp failed for volume "{name}" : secret "{source["secretName"]}" not found'
            )
        default_mode = source.get("defaultMode", DEFAULT_SECRET_MODE)
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
        for item in items:
            if item["key"] not in data:
                if source.get("optional"):
                    continue
                raise ConfigError(
                    f'MountVolume.SetUp failed for volume "{name}" : secret "{source["secretName"]}" has no key '
                    f"{item['key']!r}"
                )
            target = directory.joinpath(*item["path"].split("/"))
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data[item["key"]])
            os.chmod(target, item.get("mode", default_mode))
            if owner:
                os.chown(target, owner, owner)
        made[name] = (directory, True)
    return made


def mounts_for(container: Container, volumes: dict[str, tuple[Path, bool]]) -> list[tuple[Path, str, bool]]:
    """The container's volumeMounts as (host path, mount path, read-only). A subPath is looked up without following
    a link: an earlier container may have left one in an emptyDir, pointing anywhere on the host (the kubelet's
    CVE-2017-1002101). Raises ConfigError."""
    mounts = []
    for mount in container.volume_mounts:
        directory, secret = volumes[mount["name"]]
        host = directory
        for part in (mount.get("subPath") or "").split("/"):
            if not part:
                continue
            host = host / part
            try:
                mode = os.lstat(host).st_mode
            except FileNotFoundError:
                if secret:
                    raise ConfigError(f'subPath "{mount["subPath"]}" of volume "{mount["name"]}" does not exist')
                host.mkdir(mode=0o777)
                host.chmod(0o777)
                continue
            if stat.S_ISLNK(mode):
                raise ConfigError(f'subPath "{mount["subPath"]}" of volume "{mount["name"]}" is a symbolic link')
        mounts.append((host, mount["mountPath"], secret or bool(mount.get("readOnly"))))
    return mounts


def write_auth_file(
    path: Path, spec: PipelineSpec, namespace: str, secrets: SecretProvider | None
) -> tuple[Path | None, list[str]]:
    """The `auths` of the Pipeline's imagePullSecrets (kubernetes.io/dockerconfigjson, or the older dockercfg) in one
    auth file, 0600, for `podman pull --authfile`; a missing or unreadable one is skipped, as kubelet skips it, and
    said so in the notes."""
    auths: dict[str, Any] = {}
    notes = []
    for ref in spec.image_pull_secrets:
        name = str(ref.get("name", ""))
        data = _secret(secrets, namespace, name) if name else None
        try:
            if data is not None and ".dockerconfigjson" in data:
                found = json.loads(data[".dockerconfigjson"]).get("auths") or {}
            elif data is not None and ".dockercfg" in data:
                found = json.loads(data[".dockercfg"])
            else:
                notes.append(
                    f'imagePullSecrets: secret "{name}" not found or not of type kubernetes.io/dockerconfigjson'
                )
                continue
        except (ValueError, AttributeError):
            notes.append(f'imagePullSecrets: secret "{name}" does not hold a valid docker config')
            continue
        if isinstance(found, dict):
            for registry, entry in found.items():
                auths.setdefault(str(registry), entry)
    if not auths:
        return None, notes
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"auths": auths}, handle)
    return path, notes


def resource_args(resources: dict[str, Any], pids_limit: int) -> list[str]:
    """Limits to podman's: cpu to --cpus, memory to --memory with --memory-swap equal (no swap beyond the limit), a
    request alone to --cpu-shares / --memory-reservation; the platform's pids limit always. Kubernetes takes a limit
    without a request as the request too."""
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    args = [f"--pids-limit={pids_limit}"]
    if "cpu" in limits:
        args.append(f"--cpus={quantity(limits['cpu']).normalize():f}")
    cpu_request = requests.get("cpu", limits.get("cpu"))
    if cpu_request is not None:
        args.append(f"--cpu-shares={max(_MIN_SHARES, int(quantity(cpu_request) * 1024))}")
    if "memory" in limits:
        memory = int(quantity(limits["memory"]).to_integral_value(ROUND_CEILING))
        args += [f"--memory={memory}b", f"--memory-swap={memory}b"]
    memory_request = requests.get("memory")
    if memory_request is not None and "memory" not in limits:
        args.append(f"--memory-reservation={int(quantity(memory_request).to_integral_value(ROUND_CEILING))}b")
    return args


def capability_args(security_context: dict[str, Any] | None) -> list[str]:
    """`capabilities.drop` only narrows what a container may do: honoured. `add` is not (see ignored_fields)."""
    drop = ((security_context or {}).get("capabilities") or {}).get("drop") or []
    return [f"--cap-drop={c}" for c in drop if isinstance(c, str) and c.replace("_", "").isalnum()]


def ignored_fields(spec: PipelineSpec, resources: dict[str, dict[str, Any]]) -> list[str]:
    """What the podman runner cannot apply, by field, so describe says so instead of dropping it silently.
    `resources` holds each container's effective resources (its own or the platform's defaults)."""
    ignored = [
        f"spec.{key}"
        for key, value in (("nodeSelector", spec.node_selector), ("tolerations", spec.tolerations))
        if value
    ]
    if spec.restart_policy == "OnFailure":
        # No container is restarted in place: the workflow runs the whole pipeline again (jobOptions.backoffLimit).
        ignored.append("spec.restartPolicy")
    for index, volume in enumerate(spec.volumes):
        # tmpfs and size limits belong to kubelet's emptyDir; here it is a directory of the run's workspace.
        ignored += [f"spec.volumes[{index}].emptyDir.{key}" for key in volume.get("emptyDir") or {}]
    for index, container in enumerate(spec.containers):
        where = f"spec.containers[{index}]"
        for part in ("limits", "requests"):
            for name in (resources.get(container.name) or {}).get(part) or {}:
                if name not in PODMAN_RESOURCES:
                    ignored.append(f"{where}.resources.{part}.{name}")
        context = container.security_context or {}
        for key, value in context.items():
            if key == "capabilities" and (value or {}).get("add"):
                ignored.append(f"{where}.securityContext.capabilities.add")
            elif key == "seccompProfile" and (value or {}).get("type") != "RuntimeDefault":
                ignored.append(f"{where}.securityContext.seccompProfile")
            elif key in ("allowPrivilegeEscalation", "privileged") and value:
                # no-new-privileges and an unprivileged container always: the stricter setting holds.
                ignored.append(f"{where}.securityContext.{key}")
            elif key not in HONOURED_SECURITY | {"seccompProfile", "allowPrivilegeEscalation", "privileged"}:
                ignored.append(f"{where}.securityContext.{key}")
    return ignored
