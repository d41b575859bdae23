"""Kratix's pipeline Job, as data: the manifest for one pipeline run and the reading of a finished Pod.

Pure functions over camelCase dicts (the API's own shapes), so they are unit-tested and validated against the
Kubernetes schemas without a cluster. The I/O lives in activities/pipelines/kube_runner.py.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from activities.pipelines.models import RunPipelineInput
from activities.pipelines.platform_access import SERVICE_ACCOUNT_MOUNT
from domain.kube.pipeline_token import parse_permissions
from domain.pipeline_rbac import PipelineRbacInput
from domain.pod_fields import effective_resources

MANAGED_BY = {"app.kubernetes.io/managed-by": "ktx"}
READER, WRITER = "ktx-reader", "ktx-writer"
ADAPTER_CONTAINERS = (READER, WRITER)
# The Pod's containers Kratix's adapter would be; ours move data through presigned URLs instead of the API server.
ADAPTER_COMMAND = ["python3", "-m", "worker.pipeline_adapter"]
# Kratix's fixed security context for its own containers (reference §5.2).
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "privileged": False,
    "seccompProfile": {"type": "RuntimeDefault"},
}
# A container waiting for one of these will not start by itself (an image that does not exist, a missing Secret).
STUCK_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


class JobDefaults(BaseModel):
    """Platform-wide settings every pipeline Job gets (Kratix's kratix-config workflow defaults)."""

    namespace: str = "ktx-pipelines"
    service_account: str = "ktx-pipeline"
    adapter_image: str
    image_pull_policy: str | None = None
    image_pull_secrets: list[dict[str, Any]] = Field(default_factory=list)
    container_security_context: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    # What the user containers' KUBERNETES_SERVICE_* name: the platform API (ktx's API Service), not the cluster's.
    platform_api_env: dict[str, str] = Field(default_factory=dict)
    # Kratix's ServiceAccount and RBAC per pipeline (domain/pipeline_rbac.py), applied before each Job: needs the
    # worker's permissions from deploy/components/pipeline-rbac (KTX_KUBE_PIPELINE_RBAC). Off, every Pod runs as
    # `service_account`, with no token and no permissions.
    pipeline_rbac: bool = False
    # Kratix's podTTLSecondsAfterFinished: a finished Job's Pods are deleted once this long has passed.
    pod_ttl_seconds_after_finished: int | None = None


# The volume holding a run's platform ServiceAccount files (token, ca.crt, namespace) from its Secret.
PLATFORM_API_VOLUME = "ktx-platform-api"
_SERVICE_ACCOUNT_FILES = ("token", "ca.crt", "namespace")


def _shorten(name: str, limit: int = 57) -> str:
    """Kratix's GenerateObjectName shortening, leaving room for a 5-character suffix inside 63."""
    if len(name) > limit:
        name = name[: limit - 1]
    return name.rstrip("-.")


def label_value(value: str) -> str:
    """Names can be longer than a label value may be: keep readable ones, hash the rest."""
    if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
        return value
    digest = hashlib.md5(value.encode()).hexdigest()[:5]
    prefix = _shorten(re.sub(r"[^A-Za-z0-9_.-]", "-", value), 57).strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def job_name(input: RunPipelineInput) -> str:
    """Deterministic per run, so a retried activity finds the Job its earlier attempt created instead of starting
    another; the workflow gives every new run (and every backoff retry) a new run_id, hence a new Job, as Kratix
    does."""
    ctx = input.context
    base = f"ktx-{ctx.promise_name}"
    if ctx.workflow_type == "resource":
        base += f"-{ctx.object_name}"
    base += f"-{input.pipeline.metadata.name}"
    return f"{_shorten(base)}-{hashlib.md5(input.run_id.encode()).hexdigest()[:5]}"


def job_namespace(input: RunPipelineInput, defaults: JobDefaults) -> str:
    """The Promise's pipelineNamespace, where Kratix runs all its workflows; else ktx's pipelines namespace, which
    stands for both of Kratix's defaults (its own namespace for a Promise's, the resource's for a resource's)."""
    return input.context.pipeline_namespace or defaults.namespace


def pipeline_rbac_input(input: RunPipelineInput, defaults: JobDefaults) -> PipelineRbacInput:
    ctx, rbac = input.context, input.pipeline.spec.rbac
    namespace = job_namespace(input, defaults)
    return PipelineRbacInput(
        promise=ctx.promise_name,
        workflow_type=ctx.workflow_type,
        action=ctx.action,
        pipeline=input.pipeline.metadata.name,
        namespace=namespace,
        # Kratix grants the resource's kind across the cluster only when the pipeline runs outside the resource's
        # namespace, i.e. with pipelineNamespace; ktx's own pipelines namespace is where the resource's would be.
        resource_namespace=ctx.object_namespace if ctx.pipeline_namespace else namespace,
        group=ctx.object_group,
        plural=ctx.crd_plural,
        service_account=rbac.service_account if rbac else None,
        # Checked at apply; a Promise admitted before they were keeps the rules that still parse (fewer, never more).
        permissions=parse_permissions(rbac.permissions, "rbac.permissions")[0] if rbac else [],
    )


def pipeline_labels(input: RunPipelineInput) -> dict[str, str]:
    """What identifies a pipeline's Jobs across runs: retention keeps the newest N per these labels."""
    ctx = input.context
    labels = {
        "kratix.io/promise-name": label_value(ctx.promise_name),
        "kratix.io/workflow-type": ctx.workflow_type,
        "kratix.io/workflow-action": ctx.action,
        "kratix.io/pipeline-name": label_value(input.pipeline.metadata.name),
        **MANAGED_BY,
    }
    if ctx.workflow_type == "resource":
        # Every run shares one namespace, so the resource's namespace is part of its identity (Kratix adds it when
        # pipelineNamespace is set, for the same reason).
        labels["kratix.io/resource-name"] = label_value(ctx.object_name)
        labels["kratix.io/resource-namespace"] = label_value(ctx.object_namespace)
    return labels


def pod_labels(input: RunPipelineInput) -> dict[str, str]:
    """The Job's and its Pod template's labels: the Pipeline's own, then ktx's identifying ones."""
    return {**input.pipeline.metadata.labels, **pipeline_labels(input)}


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _mounts() -> list[dict[str, Any]]:
    return [
        {"name": "shared-input", "mountPath": "/kratix/input", "readOnly": True},
        {"name": "shared-output", "mountPath": "/kratix/output"},
        {"name": "shared-metadata", "mountPath": "/kratix/metadata"},
    ]


def _adapter(
    name: str, mode: str, defaults: JobDefaults, env: dict[str, str], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": defaults.adapter_image,
        "command": [*ADAPTER_COMMAND, mode],
        "env": _env(env),
        "volumeMounts": mounts,
        "securityContext": RESTRICTED,
        # Kratix gives its own containers (reader, work-writer, status-writer) DefaultResourceRequirements: the
        # platform's defaultContainerResources, else its built-in ones (pipeline_factory.go, cmd/main.go).
        "resources": effective_resources(None, defaults.resources),
    }
    if defaults.image_pull_policy:
        container["imagePullPolicy"] = defaults.image_pull_policy
    return container


def platform_api_secret_name(job: str) -> str:
    return f"{job}-platform-api"


def platform_api_secret(
    input: RunPipelineInput, job: str, defaults: JobDefaults, files: dict[str, bytes]
) -> dict[str, Any]:
    """The Secret a run's user containers find their ServiceAccount files in (activities/pipelines/platform_access.py),
    one per Job, removed with it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": platform_api_secret_name(job),
            "namespace": job_namespace(input, defaults),
            "labels": pipeline_labels(input),
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode() for key, value in files.items()},
    }


def job_manifest(
    input: RunPipelineInput,
    name: str,
    defaults: JobDefaults,
    input_url: str,
    result_url: str,
    platform_api: bool = False,
) -> dict[str, Any]:
    """One Job, one Pod: the reader fetches object.yaml, the user containers run in order as init containers sharing
    Kratix's three emptyDirs, and the writer uploads output/ and metadata/ as the Pod's only regular container.

    With `platform_api` the user containers reach the platform API as a Kratix pipeline reaches its API server:
    ServiceAccount files at Kubernetes' path, from the run's Secret (platform_api_secret), and KUBERNETES_SERVICE_*
    naming the platform API. Only the endpoint differs from Kratix: ktx's API, not the cluster's."""
    ctx, spec = input.context, input.pipeline.spec
    kratix_env = ctx.env(input.pipeline.metadata.name)
    # The Service's variables first, so a container's own env overrides them, as kubelet's do.
    first_env = {**defaults.platform_api_env, **kratix_env} if platform_api else kratix_env
    labels = pod_labels(input)
    user_containers = []
    for c in spec.containers:
        doc = c.to_doc()
        doc["env"] = _env(first_env) + doc.get("env", [])
        doc["volumeMounts"] = _mounts() + doc.get("volumeMounts", [])
        if platform_api:
            # At the path kubelet would mount the ServiceAccount's own token: its admission then adds none there.
            doc["volumeMounts"].append(
                {"name": PLATFORM_API_VOLUME, "mountPath": SERVICE_ACCOUNT_MOUNT, "readOnly": True}
            )
        for key, default in (
            ("imagePullPolicy", defaults.image_pull_policy),
            ("securityContext", defaults.container_security_context),
            ("resources", defaults.resources),
        ):
            if key not in doc and default:
                doc[key] = default
        user_containers.append(doc)
    reader = _adapter(
        READER,
        "reader",
        defaults,
        {**kratix_env, "KTX_INPUT_URL": input_url},
        [{"name": "shared-input", "mountPath": "/kratix/input"}],
    )
    writer = _adapter(
        WRITER,
        "writer",
        defaults,
        {**kratix_env, "KTX_RESULT_URL": result_url},
        [
            {"name": "shared-output", "mountPath": "/kratix/output", "readOnly": True},
            {"name": "shared-metadata", "mountPath": "/kratix/metadata", "readOnly": True},
            {"name": "ktx-scratch", "mountPath": "/tmp"},
        ],
    )
    custom_account = spec.rbac is not None and spec.rbac.service_account is not None
    if defaults.pipeline_rbac:
        # Kratix's account (the pipeline's own, or the one it names), whose token carries Kratix's RBAC; with the
        # platform API its token is the platform's, at the same path.
        account, automount = pipeline_rbac_input(input, defaults).service_account_name, not platform_api
    else:
        # The default account has no permissions; its token stays out of the Pod. A Pipeline naming its own
        # account wants the API, as in Kratix.
        account = spec.rbac.service_account if custom_account and spec.rbac else defaults.service_account
        automount = custom_account
    pod_spec: dict[str, Any] = {
        "restartPolicy": spec.restart_policy or "Never",
        "serviceAccountName": account,
        "automountServiceAccountToken": automount,
        "volumes": [
            {"name": v, "emptyDir": {}} for v in ("shared-input", "shared-output", "shared-metadata", "ktx-scratch")
        ]
        + (
            [
                {
                    "name": PLATFORM_API_VOLUME,
                    "projected": {
                        # kubelet's mode for ServiceAccount files: readable whatever user the container runs as.
                        "defaultMode": 0o644,
                        "sources": [
                            {
                                "secret": {
                                    "name": platform_api_secret_name(name),
                                    "items": [{"key": f, "path": f} for f in _SERVICE_ACCOUNT_FILES],
                                }
                            }
                        ],
                    },
                }
            ]
            if platform_api
            else []
        )
        + spec.volumes,
        "initContainers": [reader, *user_containers],
        "containers": [writer],
    }
    pull_secrets = defaults.image_pull_secrets + [
        s for s in spec.image_pull_secrets if s not in defaults.image_pull_secrets
    ]
    if pull_secrets:
        pod_spec["imagePullSecrets"] = pull_secrets
    if spec.node_selector:
        pod_spec["nodeSelector"] = spec.node_selector
    if spec.tolerations:
        pod_spec["tolerations"] = spec.tolerations
    api_version = f"{ctx.object_group}/{ctx.object_version}" if ctx.object_group else ctx.object_version
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": job_namespace(input, defaults),
            "labels": labels,
            "annotations": {
                "kratix.io/job-resource-namespace": ctx.object_namespace,
                "kratix.io/job-resource-name": ctx.object_name,
                "kratix.io/job-resource-kind": ctx.object_kind,
                "kratix.io/job-resource-api-version": api_version,
                "ktx.io/run-id": input.run_id,
            },
        },
        "spec": {
            # Retries are the workflow's (jobOptions.backoffLimit, visible in Temporal): each is a new Job.
            "backoffLimit": 0,
            # The run's deadline (ktx.io/pipeline-timeout): Kubernetes stops the Pod and fails the Job past it.
            "activeDeadlineSeconds": math.ceil(input.timeout_s),
            "template": {
                "metadata": {"labels": labels, "annotations": dict(input.pipeline.metadata.annotations)},
                "spec": pod_spec,
            },
        },
    }


def job_verdict(job: dict[str, Any]) -> str | None:
    """`Complete` or `Failed` once the Job has finished, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def deadline_exceeded(job: dict[str, Any]) -> bool:
    """Kubernetes failed the Job for outliving its activeDeadlineSeconds."""
    return any(
        c.get("type") == "Failed" and c.get("status") == "True" and c.get("reason") == "DeadlineExceeded"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def failed_condition_message(job: dict[str, Any]) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed":
            return f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".rstrip(": ")
    return "the Job failed"


def container_states(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers then containers, in the order they run."""
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def failed_container(pod: dict[str, Any]) -> tuple[str, str] | None:
    """The first container that exited non-zero, or is stuck waiting, with a message like the podman runner's."""
    for state in container_states(pod):
        terminated = (state.get("state") or {}).get("terminated")
        waiting = (state.get("state") or {}).get("waiting")
        if terminated and terminated.get("exitCode", 0) != 0:
            reason = terminated.get("reason")
            detail = f" ({reason})" if reason and reason != "Error" else ""
            return (
                state["name"],
                f"container {state['name']!r} ({state.get('image', '')}) exited with code "
                f"{terminated['exitCode']}{detail}",
            )
        if waiting and waiting.get("reason") in STUCK_REASONS:
            return (
                state["name"],
                (
                    f"container {state['name']!r} ({state.get('image', '')}) cannot start: {waiting['reason']}: "
                    f"{waiting.get('message', '')}"
                ).rstrip(": "),
            )
    return None


def stuck_container(pod: dict[str, Any]) -> str | None:
    for state in container_states(pod):
        waiting = (state.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") in STUCK_REASONS:
            return str(state["name"])
    return None


def finished_at(job: dict[str, Any]) -> str | None:
    """When the Job reached Complete or Failed (its condition's lastTransitionTime, else completionTime)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition.get("lastTransitionTime") or (job.get("status") or {}).get("completionTime")
    return None


def pods_expired(jobs: list[dict[str, Any]], ttl_s: int, now: datetime) -> list[str]:
    """The Jobs whose Pods Kratix's pod cleanup would delete at `now`: finished at least `ttl_s` ago."""
    expired = []
    for job in jobs:
        when = finished_at(job)
        if when and datetime.fromisoformat(when.replace("Z", "+00:00")) + timedelta(seconds=ttl_s) <= now:
            expired.append(job["metadata"]["name"])
    return expired


def jobs_to_prune(jobs: list[dict[str, Any]], keep: int) -> list[str]:
    """Kratix keeps the newest `numberOfJobsToKeep` per pipeline (values below 1 mean 5)."""
    keep = keep if keep >= 1 else 5
    ordered = sorted(
        jobs, key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]), reverse=True
    )
    return [j["metadata"]["name"] for j in ordered[keep:] if job_verdict(j) is not None]
