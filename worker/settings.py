"""Deployment settings, read from KTX_* environment variables, shared by the worker, the API and the CLI."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator

from domain.config import (
    DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S,
    DEFAULT_MAX_WATCHERS,
    DEFAULT_STATE_STORE_COMMIT_INTERVAL_S,
    PlatformConfig,
)
from domain.durations import parse_duration
from domain.kube.pipeline_token import MIN_KEY_BYTES
from domain.naming import pipeline_task_queue
from worker.home import ktx_home

if TYPE_CHECKING:
    from temporalio.client import Client


_BYTE_SUFFIXES = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000, "M": 1000**2, "G": 1000**3}


def parse_byte_size(text: str) -> int:
    """Bytes, or a Kubernetes quantity with a binary or decimal suffix (4Mi, 512Ki, 2M)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]i|[kMG])?\s*", text)
    if not match:
        raise ValueError(f"not a byte size: {text!r} (expected bytes or a quantity such as 4Mi)")
    return int(match.group(1)) * _BYTE_SUFFIXES[match.group(2) or ""]


class KubeRunnerSettings(BaseModel):
    """The Kubernetes pipeline runner: where Jobs go, what they run as, and how data gets in and out of their Pods."""

    namespace: str = "ktx-pipelines"
    service_account: str = "ktx-pipeline"
    # Kratix's ServiceAccount and RBAC per pipeline instead of `service_account` (KTX_KUBE_PIPELINE_RBAC); the worker
    # then needs deploy/components/pipeline-rbac.
    pipeline_rbac: bool = False
    # The ktx image: its `python -m worker.pipeline_adapter` moves object.yaml in and outputs out through the bucket.
    adapter_image: str = "ghcr.io/ktx-platform/ktx:0.1.0"
    jobs_to_keep: int = 5
    # How long a container may wait on an image or config that cannot start before the run fails.
    stuck_grace_s: float = 120.0
    # YAML with containerSecurityContext, resources, imagePullPolicy and imagePullSecrets applied to every Job.
    defaults_file: Path | None = None
    # The object store Pods exchange data through, via presigned URLs (Pods get no credentials).
    transfer_bucket: str = ""
    transfer_endpoint: str | None = None
    transfer_prefix: str = "ktx-transfer/"
    # The platform API as pipeline Pods reach it (the ktx API's Service, e.g. ktx-api.ktx-system.svc and its HTTPS
    # port): their KUBERNETES_SERVICE_HOST/PORT. Unset, Pods get no platform endpoint or token.
    platform_api_host: str | None = None
    platform_api_port: int = Field(default=443, ge=1, le=65535)

    @field_validator("transfer_endpoint")
    @classmethod
    def _blank_is_aws(cls, endpoint: str | None) -> str | None:
        return endpoint or None  # an empty KTX_TRANSFER_ENDPOINT means AWS S3 itself


