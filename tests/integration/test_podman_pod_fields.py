"""The Pod fields of a Pipeline on the podman runner (issue 18): Secrets as env, envFrom and volumes from the
pipeline's namespace, emptyDir, image pull policy, resources mapped to podman's limits with Kratix's defaults, and
the fields podman cannot honour stated. Real podman, real Temporal, real pipelines; the values are looked for in the
workflow's history, the logs, describe, events and every command line the worker ran, and must be in none."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import describe
from domain.errors import InvalidDocument
from service.platform import Platform
from tests.conftest import PIPELINE_RUNNER
from tests.integration.test_destinations import install
from tests.servers.registry_auth import ChallengingRegistry
from tests.kratix_documents import BEHAVE, eventually, get, phases, pipeline_entry, promise, resource

SECRET_VALUE = "s3cr3t-value-9f1c2e"
FILE_VALUE = "file-only-value-77ab"
FROM_VALUE = "envfrom-value-31de"


def secret(name: str, data: dict[str, str], namespace: str = "default", type_: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": type_,
        "stringData": data,
    }


def probe_pipeline(name: str, script: str, spec: dict[str, Any] | None = None, **container: Any) -> dict[str, Any]:
    """One python3 container running `script` (which writes /kratix/metadata/status.yaml itself)."""
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "probe", "image": BEHAVE, "command": ["python3", "-c", script], **container}],
            "jobOptions": {"backoffLimit": 0},
            **(spec or {}),
        },
    }


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Digests, never values, go to status (status is in the workflow's history).
READ_SECRETS = """
import hashlib, os, stat, yaml
h = lambda b: hashlib.sha256(b).hexdigest()
st = os.stat("/etc/creds/token-file")
status = {
    "env": h(os.environ["TOKEN"].encode()),
    "fromPrefixed": h(os.environ["APP_PASSWORD"].encode()),
    "optionalAbsent": "NOPE" not in os.environ,
    "file": h(open("/etc/creds/token-file", "rb").read()),
    "fileMode": oct(stat.S_IMODE(st.st_mode)),
    "only": sorted(os.listdir("/etc/creds")),
    "subPath": h(open("/etc/one-token", "rb").read()),
}
try:
    open("/etc/creds/new", "w")
    status["secretVolumeWritable"] = True
except OSError:
    status["secretVolumeWritable"] = False
