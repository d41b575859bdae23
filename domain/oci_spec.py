"""An OCI runtime config (config.json) for one pipeline container, as podman would generate it for the options the
podman runner passes (activities/pipelines/podman_runner.py): pure, so what a container is given is unit-tested.

Podman's defaults reproduced here (podman 4, containers-common): its capability set, the masked and read-only
paths, the default seccomp profile (containers-common's seccomp.json, narrowed to this architecture, kernel and the
container's capabilities as containers/common does), the namespaces of `--network=none` and the tmpfs mounts of
`--read-only`. Everything the Pipeline sets was validated at apply; this module only places it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING
from typing import Any

from domain.pod_fields import quantity

# containers.conf's default_capabilities (podman 4).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
)
READONLY_PATHS = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# The image's PATH when it sets none (podman's and Docker's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What `--read-only` leaves writable (podman's read_only_tmpfs default).
READ_ONLY_TMPFS = ("/run", "/tmp", "/var/tmp")
# The uid range a mapped container gets: root and the 65,535 ids after it, as the podman runner's --uidmap.
MAPPED_IDS = 65536
CPU_PERIOD_US = 100_000
_MIN_SHARES = 2
# Go's GOARCH (how seccomp.json's includes/excludes name architectures) and libseccomp's name, by `uname -m`.
ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
}
_NOSUID_NODEV_NOEXEC = ["nosuid", "noexec", "nodev"]


@dataclass(frozen=True)
class Bind:
    source: str
    destination: str
    read_only: bool


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about its process (OCI image config): the fields a container's own override."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Hook:
    """An OCI hook: run by the runtime, in the worker's namespaces, once the container's namespaces exist."""

    path: str
    args: list[str]
    timeout_s: int


@dataclass(frozen=True)
class ContainerSpec:
    root: str
    args: list[str]
    env: list[str]
    cwd: str
    user: User
    hostname: str
    binds: list[Bind]
    host_uid: int  # container uid 0 as seen from the host; 0 = no user namespace
    read_only_root: bool
    capabilities_drop: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    cgroups_path: str = ""
    seccomp: dict[str, Any] | None = None
    create_runtime_hook: Hook | None = None


def process_args(command: list[str] | None, args: list[str] | None, image: ImageConfig) -> list[str]:
    """Kubernetes' rule: `command` replaces the image's ENTRYPOINT and drops its CMD; `args` replace CMD."""
    if command:
        return [*command, *(args or [])]
    return [*image.entrypoint, *(args if args else image.cmd)]


def process_env(image: ImageConfig, hostname: str, own: dict[str, str]) -> list[str]:
    """The image's variables (PATH defaulted), `container`, TERM and HOSTNAME as podman sets them (`container` names
    the runtime: `oci` here, `podman` there), then the container's own, a later one winning."""
    values: dict[str, str] = {"container": "oci", "PATH": DEFAULT_PATH, "TERM": "xterm"}
    for entry in image.env:
        key, _, value = entry.partition("=")
        values[key] = value
    values["HOSTNAME"] = hostname
    values.update(own)
    return [f"{k}={v}" for k, v in values.items()]


def hostname_of(name: str) -> str:
    """Podman names a container's host by a short id; a container name (up to 250 characters) is no host name."""
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def _passwd(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 3]


