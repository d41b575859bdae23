"""Platform-wide behaviour settings: Kratix's `kratix` ConfigMap, read once when a worker starts."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from domain.pipeline_rules import DEFAULT_PIPELINE_TIMEOUT_S, MAX_PIPELINE_TIMEOUT_S, MIN_PIPELINE_TIMEOUT_S
from domain.pod_fields import KRATIX_DEFAULT_RESOURCES, check_resources

DEFAULT_RECONCILIATION_INTERVAL = 10 * 3600.0
# Kratix's DefaultMinimumFetchInterval: how old a Git state store's clone may be before a write fetches it again.
DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S = 5.0
# How often a state store may start a commit (worker/settings.py: KTX_STATE_STORE_COMMIT_INTERVAL).
DEFAULT_STATE_STORE_COMMIT_INTERVAL_S = 1.0
# Watches one API process serves at once, Kubernetes watches and the console's change stream alike
# (KTX_API_MAX_WATCHERS); one more is answered 429.
DEFAULT_MAX_WATCHERS = 512
# Kubernetes' Job default, which Kratix inherits when `defaultBackoffLimit` is unset.
KUBERNETES_BACKOFF_LIMIT = 6
# A day: Kratix leaves the value unbounded (int32 seconds); past a day a finished Pod is only clutter, and a bound keeps
# the arithmetic on timestamps honest.
MAX_POD_TTL_S = 24 * 3600


class PlatformConfig(BaseModel):
    reconciliation_interval_s: float = DEFAULT_RECONCILIATION_INTERVAL
    reconcile_after_failure: bool = True
    default_backoff_limit: int = KUBERNETES_BACKOFF_LIMIT
    # Every pipeline run's deadline unless its Pipeline's `ktx.io/pipeline-timeout` annotation says otherwise
    # (KTX_PIPELINE_TIMEOUT; the bounds and the default's reason are in domain/pipeline_rules.py).
    pipeline_timeout_s: float = Field(
        default=DEFAULT_PIPELINE_TIMEOUT_S, ge=MIN_PIPELINE_TIMEOUT_S, le=MAX_PIPELINE_TIMEOUT_S
    )
    # Kratix's workflows.defaultImagePullPolicy (unset: Kubernetes' defaulting, Always for `:latest` or no tag) and
    # workflows.defaultContainerResources, for every pipeline container that sets none (KTX_DEFAULT_IMAGE_PULL_POLICY,
    # KTX_DEFAULT_CONTAINER_RESOURCES as JSON or YAML).
    default_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    default_container_resources: dict[str, Any] = Field(default_factory=lambda: copy.deepcopy(KRATIX_DEFAULT_RESOURCES))
    # Processes one podman pipeline container may have (`--pids-limit`): Kubernetes sets this per node, not per
    # container; a fork bomb stops here instead of at the worker's limit. A thousand is tens of times what a
    # pipeline's tools (a shell, git, helm, kubectl) start at once.
    pipeline_pids_limit: int = Field(default=1024, ge=16, le=1 << 22)
    # Kubernetes retries a failed Job pod after 10s, 20s, 40s ... capped at 6 minutes.
    backoff_base_s: float = 10.0
    backoff_cap_s: float = 360.0
    # A failed delete pipeline is retried on this doubling schedule, so deletion never stays blocked unseen.
    delete_retry_base_s: float = 30.0
    delete_retry_cap_s: float = 600.0
    # A required Promise that is missing is looked for again this often, as Kratix requeues every 60 s.
    requirement_recheck_s: float = 60.0
    # Kratix's stateStoreReconciliationInterval: every Destination's files are rewritten this often to undo drift.
    state_store_reconciliation_interval_s: float = DEFAULT_RECONCILIATION_INTERVAL
    # A failed state-store write (or a not-ready store) is retried on this doubling schedule; Kratix requeues at 15 s.
    write_retry_base_s: float = 15.0
    write_retry_cap_s: float = 600.0
    # Kratix's workflows.jobOptions.podTTLSecondsAfterFinished: a finished pipeline Job's Pods are deleted once this
    # long has passed since it finished (None: kept with their Job, which retention prunes). Kubernetes runner only.
    # KTX_POD_TTL_SECONDS_AFTER_FINISHED.
    pod_ttl_seconds_after_finished: int | None = Field(default=None, gt=0, le=MAX_POD_TTL_S)
    # Kratix's resourceBindingVersionStrategy: what the binding of a new request gets, `latest` (floating: every
    # Promise change re-runs it) or the latest revision's version (pinned: it stays until its binding is edited).
    # KTX_RESOURCE_BINDING_VERSION_STRATEGY.
    resource_binding_version_strategy: Literal["floating", "pinned"] = "floating"

    @field_validator("default_container_resources")
    @classmethod
    def _resources(cls, value: dict[str, Any]) -> dict[str, Any]:
        errors = check_resources(value, "defaultContainerResources")
        if errors:
            raise ValueError("; ".join(str(e) for e in errors))
        return value

    def backoff(self, failures: int, base: float | None = None, cap: float | None = None) -> float:
        """Delay before the next attempt after `failures` consecutive failures (1-based).

        The exponent stops at 32, long past any cap: a delete pipeline is retried without end, and 2**1024 is past
        what a float holds (the workflow would fail on its 1025th failure)."""
        return min(
            (base if base is not None else self.backoff_base_s) * 2 ** min(max(failures - 1, 0), 32),
            cap if cap is not None else self.backoff_cap_s,
        )