yaml.safe_dump(status, open("/kratix/metadata/status.yaml", "w"))
"""


async def test_secrets_reach_the_container_and_nowhere_else(
    platform: Platform, git_remote: Path, pipeline_images, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    # Every command line the worker starts (podman's), recorded, then run for real.
    command_lines: list[str] = []
    real_exec = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> Any:
        command_lines.append(" ".join(map(str, args)))
        return await real_exec(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    caplog.set_level(logging.DEBUG)
    await platform.apply(secret("app", {"token": SECRET_VALUE, "other": "unused"}))
    await platform.apply(secret("files", {"token": FILE_VALUE, "skipped": "x"}))
    await platform.apply(secret("bulk", {"PASSWORD": FROM_VALUE}))
    probe = probe_pipeline(
        "secrets",
        READ_SECRETS,
        spec={
            "volumes": [
                {
                    "name": "creds",
                    "secret": {
                        "secretName": "files",
                        "items": [{"key": "token", "path": "token-file"}],
                        "defaultMode": 0o400,
                    },
                },
                {"name": "whole", "secret": {"secretName": "files"}},
            ]
        },
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app", "key": "token"}}},
            {"name": "NOPE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        ],
        envFrom=[{"secretRef": {"name": "bulk"}, "prefix": "APP_"}, {"secretRef": {"name": "gone", "optional": True}}],
        volumeMounts=[
            {"name": "creds", "mountPath": "/etc/creds"},
            {"name": "whole", "mountPath": "/etc/one-token", "subPath": "token"},
        ],
    )
    await install(platform, git_remote, "vault", "Vault", probe)
    await platform.apply(resource("Vault", "one"))
    obj = await eventually(
        lambda: get(platform, "vault", "one"),
        lambda o: phases(o).get("secrets") in ("Succeeded", "Failed"),
        timeout=120,
        what="the secrets pipeline ran",
    )
    assert phases(obj)["secrets"] == "Succeeded", pipeline_entry(obj, "secrets")
    status = obj["status"]
    assert status["env"] == digest(SECRET_VALUE)
    assert status["fromPrefixed"] == digest(FROM_VALUE)
    assert status["optionalAbsent"] is True
    assert status["file"] == digest(FILE_VALUE) and status["subPath"] == digest(FILE_VALUE)
    assert status["fileMode"] == "0o400" and status["only"] == ["token-file"]
    assert status["secretVolumeWritable"] is False

    history = await platform.client.get_workflow_handle(obj["_ktx"]["workflowId"]).fetch_history()
    places = {
        "history": history.to_json(),
        "logs": caplog.text,
        "describe": describe(obj),
        "events": yaml.safe_dump(obj["_ktx"].get("events", [])),
        "command lines": "\n".join(command_lines),
    }
    # The container's start was among them (podman's `run`, or runc's on the OCI runner).
    assert any(" run " in f" {line} " and ("podman" in line or "runc" in line) for line in command_lines), command_lines
    for where, text in places.items():
        for value in (SECRET_VALUE, FILE_VALUE, FROM_VALUE):
            assert value not in text, (where, value)


async def test_a_missing_secret_is_a_failed_pipeline_with_kubelets_reason(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """Also the namespace rule: a resource workflow reads Secrets of its own namespace only."""
    await platform.apply(secret("app", {"token": SECRET_VALUE}, namespace="default"))
    needs = probe_pipeline(
        "needs",
        "open('/kratix/metadata/status.yaml', 'w').write('ran: true')",
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app", "key": "token"}}}],
    )
    await install(platform, git_remote, "needy", "Needy", needs)
    await platform.apply(resource("Needy", "elsewhere", namespace="team-a"))
    await platform.apply(resource("Needy", "here"))
    elsewhere = await eventually(
        lambda: get(platform, "needy", "elsewhere", "team-a"),
        lambda o: phases(o).get("needs") == "Failed",
        timeout=120,
        what="the pipeline in team-a failed",
    )
    assert 'CreateContainerConfigError: secret "app" not found' in pipeline_entry(elsewhere, "needs")["message"]
    here = await eventually(
        lambda: get(platform, "needy", "here"), lambda o: phases(o).get("needs") == "Succeeded", timeout=120
    )
    assert here["status"]["ran"] is True
    # A missing key says which, as kubelet does.
    await platform.apply(secret("app", {"other": "x"}, namespace="team-a"))
    await platform.label("needy", "elsewhere", namespace="team-a", set={"kratix.io/manual-reconciliation": "true"})
    keyless = await eventually(
        lambda: get(platform, "needy", "elsewhere", "team-a"),
        lambda o: "couldn't find key token in Secret team-a/app" in pipeline_entry(o, "needs").get("message", ""),
        timeout=120,
        what="the missing key is named",
    )
    assert phases(keyless)["needs"] == "Failed"
    # The workflow is alive: the object is deleted as usual.
    workflow_id = await platform.delete("needy", "elsewhere", namespace="team-a")
    assert await platform.wait_deleted(workflow_id, 60)


OOM = "x = bytearray(512 * 1024 * 1024)\nopen('/kratix/metadata/status.yaml', 'w').write('allocated: true')"
# cgroup v1 and v2: what the container was given.
LIMITS = """
import os, yaml
def read(*paths):
    for p in paths:
        if os.path.exists(p):
            return open(p).read().split()[0]