def resolve_user(spec: str, run_as_user: int | None, run_as_group: int | None, passwd: str, group: str) -> User | str:
    """The process's ids as podman resolves `--user`: the image's USER (a name or uid, `:group` optional) looked up in
    the image's /etc/passwd and /etc/group, runAsUser and runAsGroup over it, and runAsGroup alone added to the
    groups (the podman runner's `--group-add`). A name the image does not know is the reason it cannot run (str)."""
    users, groups = _passwd(passwd), _passwd(group)
    name_part, _, group_part = spec.partition(":")
    uid, gid, username = 0, None, "root"
    if run_as_user is not None:
        uid = run_as_user
        username = next((u[0] for u in users if u[2] == str(uid)), "")
    elif name_part not in ("", "root", "0"):
        if name_part.isdigit():
            uid = int(name_part)
            username = next((u[0] for u in users if u[2] == name_part), "")
        else:
            entry = next((u for u in users if u[0] == name_part), None)
            if entry is None or not entry[2].isdigit():
                return f"unable to find user {name_part}: no matching entries in passwd file"
            uid, username = int(entry[2]), name_part
    entry = next((u for u in users if u[2] == str(uid)), None)
    if entry is not None and entry[3].isdigit():
        gid = int(entry[3])
    if group_part and run_as_user is None:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            found = next((g for g in groups if g[0] == group_part), None)
            if found is None or not found[2].isdigit():
                return f"unable to find group {group_part}: no matching entries in group file"
            gid = int(found[2])
    if run_as_user is not None and run_as_group is not None:
        gid = run_as_group
    primary = gid if gid is not None else 0
    # Podman lists the primary group among the supplementary ones when a user is named, not for the default root.
    extra = [primary] if spec or run_as_user is not None else []
    extra += [int(g[2]) for g in groups if username and g[2].isdigit() and username in g[3].split(",")]
    if run_as_group is not None and run_as_user is None:
        extra.append(run_as_group)
    return User(uid=uid, gid=primary, additional_gids=tuple(dict.fromkeys(extra)))


def account_files(passwd: str, group: str, user: User) -> tuple[str | None, str | None]:
    """The image's /etc/passwd and /etc/group with the entries podman adds for a uid (and its group) the image does
    not know, so that the process has a name and a home; None for a file that needs nothing added."""
    if any(entry[2] == str(user.uid) for entry in _passwd(passwd)):
        return None, None
    new_passwd = _ended(passwd) + f"{user.uid}:*:{user.uid}:{user.gid}:container user:/:/bin/sh\n"
    if any(entry[2] == str(user.gid) for entry in _passwd(group)):
        return new_passwd, None
    return new_passwd, _ended(group) + f"{user.gid}:x:{user.gid}:{user.uid}\n"