class Settings(BaseModel):
    home: Path = Field(default_factory=ktx_home)
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # TLS to the Temporal frontend: on when any of these is set. A CA file for a private CA (else the system's roots),
    # a client certificate and key for mTLS, and the name the server's certificate must carry when it differs from the
    # host in temporal_address. Files, so the key never sits in the environment.
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_server_name: str | None = None
    task_queue: str = "ktx"
    container_runtime: str = "podman"
    container_run_flags: list[str] = Field(default_factory=list)
    # Pipeline containers on podman: `none` leaves them only a loopback interface, where the platform API's endpoint
    # is (activities/pipelines/container_endpoint.py).
    pipeline_network: Literal["default", "none"] = "default"
    # The API's HTTPS listener as the worker reaches it (host:port) when it is not this host's kube_api_port (the
    # worker and the API on different machines): every pipeline container gets an endpoint forwarded there, the
    # listener's CA (kube_api_tls_ca) as ca.crt, and a token. With neither, pipelines get none of it.
    pipeline_api_address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$")
    # The key pipeline tokens are signed with, shared by the worker and the API (KTX_PIPELINE_TOKEN_KEY_FILE; by
    # default pipeline-token.key in KTX_HOME, made on first use). In production, one Secret mounted in both.
    pipeline_token_key_file: Path | None = None
    # When the worker runs podman as root, container uid 0 is this host uid (and the next 65,535 follow), so even a
    # container running as root is an unprivileged user on the host. Rootless podman maps it to the invoking user
    # already. 0 turns the mapping off.
    pipeline_host_uid: int = Field(default=100000, ge=0)
    api_host: str = "127.0.0.1"
    api_port: int = 8181
    # Largest request body the API reads (KTX_API_MAX_BODY, bytes or 4Mi/512Ki); above Kubernetes' 3 MiB so a
    # multi-document apply of many Promises still fits in one request.
    api_max_body: int = 4 * 1024 * 1024
    # Largest single document (as JSON): it lives in Temporal payloads of at most 2 MB (KTX_API_MAX_DOCUMENT).
    api_max_document: int = 1024 * 1024
    # Watches and console change streams served at once (KTX_API_MAX_WATCHERS): each holds a connection and a queue.
    api_max_watchers: int = Field(default=DEFAULT_MAX_WATCHERS, ge=1, le=65536)
    # YAML list of token entries (name, role, namespaces, sha256); without it the API serves loopback hosts only.
    api_tokens_file: Path | None = None
    # A file holding one platform token in clear, accepted as "ktx-admin" on both ports: the embedded stack writes it
    # (0600) so `ktx kubeconfig` can hand kubectl a token. Production lists its tokens in api_tokens_file instead.
    api_admin_token_file: Path | None = None
    # The Kubernetes API over HTTPS, a second listener of the API process (all routes; every request needs a bearer
    # token there). Off unless a port is set; its host defaults to api_host. The certificate and key are PEM files
    # (a mounted Secret in production); the CA is what clients and pipelines verify the certificate with.
    kube_api_host: str | None = None
    kube_api_port: int | None = Field(default=None, ge=1, le=65535)
    kube_api_tls_cert: Path | None = None
    kube_api_tls_key: Path | None = None
    kube_api_tls_ca: Path | None = None
    # Extra names (IP addresses or DNS names) the embedded stack's certificate carries besides this machine's
    # (KTX_KUBE_API_CERT_SANS, comma-separated): an address pipelines or other hosts dial the listener by.
    kube_api_cert_sans: list[str] = Field(default_factory=list, max_length=32)
    # Pipelines running at once on this worker; a Promise change re-running thousands of resources queues behind it.
    pipeline_concurrency: int = 8
    # Of those, how many one tenant may hold at once (KTX_PIPELINE_TENANT_SLOTS): a tenant is a resource's namespace,
    # or a Promise for its own pipelines. Set it on a platform shared by teams (half is a good start): one team's hung
    # or slow runs then leave the rest to everybody else. Unset, all of them: a run over its share is handed back and
    # asks again on a backoff, which left slots idle in a one-team burst (100 requests in one namespace: 7.8x the
    # floor at half, 4.4x at seven of eight, 1.8x uncapped), so the cap waits for a scheduler that gives slots back.
    pipeline_tenant_slots: int | None = Field(default=None, ge=1)
    # The platform worker's Temporal slots. Workflow tasks at once (KTX_WORKER_WORKFLOW_TASKS): they share one Python
    # interpreter, so more than a few only queue inside the worker, where each task's 10 s timeout keeps running; on a
    # starved CPU they expired there and were thrown away ("Workflow task not found"), costing a retry each. Left on
    # the server, a task waits without a timeout. Activities at once (KTX_WORKER_ACTIVITIES): reads and state-store
    # writes, mostly waiting on I/O.
    worker_workflow_tasks: int = Field(default=8, ge=2, le=1000)
    worker_activities: int = Field(default=64, ge=1, le=1000)
    # Workflows kept in memory between their tasks (KTX_WORKER_CACHED_WORKFLOWS, Temporal's sticky cache): one that
    # is evicted replays its whole history at its next task. Size it above the number of live objects (Promises,
    # resources, Destinations, state stores); each costs a few hundred kB of worker memory.
    worker_cached_workflows: int = Field(default=1000, ge=0, le=100_000)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    # Where the off-platform actions' providers are (overridable for proxies, regional endpoints and tests).
    slack_api_url: str = "https://slack.com/api/"
    # Where people open the Temporal Web UI (KTX_TEMPORAL_UI_URL): the web console links each object's workflow there.
    temporal_ui_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^\s\"'<>]+$")
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_events_url: str = "https://events.pagerduty.com"
    # Where pipeline containers run: podman on this host, runc directly on this host from podman's images (`oci`,
    # opt-in: docs/pipeline-isolation.md says why), or one Kubernetes Job per pipeline.
    pipeline_runner: Literal["podman", "oci", "kubernetes"] = "podman"
    # The OCI runner's runtime (KTX_OCI_RUNTIME) and the seccomp profile it applies (KTX_OCI_SECCOMP_PROFILE,
    # containers-common's, which podman applies by default).
    oci_runtime: str = "runc"
    oci_seccomp_profile: Path = Path("/usr/share/containers/seccomp.json")
    kube: KubeRunnerSettings = Field(default_factory=lambda: KubeRunnerSettings())
    # With more than one worker, pipeline outputs must reach whichever worker writes them: a bucket they all share
    # (credentials from boto3's usual chain). Empty: outputs stay on this worker's disk (one worker only).
    artifact_bucket: str = ""
    artifact_endpoint: str | None = None
    artifact_prefix: str = "ktx-artifacts/"
    # Every interval the `artifact-gc` Temporal Schedule removes stored outputs no Promise or resource holds any more
    # and that were not stored or reused within the grace (0 turns the schedule off). With a shared bucket, each
    # worker also drops its local copies not used within the grace: they are downloaded again when needed.
    artifact_gc_interval_s: float = Field(default=6 * 3600, ge=0)
    artifact_gc_grace_s: float = Field(default=24 * 3600, ge=600)
    # Kratix's `git.minimumFetchInterval` (KTX_GIT_MINIMUM_FETCH_INTERVAL, a Go duration): a Git state store's clone is
    # fetched again before a write only once this old; 0 fetches before every write. A push the remote refuses
    # because the branch moved fetches at once whatever this says, and so does a write that would change nothing.
    git_minimum_fetch_interval_s: float = Field(default=DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S, ge=0, le=24 * 3600)
    # KTX_STATE_STORE_COMMIT_INTERVAL: a state store's writes start a commit (a Git push, a Bucket batch) at most once
    # this often, so requests finishing a few at a time share one (activities/stores/write_batcher.py); 0 commits as
    # soon as the previous batch is done. At most a minute: every write may wait this long.
    state_store_commit_interval_s: float = Field(default=DEFAULT_STATE_STORE_COMMIT_INTERVAL_S, ge=0, le=60)
    # Where Secret values live: 0600 files under secrets_dir, or Kubernetes Secrets (shared by API and worker pods).
    secret_provider: Literal["files", "kubernetes"] = "files"
    secrets_namespace: str = "ktx-system"
    # The worker's /healthz, /readyz and /metrics (the API serves them on its own port).
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = 8282
    # How long running activities may finish after SIGTERM before they are cancelled (a Kubernetes Job is then left
    # running for the activity's next attempt to resume; a podman container is stopped and re-run).
    worker_shutdown_grace_s: float = 0.0

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        values: dict[str, object] = {"home": ktx_home()}
        for field, var in [
            ("temporal_address", "KTX_TEMPORAL_ADDRESS"),
            ("temporal_namespace", "KTX_TEMPORAL_NAMESPACE"),
            ("temporal_tls_ca", "KTX_TEMPORAL_TLS_CA"),
            ("temporal_tls_cert", "KTX_TEMPORAL_TLS_CERT"),
            ("temporal_tls_key", "KTX_TEMPORAL_TLS_KEY"),
            ("temporal_tls_server_name", "KTX_TEMPORAL_TLS_SERVER_NAME"),
            ("task_queue", "KTX_TASK_QUEUE"),
            ("container_runtime", "KTX_CONTAINER_RUNTIME"),
            ("api_host", "KTX_API_HOST"),
            ("api_port", "KTX_API_PORT"),
            ("api_max_watchers", "KTX_API_MAX_WATCHERS"),
            ("slack_api_url", "KTX_SLACK_API_URL"),
            ("temporal_ui_url", "KTX_TEMPORAL_UI_URL"),
            ("pagerduty_api_url", "KTX_PAGERDUTY_API_URL"),
            ("pagerduty_events_url", "KTX_PAGERDUTY_EVENTS_URL"),
        ]:
            if var in env:
                values[field] = env[var]
        for field, var in [
            ("pipeline_runner", "KTX_PIPELINE_RUNNER"),
            ("secret_provider", "KTX_SECRET_PROVIDER"),
            ("secrets_namespace", "KTX_SECRETS_NAMESPACE"),
            ("worker_health_host", "KTX_WORKER_HEALTH_HOST"),
            ("worker_health_port", "KTX_WORKER_HEALTH_PORT"),
            ("artifact_bucket", "KTX_ARTIFACT_BUCKET"),
            ("artifact_endpoint", "KTX_ARTIFACT_ENDPOINT"),
            ("artifact_prefix", "KTX_ARTIFACT_PREFIX"),
            ("pipeline_network", "KTX_PIPELINE_NETWORK"),
            ("pipeline_host_uid", "KTX_PIPELINE_HOST_UID"),
            ("api_tokens_file", "KTX_API_TOKENS_FILE"),
            ("api_admin_token_file", "KTX_API_ADMIN_TOKEN_FILE"),
            ("kube_api_host", "KTX_KUBE_API_HOST"),
            ("kube_api_port", "KTX_KUBE_API_PORT"),
            ("kube_api_tls_cert", "KTX_KUBE_API_TLS_CERT"),
            ("kube_api_tls_key", "KTX_KUBE_API_TLS_KEY"),
            ("kube_api_tls_ca", "KTX_KUBE_API_TLS_CA"),
            ("pipeline_api_address", "KTX_PIPELINE_API_ADDRESS"),
            ("pipeline_token_key_file", "KTX_PIPELINE_TOKEN_KEY_FILE"),
            ("oci_runtime", "KTX_OCI_RUNTIME"),
            ("oci_seccomp_profile", "KTX_OCI_SECCOMP_PROFILE"),
        ]:
            if var in env:
                values[field] = env[var]
        if "KTX_TEMPORAL_TLS" in env:
            values["temporal_tls"] = env["KTX_TEMPORAL_TLS"].lower() in ("1", "true", "yes")
        if "KTX_API_MAX_BODY" in env:
            values["api_max_body"] = parse_byte_size(env["KTX_API_MAX_BODY"])
        if "KTX_API_MAX_DOCUMENT" in env:
            values["api_max_document"] = parse_byte_size(env["KTX_API_MAX_DOCUMENT"])
        if "KTX_ARTIFACT_GC_INTERVAL" in env:
            values["artifact_gc_interval_s"] = parse_duration(env["KTX_ARTIFACT_GC_INTERVAL"])
        if "KTX_ARTIFACT_GC_GRACE" in env:
            values["artifact_gc_grace_s"] = parse_duration(env["KTX_ARTIFACT_GC_GRACE"])
        if "KTX_GIT_MINIMUM_FETCH_INTERVAL" in env:
            values["git_minimum_fetch_interval_s"] = parse_duration(env["KTX_GIT_MINIMUM_FETCH_INTERVAL"])
        if "KTX_STATE_STORE_COMMIT_INTERVAL" in env:
            values["state_store_commit_interval_s"] = parse_duration(env["KTX_STATE_STORE_COMMIT_INTERVAL"])
        if "KTX_WORKER_SHUTDOWN_GRACE" in env:
            values["worker_shutdown_grace_s"] = parse_duration(env["KTX_WORKER_SHUTDOWN_GRACE"])
        kube: dict[str, object] = {}
        for field, var in [
            ("namespace", "KTX_KUBE_NAMESPACE"),
            ("service_account", "KTX_KUBE_SERVICE_ACCOUNT"),
            ("pipeline_rbac", "KTX_KUBE_PIPELINE_RBAC"),
            ("adapter_image", "KTX_KUBE_ADAPTER_IMAGE"),
            ("jobs_to_keep", "KTX_KUBE_JOBS_TO_KEEP"),
            ("stuck_grace_s", "KTX_KUBE_STUCK_GRACE"),
            ("defaults_file", "KTX_KUBE_DEFAULTS_FILE"),
            ("transfer_bucket", "KTX_TRANSFER_BUCKET"),
            ("transfer_endpoint", "KTX_TRANSFER_ENDPOINT"),
            ("transfer_prefix", "KTX_TRANSFER_PREFIX"),
            ("platform_api_host", "KTX_KUBE_PLATFORM_API_HOST"),
            ("platform_api_port", "KTX_KUBE_PLATFORM_API_PORT"),
        ]:
            if var in env:
                kube[field] = env[var]
        values["kube"] = KubeRunnerSettings.model_validate(kube)
        if "KTX_KUBE_API_CERT_SANS" in env:
            values["kube_api_cert_sans"] = [n.strip() for n in env["KTX_KUBE_API_CERT_SANS"].split(",") if n.strip()]
        if "KTX_CONTAINER_RUN_FLAGS" in env:
            values["container_run_flags"] = shlex.split(env["KTX_CONTAINER_RUN_FLAGS"])
        if "KTX_PIPELINE_CONCURRENCY" in env:
            values["pipeline_concurrency"] = env["KTX_PIPELINE_CONCURRENCY"]
        if "KTX_PIPELINE_TENANT_SLOTS" in env:
            values["pipeline_tenant_slots"] = env["KTX_PIPELINE_TENANT_SLOTS"]
        for field, var in [
            ("worker_workflow_tasks", "KTX_WORKER_WORKFLOW_TASKS"),
            ("worker_activities", "KTX_WORKER_ACTIVITIES"),
            ("worker_cached_workflows", "KTX_WORKER_CACHED_WORKFLOWS"),
        ]:
            if var in env:
                values[field] = env[var]
        platform: dict[str, object] = {}
        for field, var in [
            ("reconciliation_interval_s", "KTX_RECONCILIATION_INTERVAL"),
            ("backoff_base_s", "KTX_PIPELINE_BACKOFF"),
            ("delete_retry_base_s", "KTX_DELETE_RETRY"),
            ("state_store_reconciliation_interval_s", "KTX_STATE_STORE_RECONCILIATION_INTERVAL"),
            ("write_retry_base_s", "KTX_WRITE_RETRY"),
            ("pipeline_timeout_s", "KTX_PIPELINE_TIMEOUT"),
        ]:
            if var in env:
                platform[field] = parse_duration(env[var])
        if "KTX_DEFAULT_BACKOFF_LIMIT" in env:
            platform["default_backoff_limit"] = int(env["KTX_DEFAULT_BACKOFF_LIMIT"])
        if "KTX_DEFAULT_IMAGE_PULL_POLICY" in env:
            platform["default_image_pull_policy"] = env["KTX_DEFAULT_IMAGE_PULL_POLICY"] or None
        if "KTX_DEFAULT_CONTAINER_RESOURCES" in env:
            platform["default_container_resources"] = yaml.safe_load(env["KTX_DEFAULT_CONTAINER_RESOURCES"]) or {}
        if "KTX_PIPELINE_PIDS_LIMIT" in env:
            platform["pipeline_pids_limit"] = int(env["KTX_PIPELINE_PIDS_LIMIT"])
        # Kratix ignores a value of 0 or less (with a warning): no Pod cleanup.
        if int(env.get("KTX_POD_TTL_SECONDS_AFTER_FINISHED") or 0) > 0:
            platform["pod_ttl_seconds_after_finished"] = int(env["KTX_POD_TTL_SECONDS_AFTER_FINISHED"])
        if "KTX_RECONCILE_AFTER_FAILURE" in env:
            platform["reconcile_after_failure"] = env["KTX_RECONCILE_AFTER_FAILURE"].lower() in ("1", "true", "yes")
        if "KTX_RESOURCE_BINDING_VERSION_STRATEGY" in env:
            platform["resource_binding_version_strategy"] = env["KTX_RESOURCE_BINDING_VERSION_STRATEGY"]
        values["platform"] = PlatformConfig.model_validate(platform)
        return cls.model_validate(values)

    @property
    def tenant_slots(self) -> int:
        wanted = self.pipeline_tenant_slots or self.pipeline_concurrency
        return min(wanted, self.pipeline_concurrency)

    @property
    def pipeline_task_queue(self) -> str:
        return pipeline_task_queue(self.task_queue)

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def git_cache_dir(self) -> Path:
        return self.home / "git-cache"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"

    @property
    def oci_state_dir(self) -> Path:
        """The OCI runner's runc state and containers' root mount points, one directory per KTX_HOME: under /run,
        as a container's mapped root must pass through every parent of its root and KTX_HOME may be private."""
        return Path("/run/ktx-oci") / hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:16]

    @property
    def pipeline_api(self) -> tuple[str, int] | None:
        """Where the worker forwards pipelines' connections to the platform API."""
        if self.pipeline_api_address:
            host, _, port = self.pipeline_api_address.rpartition(":")
            return host.strip("[]"), int(port)
        if self.kube_api_port is None:
            return None
        host = self.kube_api_host or self.api_host
        # A listener on every address is reached on this host's loopback.
        return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), self.kube_api_port

    def pipeline_token_key(self) -> bytes:
        """The pipeline token key, made (32 random bytes, 0600) if there is none yet; whoever comes first makes it,
        the others read the same file."""
        path = self.pipeline_token_key_file or self.home / "pipeline-token.key"
        try:
            return _read_key(path)
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
        try:
            os.link(partial, path)  # fails if another process made it first: theirs is the key
        except FileExistsError:
            pass
        finally:
            partial.unlink()
        return _read_key(path)

    @property
    def secrets_dir(self) -> Path:
        return Path(os.environ.get("KTX_SECRETS_DIR", self.home / "secrets"))


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: a pipeline token key needs at least {MIN_KEY_BYTES} bytes, it has {len(key)}")
    return key