yaml.safe_dump({
    "memory": read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu": read("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "pids": read("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"),
}, open("/kratix/metadata/status.yaml", "w"))
"""


async def test_memory_and_cpu_limits_hold_and_kratix_defaults_apply(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform = await platform_factory(pipeline_pids_limit=200)
    greedy = probe_pipeline("greedy", OOM, resources={"limits": {"memory": "64Mi", "cpu": "500m"}})
    await install(platform, git_remote, "greedy", "Greedy", greedy)
    await platform.apply(resource("Greedy", "one"))
    failed = await eventually(
        lambda: get(platform, "greedy", "one"), lambda o: phases(o).get("greedy") == "Failed", timeout=120
    )
    message = pipeline_entry(failed, "greedy")["message"]
    assert "exited with code 137 (OOMKilled" in message and "64Mi" in message, message
    assert "allocated" not in failed["status"]

    # The worker is unharmed, and a container without resources gets Kratix's: 256Mi and 200m.
    await platform.apply(promise("limited", "Limited", configure=[probe_pipeline("limits", LIMITS)]))
    await platform.wait_condition("promise", "limited", "default", "Available", timeout=60)
    await platform.apply(resource("Limited", "one"))
    limited = await eventually(
        lambda: get(platform, "limited", "one"), lambda o: phases(o).get("limits") == "Succeeded", timeout=120
    )
    assert limited["status"]["memory"] == str(256 * 1024 * 1024)
    assert limited["status"]["cpu"] in ("20000", "20000 100000")
    assert limited["status"]["pids"] == "200"


async def test_the_platform_default_resources_replace_kratix_builtin_ones(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform = await platform_factory(default_container_resources={"limits": {"memory": "96Mi"}})
    await install(platform, git_remote, "limited", "Limited", probe_pipeline("limits", LIMITS))
    await platform.apply(resource("Limited", "one"))
    limited = await eventually(
        lambda: get(platform, "limited", "one"), lambda o: phases(o).get("limits") == "Succeeded", timeout=120
    )
    assert limited["status"]["memory"] == str(96 * 1024 * 1024)
    assert limited["status"]["cpu"] in ("-1", "max 100000")


async def test_image_pull_policy_is_honoured_with_a_clear_reason(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    platform = await platform_factory()
    ok = "open('/kratix/metadata/status.yaml', 'w').write('ran: true')"
    never = probe_pipeline("never", ok, imagePullPolicy="Never")
    never["spec"]["containers"][0]["image"] = "localhost/ktx-test/absent:v1"
    await install(platform, git_remote, "never", "Never", never)
    await platform.apply(resource("Never", "one"))
    obj = await eventually(lambda: get(platform, "never", "one"), lambda o: phases(o).get("never") == "Failed")
    assert (
        'ErrImageNeverPull: Container image "localhost/ktx-test/absent:v1" is not present with pull policy of Never'
        in pipeline_entry(obj, "never")["message"]
    )
    # Always: the image is here, but is pulled, and this one has no registry to come from (offline).
    always = probe_pipeline("always", ok, imagePullPolicy="Always")
    await platform.apply(promise("always", "Always", configure=[always]))
    await platform.wait_condition("promise", "always", "default", "Available", timeout=60)
    await platform.apply(resource("Always", "one"))
    obj = await eventually(
        lambda: get(platform, "always", "one"), lambda o: phases(o).get("always") == "Failed", timeout=120
    )
    message = pipeline_entry(obj, "always")["message"]
    assert f'ErrImagePull: failed to pull image "{BEHAVE}" (imagePullPolicy Always)' in message, message


async def test_fields_podman_cannot_apply_are_stated_not_dropped(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    placed = probe_pipeline(
        "placed",
        "open('/kratix/metadata/status.yaml', 'w').write('ran: true')",
        spec={"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "gpu", "operator": "Exists"}]},
        securityContext={"capabilities": {"add": ["NET_ADMIN"]}},
    )
    await install(platform, git_remote, "placed", "Placed", placed)
    await platform.apply(resource("Placed", "one"))
    obj = await eventually(
        lambda: get(platform, "placed", "one"), lambda o: phases(o).get("placed") == "Succeeded", timeout=120
    )
    text = describe(obj)
    for field in (
        "spec.nodeSelector",
        "spec.tolerations",
        "spec.containers[0].securityContext.capabilities.add",
        # Kratix's default resources include ephemeral storage, which podman cannot bound per container.
        "spec.containers[0].resources.limits.ephemeral-storage",
    ):
        assert f"note: {field}: ignored on the {PIPELINE_RUNNER} runner" in text, (field, text)
    events = [e for e in obj["_ktx"]["events"] if e["reason"] == "PipelineFieldsIgnored"]
    assert events and f"spec.nodeSelector: ignored on the {PIPELINE_RUNNER} runner" in events[0]["message"]

    # What no runner can honour is refused at apply, the field named, and the Promise as it was.
    configmap = probe_pipeline("placed", "pass", spec={"volumes": [{"name": "c", "configMap": {"name": "x"}}]})
    with pytest.raises(InvalidDocument) as refused:
        await platform.apply(promise("placed", "Placed", configure=[configmap]))
    assert "spec.workflows.resource.configure[0].spec.volumes[0].configMap" in str(refused.value)
    assert "ConfigMaps are not served" in str(refused.value)
    kept = await platform.get("promise", "placed")
    assert kept["spec"]["workflows"]["resource"]["configure"][0]["spec"]["nodeSelector"] == {"disk": "ssd"}


EMPTY_DIR = {
    "write": "open('/scratch/handoff', 'w').write('from the first')",
    "read": """
