"""The Kubernetes downward API on the podman runner: the Pod fields a pipeline container's `env[].valueFrom.fieldRef`
and `resourceFieldRef` read, given as the Kubernetes runner's Pod would have them.

The "Pod" is the run: its name is the run's Job name with a suffix, as the Job controller names a Pod; its namespace,
ServiceAccount and labels are those the same run gets on the Kubernetes runner (its token's namespace and account,
activities/pipelines/platform_access.py; the Job template's labels plus the ones the Job controller adds); its uid is
one per run. What a container on the worker's host has no value for (a node, a Pod IP) is refused at apply
(domain/pod_fields.py podman_refusals), and fails the run if a Promise was admitted without that check.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from activities.pipelines.job import job_name, pod_labels
from activities.pipelines.models import RunPipelineInput
from domain.kube.pipeline_token import pipeline_namespace, service_account_name
from domain.pod_fields import label_subscript, podman_env_refusal, resource_value

# The Job controller's Pod name suffix alphabet (apimachinery's rand.String: no vowels, no 0/1/3).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Unavailable(Exception):
    """A Pod field the podman runner cannot give: the reason names it."""


@dataclass(frozen=True)
class PodFacts:
    name: str
    namespace: str
    uid: str
    service_account: str
    labels: dict[str, str]
    annotations: dict[str, str]
    # Each container's effective resources, and the host's capacity for a limit left unset (node allocatable).
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity: dict[str, Decimal] = field(default_factory=dict)

    def value(self, source: dict[str, Any], container: str) -> str:
        """The value of a fieldRef or resourceFieldRef (checked at apply) for `container`; Unavailable if none."""
        reason = podman_env_refusal(source)
        if reason:
            raise Unavailable(reason)
        ref = source.get("fieldRef")
        if ref is not None:
            path = str(ref["fieldPath"])
            subscript = label_subscript(path)
            if subscript is not None:
                kind, key = subscript
                # The downward API gives "" for a key the Pod does not carry.
                return (self.labels if kind == "labels" else self.annotations).get(key, "")
            return {
                "metadata.name": self.name,
                "metadata.namespace": self.namespace,
                "metadata.uid": self.uid,
                "spec.serviceAccountName": self.service_account,
            }[path]
        ref = source["resourceFieldRef"]
        target = ref.get("containerName") or container
        if target not in self.resources:
            raise Unavailable(f'resourceFieldRef: container "{target}" not found')
        return resource_value(ref, self.resources[target], self.capacity)


def pod_facts(input: RunPipelineInput, resources: dict[str, dict[str, Any]], workspace: Path) -> PodFacts:
    ctx, rbac = input.context, input.pipeline.spec.rbac
    job = job_name(input)
    digest = hashlib.sha256(input.run_id.encode()).digest()
    suffix = "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:5])
    # A Pod's and its Job's uids are random, one each: derived from the run, one per run.
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ktx-pod:{input.run_id}"))
    job_uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ktx-job:{input.run_id}"))
    labels = {
        **pod_labels(input),
        # What the Job controller adds to its Pods' labels.
        "batch.kubernetes.io/controller-uid": job_uid,
        "batch.kubernetes.io/job-name": job,
        "controller-uid": job_uid,
        "job-name": job,
    }
    return PodFacts(
        name=f"{job}-{suffix}",
        namespace=pipeline_namespace(ctx.workflow_type, ctx.object_namespace, ctx.pipeline_namespace),
        uid=uid,
        service_account=service_account_name(
            ctx.promise_name,
            ctx.workflow_type,
            ctx.action,
            input.pipeline.metadata.name,
            rbac.service_account if rbac else None,
        ),
        labels=labels,
        annotations=dict(input.pipeline.metadata.annotations),
        resources=resources,
        capacity=host_capacity(workspace),
    )


def host_capacity(workspace: Path) -> dict[str, Decimal]:
    """The worker host's CPUs (those the worker may use), memory and the workspace's file system size: a container
    with no limit may use that much, as a Pod with no limit may use its node's allocatable amount."""
    capacity = {"cpu": Decimal(len(os.sched_getaffinity(0)))}
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    capacity["memory"] = Decimal(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    stat = os.statvfs(workspace)
    capacity["ephemeral-storage"] = Decimal(stat.f_blocks * stat.f_frsize)
    return capacity
