"""A pipeline container's root filesystem for the OCI runner: a fresh copy-on-write root per run over the image's
layers in podman's store, owned by the container's mapped root.

The layers stay where podman keeps them, owned by host root. Each is mounted id-mapped (mount_setattr(2)
MOUNT_ATTR_IDMAP, Linux 5.12+, overlayfs layers since 5.19) through a user namespace that maps host uid 0 to the
container's host uid, so inside the container's own user namespace the image's files belong to its root, as podman's
chowned copies of the layers do, without copying a byte. An overlay then takes them as its lower layers, with its
upper and work directories in the run's workspace: what a run writes is gone with its workspace. The id-mapped layer
mounts are detached as soon as the overlay holds them; only the overlay stays mounted, until the run ends.

Mounting needs CAP_SYS_ADMIN: a worker running as root, as the podman runner's platform API endpoint does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
from pathlib import Path

from domain.oci_spec import MAPPED_IDS

_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442  # x86_64 and aarch64 share these numbers
_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000
_OPEN_TREE_CLONE, _OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_IDMAP = 0x1, 0x100000
_MNT_DETACH = 2
# The kernel reads a mount's options from one page.
_OPTIONS_MAX = 4096
# overlayfs' own limit on lower layers.
MAX_LAYERS = 500

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


class IdMaps:
    """One user namespace per host uid the worker maps containers to, kept open for the worker's life (an id-mapped
    mount names its mapping by such a namespace)."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()

    def fd(self, host_uid: int) -> int:
        with self._lock:
            if host_uid not in self._fds:
                self._fds[host_uid] = _user_namespace(host_uid)
            return self._fds[host_uid]


def _user_namespace(host_uid: int) -> int:
    """A user namespace mapping 0..65535 to host_uid..: a child enters a new one and says so, its maps are written,
    its namespace kept by an open descriptor, and the child ends."""
    child = subprocess.Popen(
        ["unshare", "--user", "--", "sh", "-c", "echo; read -r _"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        if child.stdout.readline() != b"\n":
            raise OSError("unshare --user did not start")
        for kind in ("uid_map", "gid_map"):
            Path(f"/proc/{child.pid}/{kind}").write_text(f"0 {host_uid} {MAPPED_IDS}\n")
        return os.open(f"/proc/{child.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        child.kill()
        child.wait()


def _id_mapped(source: str, target: Path, userns_fd: int) -> None:
    tree = _check(
        _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, source.encode(), _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC), "open_tree"
    )
    try:
        attr = _MountAttr(_MOUNT_ATTR_IDMAP | _MOUNT_ATTR_RDONLY, 0, 0, userns_fd)
        _check(
            _libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)),
            "mount_setattr",
        )
        _check(
            _libc.syscall(_SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, str(target).encode(), _MOVE_MOUNT_F_EMPTY_PATH),
            "move_mount",
        )
    finally:
        os.close(tree)


def _detach(path: Path) -> None:
    _libc.umount2(str(path).encode(), _MNT_DETACH)


def mount_root(layers: list[str], where: Path, root: Path, host_uid: int, maps: IdMaps) -> None:
    """Mounts on `root` an overlay of `layers` (topmost first) with its upper and work directories under `where`,
    owned by the container's root. `root`'s parents must let that user through: the runtime mounts it from inside
    the container's user namespace (the run's workspace is private). Raises OSError."""
    if not layers or len(layers) > MAX_LAYERS:
        raise OSError(f"an image of {len(layers)} layers (1 to {MAX_LAYERS})")
    upper, work, lower = where / "upper", where / "work", where / "l"
    for directory in (upper, work, lower):
        directory.mkdir(mode=0o755)
    root.mkdir(mode=0o755, parents=True)
    if host_uid:
        os.chown(upper, host_uid, host_uid)
    lowers: list[Path] = []
    try:
        if host_uid:
            userns = maps.fd(host_uid)
            for index, layer in enumerate(layers):
                target = lower / str(index)
                target.mkdir()
                _id_mapped(layer, target, userns)
                lowers.append(target)
        lowerdir = ":".join(str(p) for p in lowers) if lowers else ":".join(layers)
        options = f"lowerdir={lowerdir},upperdir={upper},workdir={work}"
        if len(options) >= _OPTIONS_MAX:
            raise OSError(f"the overlay options of {len(layers)} layers are over the kernel's page")
        _check(_libc.mount(b"overlay", str(root).encode(), b"overlay", 0, options.encode()), "mount overlay")
    finally:
        for target in lowers:
            _detach(target)  # the overlay holds its layers from here on


def unmount_root(root: Path) -> None:
    """Detaches a run's root (nothing when it was never mounted) and removes its mount point."""
    _detach(root)
    with contextlib.suppress(OSError):
        root.rmdir()
