"""The OCI runner's config.json, as podman generates it for the podman runner's options (domain/oci_spec.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.oci_spec import (
    DEFAULT_CAPABILITIES,
    MASKED_PATHS,
    READONLY_PATHS,
    Bind,
    ContainerSpec,
    Hook,
    ImageConfig,
    User,
    account_files,
    capabilities,
    container_config,
    oci_resources,
    process_args,
    process_env,
    resolve_user,
    seccomp_profile,
)
from domain.pod_fields import KRATIX_DEFAULT_RESOURCES

CONTAINERS_COMMON = Path("/usr/share/containers/seccomp.json")
IMAGE = ImageConfig(entrypoint=["python3", "/behave.py"], cmd=["serve"], env=["PATH=/opt/bin", "A=image"])
PASSWD = "root:x:0:0:root:/root:/bin/sh\nkratix:x:1000:1001::/home/kratix:/bin/sh\n"
GROUP = "root:x:0:\nkratix:x:1001:\nextra:x:2000:kratix,other\n"


def spec(**changes: object) -> ContainerSpec:
    fields: dict[str, object] = {
        "root": "/run/ktx-oci/x/roots/c",
        "args": ["true"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": User(0, 0, (0,)),
        "hostname": "abc",
        "binds": [
            Bind("/w/input", "/kratix/input", True),
            Bind("/w/output", "/kratix/output", False),
            Bind("/w/metadata", "/kratix/metadata", False),
        ],
        "host_uid": 100000,
        "read_only_root": False,
    }
    fields.update(changes)
    return ContainerSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "command, args, expected",
    [
        (None, None, ["python3", "/behave.py", "serve"]),  # the image's ENTRYPOINT and CMD
        (None, ["x"], ["python3", "/behave.py", "x"]),  # args replace CMD only
        (["sh", "-c"], None, ["sh", "-c"]),  # command replaces ENTRYPOINT and drops CMD
        (["sh", "-c"], ["echo hi"], ["sh", "-c", "echo hi"]),
    ],
)
def test_command_and_args_follow_kubernetes(command, args, expected) -> None:
    assert process_args(command, args, IMAGE) == expected


def test_the_image_env_comes_first_and_the_containers_own_wins() -> None:
    env = process_env(IMAGE, "host1", {"A": "own", "KRATIX_WORKFLOW_TYPE": "resource"})
    assert env == [
        "container=oci",
        "PATH=/opt/bin",
        "TERM=xterm",
        "A=own",
        "HOSTNAME=host1",
        "KRATIX_WORKFLOW_TYPE=resource",
    ]
    assert process_env(ImageConfig(), "h", {})[1].startswith("PATH=/usr/local/sbin:")  # defaulted, as podman does


def test_users_resolve_as_podman_resolves_them() -> None:
    assert resolve_user("", None, None, PASSWD, GROUP) == User(0, 0, ())  # podman's default root: no extra groups
    # A name from the image's passwd, its primary group and the groups that list it.
    assert resolve_user("kratix", None, None, PASSWD, GROUP) == User(1000, 1001, (1001, 2000))
    assert resolve_user("1000:2000", None, None, PASSWD, GROUP) == User(1000, 2000, (2000,))
    # runAsUser and runAsGroup over the image's USER; a uid the image does not know gets group 0.
    assert resolve_user("kratix", 1234, 1234, PASSWD, GROUP) == User(1234, 1234, (1234,))
    assert resolve_user("", 4242, None, PASSWD, GROUP) == User(4242, 0, (0,))
    # runAsGroup alone is added to the image user's groups (the podman runner's --group-add).
    assert resolve_user("", None, 3000, PASSWD, GROUP) == User(0, 0, (3000,))
    assert resolve_user("nobody-here", None, None, PASSWD, GROUP) == (
        "unable to find user nobody-here: no matching entries in passwd file"
    )


def test_a_uid_the_image_does_not_know_gets_podmans_passwd_and_group_entries() -> None:
    assert account_files(PASSWD, GROUP, User(1000, 1001)) == (None, None)  # kratix is there
    passwd, group = account_files(PASSWD, GROUP, User(4242, 4242))
    assert passwd == PASSWD + "4242:*:4242:4242:container user:/:/bin/sh\n"
    assert group == GROUP + "4242:x:4242:4242\n"
    assert account_files("root:x:0:0::/:/bin/sh", GROUP, User(7, 0)) == (
        "root:x:0:0::/:/bin/sh\n7:*:7:0:container user:/:/bin/sh\n",
        None,  # group 0 is known
    )


def test_root_holds_podmans_capabilities_and_any_other_user_only_bounds_them() -> None:
    assert capabilities([], True) == {
        "bounding": list(DEFAULT_CAPABILITIES),
        "effective": list(DEFAULT_CAPABILITIES),
        "permitted": list(DEFAULT_CAPABILITIES),
    }
    assert capabilities([], False) == {"bounding": list(DEFAULT_CAPABILITIES)}
    assert "CAP_NET_BIND_SERVICE" not in capabilities(["NET_BIND_SERVICE"], True)["effective"]
    assert capabilities(["ALL"], True)["bounding"] == []


def test_kratix_default_resources_become_the_limits_podman_sets() -> None:
    # What podman made of --cpus=0.2 --cpu-shares=102 --memory=256Mi --memory-swap=256Mi --pids-limit=1024.
    assert oci_resources(KRATIX_DEFAULT_RESOURCES, 1024) == {
        "pids": {"limit": 1024},
        "cpu": {"quota": 20000, "period": 100000, "shares": 102},
        "memory": {"limit": 268435456, "swap": 268435456},
    }
    assert oci_resources({"requests": {"memory": "64Mi"}}, 10) == {
        "pids": {"limit": 10},
        "memory": {"reservation": 67108864},
    }


def test_the_config_isolates_as_the_podman_runner_does() -> None:
    config = container_config(spec())
    assert config["process"]["noNewPrivileges"] is True
    assert config["root"] == {"path": "/run/ktx-oci/x/roots/c", "readonly": False}
    linux = config["linux"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "network", "ipc", "uts", "mount", "user"}
    assert all("path" not in n for n in linux["namespaces"])  # its own, never the host's
    assert linux["uidMappings"] == linux["gidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert linux["maskedPaths"] == list(MASKED_PATHS) and linux["readonlyPaths"] == list(READONLY_PATHS)
    binds = {m["destination"]: m for m in config["mounts"] if m["type"] == "bind"}
    # /kratix/input read-only; output and metadata writable, as the podman runner mounts them.
    assert "ro" in binds["/kratix/input"]["options"]
    assert "ro" not in binds["/kratix/output"]["options"] and "ro" not in binds["/kratix/metadata"]["options"]
    assert {m["destination"] for m in config["mounts"] if m["type"] == "bind"} == {
        "/kratix/input",
        "/kratix/output",
        "/kratix/metadata",
    }
    assert "hooks" not in config


def test_a_read_only_root_gets_podmans_tmpfs_and_no_mapping_means_no_user_namespace() -> None:
    config = container_config(spec(read_only_root=True, host_uid=0))
    assert config["root"]["readonly"] is True
    tmpfs = {m["destination"] for m in config["mounts"] if m["type"] == "tmpfs"}
    assert {"/run", "/tmp", "/var/tmp"} <= tmpfs
    assert "user" not in {n["type"] for n in config["linux"]["namespaces"]}
    assert "uidMappings" not in config["linux"]


def test_the_hook_holds_the_container_for_its_endpoint() -> None:
    hook = Hook(path="/bin/sh", args=["sh", "-c", "x"], timeout_s=30)
    config = container_config(spec(create_runtime_hook=hook))
    assert config["hooks"] == {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "x"], "timeout": 30}]}


PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.1"}},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        },
    ],
}


def test_seccomp_rules_are_resolved_for_the_arch_kernel_and_capabilities() -> None:
    resolved = seccomp_profile(PROFILE, "x86_64", list(DEFAULT_CAPABILITIES), (6, 18))
    assert resolved["defaultAction"] == "SCMP_ACT_ERRNO" and resolved["defaultErrnoRet"] == 38
    assert resolved["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert resolved["syscalls"] == [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},  # no CAP_SYS_ADMIN: refused
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        },
    ]
    with_admin = seccomp_profile(PROFILE, "x86_64", ["CAP_SYS_ADMIN"], (7, 2))
    assert [r["names"][0] for r in with_admin["syscalls"]] == ["read", "mount", "new_call", "personality"]


@pytest.mark.skipif(not CONTAINERS_COMMON.is_file(), reason="containers-common's seccomp.json is not installed")
def test_containers_commons_profile_resolves_to_podmans_rules() -> None:
    """Podman 4.3 on this kind of host (x86_64, Linux 6.x) generated 22 rules from this file for its default
    capabilities; mount, umount2 and the rest of CAP_SYS_ADMIN's calls are among those refused."""
    resolved = seccomp_profile(json.loads(CONTAINERS_COMMON.read_text()), "x86_64", list(DEFAULT_CAPABILITIES), (6, 18))
    assert resolved["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert len(resolved["syscalls"]) == 22
    refused = {n for r in resolved["syscalls"] if r["action"] == "SCMP_ACT_ERRNO" for n in r["names"]}
    assert {"bpf", "kexec_load", "swapon", "init_module"} <= refused