async def connect_client(settings: Settings, retry_config: Any = None) -> Client:
    # Imported here: the Temporal client is a fifth of a second of start-up that `ktx get` and friends never need.
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    # The pydantic converter must be on every client (API, worker, tests) or typed payloads will not round-trip.
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=temporal_tls(settings),
        retry_config=retry_config,
    )


def temporal_tls(settings: Settings) -> Any:
    """False (plaintext), or the TLS configuration the settings describe, with every file read now."""
    from temporalio.service import TLSConfig

    files = (settings.temporal_tls_ca, settings.temporal_tls_cert, settings.temporal_tls_key)
    if not settings.temporal_tls and not settings.temporal_tls_server_name and not any(files):
        return False
    if (settings.temporal_tls_cert is None) != (settings.temporal_tls_key is None):
        raise SystemExit(
            "KTX_TEMPORAL_TLS_CERT and KTX_TEMPORAL_TLS_KEY go together: a client certificate needs its key"
        )

    def read(path: Path | None, variable: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SystemExit(f"{variable} {path}: {exc.strerror}") from None

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca, "KTX_TEMPORAL_TLS_CA"),
        client_cert=read(settings.temporal_tls_cert, "KTX_TEMPORAL_TLS_CERT"),
        client_private_key=read(settings.temporal_tls_key, "KTX_TEMPORAL_TLS_KEY"),
        domain=settings.temporal_tls_server_name,
    )