def _ended(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def oci_resources(resources: dict[str, Any], pids_limit: int) -> dict[str, Any]:
    """linux.resources for a container's Kubernetes resources, as podman turns the podman runner's options into them
    (activities/pipelines/pod_inputs.resource_args): cpu limit to a CFS quota, cpu request to shares, memory limit to
    memory and memory+swap (no swap beyond it), a memory request alone to a reservation; the platform's pids limit."""
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    out: dict[str, Any] = {"pids": {"limit": pids_limit}}
    cpu: dict[str, Any] = {}
    if "cpu" in limits:
        cpu["quota"] = int((quantity(limits["cpu"]) * CPU_PERIOD_US).to_integral_value(ROUND_CEILING))
        cpu["period"] = CPU_PERIOD_US
    cpu_request = requests.get("cpu", limits.get("cpu"))
    if cpu_request is not None:
        cpu["shares"] = max(_MIN_SHARES, int(quantity(cpu_request) * 1024))
    if cpu:
        out["cpu"] = cpu
    if "memory" in limits:
        memory = int(quantity(limits["memory"]).to_integral_value(ROUND_CEILING))
        out["memory"] = {"limit": memory, "swap": memory}
    elif requests.get("memory") is not None:
        out["memory"] = {"reservation": int(quantity(requests["memory"]).to_integral_value(ROUND_CEILING))}
    return out


def capabilities(drop: list[str], root: bool) -> dict[str, list[str]]:
    """Podman's set less `capabilities.drop`: root holds them; any other user has them only as a bound, as podman 4
    gives a non-root process no capabilities (nothing inheritable, nothing ambient)."""
    dropped = {c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper() for c in drop}
    if "CAP_ALL" in dropped:
        dropped = set(DEFAULT_CAPABILITIES)
    kept = [c for c in DEFAULT_CAPABILITIES if c not in dropped]
    if not root:
        return {"bounding": kept}
    return {"bounding": kept, "effective": kept, "permitted": kept}


def _kernel_at_least(kernel: tuple[int, int], wanted: str) -> bool:
    major, _, minor = wanted.partition(".")
    return kernel >= (int(major), int(minor or 0))


def seccomp_profile(profile: dict[str, Any], machine: str, caps: list[str], kernel: tuple[int, int]) -> dict[str, Any]:
    """containers-common's seccomp.json as linux.seccomp, resolved as containers/common resolves it: the rules for
    this architecture, kernel and capability set kept, their conditions dropped."""
    goarch, scmp = ARCHES[machine]
    architectures = [scmp]
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == scmp:
            architectures += list(entry.get("subArchitectures") or [])
    held = set(caps)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        if includes.get("arches") and goarch not in includes["arches"]:
            continue
        if includes.get("caps") and not set(includes["caps"]) <= held:
            continue
        if includes.get("minKernel") and not _kernel_at_least(kernel, includes["minKernel"]):
            continue
        if goarch in (excludes.get("arches") or []) or held & set(excludes.get("caps") or []):
            continue
        out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [
                {"index": a["index"], "value": a["value"], "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
                for a in rule["args"]
            ]
        syscalls.append(out)
    resolved: dict[str, Any] = {
        "defaultAction": profile["defaultAction"],
        "architectures": architectures,
        "syscalls": syscalls,
    }
    if profile.get("defaultErrnoRet") is not None:
        resolved["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return resolved


def _tmpfs(destination: str, options: list[str]) -> dict[str, Any]:
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options}


def runtime_mounts(read_only_root: bool) -> list[dict[str, Any]]:
    """The kernel filesystems every container gets, as podman mounts them with its own network namespace."""
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": list(_NOSUID_NODEV_NOEXEC)},
        _tmpfs("/dev", ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]),
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },  # fmt: skip
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": list(_NOSUID_NODEV_NOEXEC)},
        _tmpfs("/dev/shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*_NOSUID_NODEV_NOEXEC, "ro"]},
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
        },  # fmt: skip
    ]
    if read_only_root:
        mounts += [_tmpfs(d, ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]) for d in READ_ONLY_TMPFS]
    return mounts


def container_config(spec: ContainerSpec) -> dict[str, Any]:
    """The OCI runtime config for `spec`."""
    caps = capabilities(spec.capabilities_drop, spec.user.uid == 0)
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": spec.resources,
        "sysctl": {"net.ipv4.ping_group_range": "0 0"},
    }
    if spec.host_uid:
        namespaces.append({"type": "user"})
        mapping = [{"containerID": 0, "hostID": spec.host_uid, "size": MAPPED_IDS}]
        linux["uidMappings"], linux["gidMappings"] = mapping, mapping
    if spec.cgroups_path:
        linux["cgroupsPath"] = spec.cgroups_path
    if spec.seccomp is not None:
        linux["seccomp"] = spec.seccomp
    binds = [
        {
            "destination": b.destination,
            "type": "bind",
            "source": b.source,
            "options": ["rbind", "rprivate", "nosuid", "nodev", *(["ro"] if b.read_only else [])],
        }
        for b in spec.binds
    ]
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {
                "uid": spec.user.uid,
                "gid": spec.user.gid,
                "umask": 0o022,
                "additionalGids": list(spec.user.additional_gids),
            },
            "args": spec.args,
            "env": spec.env,
            "cwd": spec.cwd or "/",
            "capabilities": caps,
            "noNewPrivileges": True,
        },
        "root": {"path": spec.root, "readonly": spec.read_only_root},
        "hostname": spec.hostname,
        "mounts": runtime_mounts(spec.read_only_root) + binds,
        "linux": linux,
    }
    if spec.create_runtime_hook is not None:
        hook = spec.create_runtime_hook
        config["hooks"] = {
            "createRuntime": [{"path": hook.path, "args": hook.args, "timeout": hook.timeout_s}],
        }
    return config


def hosts_file(hostname: str) -> str:
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