import yaml
try:
    open('/scratch-ro/new', 'w')
    writable = True
except OSError:
    writable = False
yaml.safe_dump({'handoff': open('/scratch/handoff').read(), 'readOnlyWritable': writable},
               open('/kratix/metadata/status.yaml', 'w'))
""",
}


async def test_an_empty_dir_is_shared_by_the_containers_of_a_run(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    scratch = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "scratch"},
        "spec": {
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [
                {
                    "name": name,
                    "image": BEHAVE,
                    "command": ["python3", "-c", script],
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/scratch"},
                        {"name": "scratch", "mountPath": "/scratch-ro", "readOnly": True},
                    ],
                }
                for name, script in EMPTY_DIR.items()
            ],
        },
    }
    await install(platform, git_remote, "scratch", "Scratch", scratch)
    await platform.apply(resource("Scratch", "one"))
    obj = await eventually(
        lambda: get(platform, "scratch", "one"), lambda o: phases(o).get("scratch") == "Succeeded", timeout=120
    )
    assert obj["status"]["handoff"] == "from the first"
    assert obj["status"]["readOnlyWritable"] is False


async def test_image_pull_secrets_are_the_credentials_of_the_pull(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path, monkeypatch
) -> None:
    """The registry stand-in refuses every pull but keeps what was presented: the pull secret's credentials, from an
    auth file, never the command line."""
    command_lines: list[str] = []
    real_exec = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> Any:
        command_lines.append(" ".join(map(str, args)))
        return await real_exec(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    with ChallengingRegistry() as registry:
        # Plain HTTP for this registry only: the podman the worker starts reads this environment.
        conf = tmp_path / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{registry.address}"\ninsecure = true\n')
        monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
        password = "pull-password-5e1d"
        auth = base64.b64encode(f"puller:{password}".encode()).decode()
        await platform.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry", "namespace": "default"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": json.dumps({"auths": {registry.address: {"auth": auth}}})},
            }
        )
        private = probe_pipeline("private", "pass", spec={"imagePullSecrets": [{"name": "registry"}]})
        private["spec"]["containers"][0]["image"] = f"{registry.address}/team/private:v1"
        await install(platform, git_remote, "private", "Private", private)
        await platform.apply(resource("Private", "one"))
        obj = await eventually(
            lambda: get(platform, "private", "one"), lambda o: phases(o).get("private") == "Failed", timeout=120
        )
        assert "ErrImagePull" in pipeline_entry(obj, "private")["message"]
        assert f"Basic {auth}" in registry.authorizations, registry.authorizations
        assert not any(password in line or auth in line for line in command_lines)
        assert any("--authfile=" in line for line in command_lines if " pull " in line)


DOWNWARD = """
import os, yaml
found = {k: os.environ[k] for k in os.environ if k.startswith("POD_")}
yaml.safe_dump(found, open("/kratix/metadata/status.yaml", "w"))
"""


async def test_the_downward_api_gives_a_container_its_pods_fields(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """fieldRef and resourceFieldRef, as a Kratix pipeline Pod's container reads them; what the podman runner can
    never give (a node, a Pod IP) is refused at apply, the field named, and the Promise kept as it was."""
    field = lambda path: {"fieldRef": {"fieldPath": path}}  # noqa: E731
    probe = probe_pipeline(
        "downward",
        DOWNWARD,
        env=[
            {"name": "POD_NAME", "valueFrom": field("metadata.name")},
            {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
            {"name": "POD_UID", "valueFrom": field("metadata.uid")},
            {"name": "POD_ACCOUNT", "valueFrom": field("spec.serviceAccountName")},
            {"name": "POD_PROMISE", "valueFrom": field("metadata.labels['kratix.io/promise-name']")},
            {"name": "POD_ACTION", "valueFrom": field("metadata.labels['kratix.io/workflow-action']")},
            {"name": "POD_OWNER", "valueFrom": field("metadata.annotations['example.com/owner']")},
            {"name": "POD_CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "POD_MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "POD_REQ_MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
        ],
    )
    probe["metadata"]["annotations"] = {"example.com/owner": "data-team"}
    await install(platform, git_remote, "downward", "Downward", probe)
    await platform.apply(resource("Downward", "one", namespace="team-a"))
    obj = await eventually(
        lambda: get(platform, "downward", "one", "team-a"),
        lambda o: phases(o).get("downward") in ("Succeeded", "Failed"),
        timeout=120,
        what="the downward pipeline ran",
    )
    assert phases(obj)["downward"] == "Succeeded", pipeline_entry(obj, "downward")
    status = obj["status"]
    # The run's Job name and a 5-character suffix, as the Job controller names its Pod.
    assert (
        status["POD_NAME"].startswith("ktx-downward-one-downward-") and len(status["POD_NAME"].rsplit("-", 2)[-1]) == 5
    )
    assert status["POD_NAMESPACE"] == "team-a"
    assert len(status["POD_UID"]) == 36
    assert status["POD_ACCOUNT"] == "downward-resource-configure-downward"
    assert (status["POD_PROMISE"], status["POD_ACTION"]) == ("downward", "configure")
    assert status["POD_OWNER"] == "data-team"
    # Kratix's default resources: 200m and 256Mi limited, 128Mi requested.
    assert (status["POD_CPU_M"], status["POD_MEM_MI"], status["POD_REQ_MEM"]) == ("200", "256", str(128 * 2**20))

    unrunnable = copy.deepcopy(probe)
    unrunnable["spec"]["containers"].insert(0, {"name": "first", "image": BEHAVE, "command": ["true"]})
    unrunnable["spec"]["containers"][1]["env"] = [{"name": "NODE", "valueFrom": field("spec.nodeName")}]
    with pytest.raises(InvalidDocument) as refused:
        await platform.apply(promise("downward", "Downward", configure=[unrunnable]))
    where = "spec.workflows.resource.configure[0].spec.containers[1].env[0].valueFrom.fieldRef"
    assert any(
        e.field == where and "spec.nodeName is not available on the podman runner" in e.reason
        for e in refused.value.errors
    ), refused.value.errors
    kept = await platform.get("promise", "downward")
    assert kept["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]["name"] == "probe"


async def test_with_a_pipeline_namespace_secrets_are_read_there(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    """Kratix runs all of a Promise's workflows in its pipelineNamespace, so its Pods read that namespace's Secrets:
    on podman too, not the resource's."""
    await platform.apply(secret("app", {"token": SECRET_VALUE}, namespace="platform-pipelines"))
    script = (
        "import hashlib, os, yaml\n"
        "yaml.safe_dump({'token': hashlib.sha256(os.environ['TOKEN'].encode()).hexdigest(),"
        " 'namespace': os.environ['NS']}, open('/kratix/metadata/status.yaml', 'w'))"
    )
    reads = probe_pipeline(
        "reads",
        script,
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app", "key": "token"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
    )
    doc = promise("shared", "Shared", configure=[reads])
    doc["spec"]["workflows"]["config"] = {"pipelineNamespace": "platform-pipelines"}
    await platform.apply(doc)
    await platform.wait_condition("promise", "shared", "default", "Available", timeout=60)
    await platform.apply(resource("Shared", "one", namespace="team-a"))
    obj = await eventually(
        lambda: get(platform, "shared", "one", "team-a"),
        lambda o: phases(o).get("reads") in ("Succeeded", "Failed"),
        timeout=120,
        what="the pipeline ran",
    )
    assert phases(obj)["reads"] == "Succeeded", pipeline_entry(obj, "reads")
    assert obj["status"]["token"] == digest(SECRET_VALUE)
    assert obj["status"]["namespace"] == "platform-pipelines"
