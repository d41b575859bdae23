"""Wires workflows and activities into a Temporal worker."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from datetime import timedelta

import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.artifacts.gc import ArtifactGcActivities
from activities.artifacts.dry_run_diff import DryRunActivities
from activities.artifacts.store import ArtifactStore
from activities.platform.catalog import CatalogActivities
from activities.platform.config import ConfigActivities
from activities.platform.dry_run_components import DryRunComponentActivities
from activities.kube_client import kube_api_client
from activities.pipelines.kube_runner import KubeJobRunner
from activities.actions.pagerduty import PagerDutyActivities
from activities.pipelines.job import JobDefaults
from activities.pipelines.activity import PipelineActivities, PipelineRunner, TenantSlots
from activities.platform.apply import PlatformApplyActivities
from activities.platform.promise_release import PromiseReleaseActivities
from activities.pipelines.container_endpoint import ENDPOINT_HOST, ENDPOINT_PORT
from activities.pipelines.oci_runtime import SLIRP4NETNS, OciRuntime
from activities.pipelines.platform_access import PlatformAccess
from activities.pipelines.podman_runner import ContainerRuntime, Isolation, PodmanRunner
from activities.pipelines.workspaces import Workspaces
from activities.platform.redelivery import RedeliveryActivities
from activities.platform.signals import SignalActivities
from activities.stores.secrets import secret_store_for
from activities.actions.slack import SlackActivities
from activities.stores.state_stores import StateStoreActivities
from activities.stores.write_batcher import Pacing
from activities.artifacts.object_bucket import ObjectBucket
from activities.actions.zendesk import ZendeskActivities
from service.platform import Platform
from worker.health import HealthServer
from worker.housekeeping import ensure_artifact_gc_schedule, sweep_runs_forever, trim_cache_forever
from worker.settings import Settings, connect_client
from workflows.artifact_gc import ArtifactGcWorkflow
from workflows.catalog import CatalogWorkflow
from workflows.destination import DestinationWorkflow
from workflows.dry_run import DryRunWorkflow
from workflows.promise import PromiseWorkflow
from workflows.promise_release import PromiseReleaseWorkflow
from workflows.resource import ResourceWorkflow
from workflows.rollout import RolloutWorkflow
from activities.platform.search_attributes import ALL as SEARCH_ATTRIBUTES
from workflows.state_store import StateStoreWorkflow

log = logging.getLogger(__name__)
PIPELINE_HEARTBEAT_THROTTLE = timedelta(seconds=5)
# How long a worker may take to stop once its running activities had their grace. Shutdown waits on the server to end
# the worker's long polls (ShutdownWorker); when that call fails, sdk-core can wait on a poll forever
# (temporalio/sdk-rust#1297), which kept a pod Terminating and once held a test's teardown for 15 minutes.
STOP_DEADLINE_S = 30.0
WORKFLOWS = [
    CatalogWorkflow,
    PromiseWorkflow,
    PromiseReleaseWorkflow,
    ResourceWorkflow,
    DestinationWorkflow,
    StateStoreWorkflow,
    ArtifactGcWorkflow,
    DryRunWorkflow,
    RolloutWorkflow,
]
# The sandbox imports a workflow's module afresh for every workflow it starts or replays into its cache: with a
# hundred requests applied at once that was over a quarter of the worker's CPU (bench/overhead.py, n=100: 10.2 s, and
# 7.5 s passed through). Passed through, the project's modules are imported once and shared, as the SDK's are, so two
# things the sandbox gave are kept another way: no module of workflows/, domain/ or activities/ holds mutable module
# state (tests/unit/test_workflow_modules.py), and the replay tests run every recorded history in the default, strict
# sandbox, where a clock, randomness or I/O call on a workflow's path fails.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows", "domain", "activities")
)


def artifact_store(settings: Settings) -> ArtifactStore:
    shared = None
    if settings.artifact_bucket:
        shared = ObjectBucket.connect(
            settings.artifact_bucket, settings.artifact_endpoint or None, settings.artifact_prefix
        )
    return ArtifactStore(settings.artifacts_dir, shared)


def build_activities(client: Client, settings: Settings, artifacts: ArtifactStore) -> list:  # type: ignore[type-arg]
    secrets = secret_store_for(settings)
    stores = StateStoreActivities(
        artifacts,
        settings.git_cache_dir,
        secrets,
        settings.git_minimum_fetch_interval_s,
        Pacing(interval_s=settings.state_store_commit_interval_s),
    )
    catalog = CatalogActivities(client)
    config = ConfigActivities(settings.platform)
    # The apply-back activity applies through the service, as the API does: handed in, so activities import no
    # layer above their own.
    service = Platform(client, settings.task_queue, secrets, pipeline_runner=settings.pipeline_runner)
    platform_apply = PlatformApplyActivities(service, artifacts)
    # A release installs its Promise through the same service, and reads its Secret in the activity itself.
    releases = PromiseReleaseActivities(service, secrets)
    redelivery = RedeliveryActivities(client)
    signals = SignalActivities(client)
    slack = SlackActivities(secrets, settings.slack_api_url)
    pagerduty = PagerDutyActivities(secrets, settings.pagerduty_api_url, settings.pagerduty_events_url)
    zendesk = ZendeskActivities(secrets)
    gc = ArtifactGcActivities(client, artifacts)
    dry_runs = DryRunActivities(client, artifacts)
    dry_run_components = DryRunComponentActivities(client, artifacts)
    return [
        dry_runs.diff_dry_run,
        dry_run_components.find_components,
        gc.collect_artifact_garbage,
        platform_apply.apply_to_platform,
        releases.install_promise_release,
        releases.delete_released_promises,
        stores.write_state_store,
        stores.check_state_store,
        redelivery.redeliver_to_owners,
        signals.signal_each,
        slack.slack_post,
        pagerduty.pagerduty_ensure_rota,
        pagerduty.pagerduty_incident,
        pagerduty.pagerduty_remove_rota,
        zendesk.zendesk_ticket,
        catalog.read_catalog,
        catalog.read_promise,
        catalog.list_promise_resources,
        catalog.read_required_promises,
        catalog.list_dependent_promises,
        config.read_platform_config,
    ]


def job_defaults(settings: Settings) -> JobDefaults:
    kube = settings.kube
    extra = yaml.safe_load(kube.defaults_file.read_text()) or {} if kube.defaults_file else {}
    return JobDefaults.model_validate(
        {
            "namespace": kube.namespace,
            "service_account": kube.service_account,
            "pipeline_rbac": kube.pipeline_rbac,
            "pod_ttl_seconds_after_finished": settings.platform.pod_ttl_seconds_after_finished,
            "adapter_image": kube.adapter_image,
            # The defaults file (deploy/base/kube-defaults.yaml) wins; else Kratix's workflow defaults.
            "image_pull_policy": extra.get("imagePullPolicy") or settings.platform.default_image_pull_policy,
            "image_pull_secrets": extra.get("imagePullSecrets") or [],
            "container_security_context": extra.get("containerSecurityContext"),
            "resources": extra.get("resources") or settings.platform.default_container_resources,
        }
    )


def pipeline_runner(settings: Settings) -> PipelineRunner:
    logs = settings.logs_dir
    if settings.pipeline_runner == "kubernetes":
        if not settings.kube.transfer_bucket:
            raise SystemExit("KTX_PIPELINE_RUNNER=kubernetes needs KTX_TRANSFER_BUCKET: Pods exchange data through it")
        transfer = ObjectBucket.connect(
            settings.kube.transfer_bucket, settings.kube.transfer_endpoint, settings.kube.transfer_prefix
        )
        defaults = job_defaults(settings)
        kube_access = (
            platform_access(settings, settings.kube.platform_api_host, settings.kube.platform_api_port)
            if settings.kube.platform_api_host
            else None
        )
        if kube_access is not None:
            defaults = defaults.model_copy(update={"platform_api_env": kube_access.env()})
        return KubeJobRunner(
            kube_api_client(),
            transfer,
            defaults,
            settings.kube.jobs_to_keep,
            logs,
            stuck_grace_s=settings.kube.stuck_grace_s,
            access=kube_access,
        )
    isolation = Isolation(
        network=settings.pipeline_network, host_uid=settings.pipeline_host_uid if os.geteuid() == 0 else 0
    )
    runtime = ContainerRuntime(settings.container_runtime, settings.container_run_flags, isolation)
    if settings.pipeline_runner == "oci":
        if os.geteuid() != 0:
            raise SystemExit("KTX_PIPELINE_RUNNER=oci needs the worker to run as root: it mounts containers' roots")
        if not settings.oci_seccomp_profile.is_file():
            raise SystemExit(f"KTX_PIPELINE_RUNNER=oci: no seccomp profile at {settings.oci_seccomp_profile}")
        if settings.pipeline_network == "default" and not Path(SLIRP4NETNS).is_file():
            raise SystemExit(
                "KTX_PIPELINE_RUNNER=oci gives pipelines their default network with slirp4netns, not found at "
                f"{SLIRP4NETNS}: install it, or set KTX_PIPELINE_NETWORK=none"
            )
        runtime = OciRuntime(
            settings.container_runtime,
            settings.oci_runtime,
            settings.oci_state_dir,
            isolation,
            settings.oci_seccomp_profile,
        )
    secrets = secret_store_for(settings)  # what env, envFrom, secret volumes and imagePullSecrets read
    address, access = settings.pipeline_api, platform_access(settings, ENDPOINT_HOST, ENDPOINT_PORT)
    if address is not None and access is not None:
        # The endpoint is opened inside each container's network namespace (setns), before podman starts it.
        if os.geteuid() != 0 or Path(settings.container_runtime).name != "podman":
            log.warning(
                "pipelines get no platform API endpoint: opening it in a container's network namespace needs the "
                "worker to run as root with rootful podman (runtime %s, uid %d)",
                settings.container_runtime,
                os.geteuid(),
            )
            return PodmanRunner(runtime, logs, secrets=secrets, config=settings.platform)
        return PodmanRunner(runtime, logs, access, address, secrets=secrets, config=settings.platform)
    return PodmanRunner(runtime, logs, secrets=secrets, config=settings.platform)


def platform_access(settings: Settings, service_host: str, service_port: int) -> PlatformAccess | None:
    """What pipelines get to reach the platform API, when the API serves Kubernetes over HTTPS."""
    ca = settings.kube_api_tls_ca or settings.kube_api_tls_cert
    if ca is None:
        return None
    return PlatformAccess(
        token_key=settings.pipeline_token_key(),
        ca_pem=ca.read_bytes(),
        service_host=service_host,
        service_port=service_port,
    )


class PlatformWorkers:
    """The platform worker and its pipeline worker, started and stopped together."""

    def __init__(self, client: Client, settings: Settings):
        artifacts = artifact_store(settings)  # one per worker: pipelines put trees in it, writes read them back
        self.artifacts, self.settings = artifacts, settings
        self.trimming: asyncio.Task[None] | None = None
        self.sweeping: asyncio.Task[None] | None = None
        self.workspaces = Workspaces(settings.workspaces_dir)
        pipelines = PipelineActivities(
            pipeline_runner(settings), artifacts, self.workspaces, TenantSlots(settings.tenant_slots)
        )
        grace = timedelta(seconds=settings.worker_shutdown_grace_s)
        self.workers = [
            Worker(
                client,
                task_queue=settings.task_queue,
                workflows=WORKFLOWS,
                workflow_runner=WORKFLOW_RUNNER,
                activities=build_activities(client, settings, artifacts),
                max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
                max_concurrent_activities=settings.worker_activities,
                max_cached_workflows=settings.worker_cached_workflows,
                graceful_shutdown_timeout=grace,
            ),
            # Cancellation reaches an activity only in a heartbeat's answer: a short throttle stops a cancelled
            # pipeline's containers (or Job) within seconds instead of up to 48 s.
            Worker(
                client,
                task_queue=settings.pipeline_task_queue,
                activities=[pipelines.run_pipeline, pipelines.delete_promise_pipeline_rbac],
                max_concurrent_activities=settings.pipeline_concurrency,
                max_heartbeat_throttle_interval=PIPELINE_HEARTBEAT_THROTTLE,
                default_heartbeat_throttle_interval=PIPELINE_HEARTBEAT_THROTTLE,
                graceful_shutdown_timeout=grace,
            ),
        ]

    async def __aenter__(self) -> "PlatformWorkers":
        for worker in self.workers:
            await worker.__aenter__()
        self.trimming = asyncio.create_task(trim_cache_forever(self.artifacts, self.settings))
        self.sweeping = asyncio.create_task(sweep_runs_forever(self.workspaces, self.settings.logs_dir))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in (self.trimming, self.sweeping):
            if task is not None:
                task.cancel()
        deadline = self.settings.worker_shutdown_grace_s + STOP_DEADLINE_S
        for worker in reversed(self.workers):
            await stop_within(worker, deadline, exc)

    @property
    def running(self) -> bool:
        return all(worker.is_running for worker in self.workers)


async def stop_within(worker: Worker, deadline_s: float, exc: tuple[object, ...] = (None, None, None)) -> bool:
    """Stops an entered worker; False, with the reason logged, if it did not stop within the deadline. A stuck stop is
    left behind rather than waited on: every task it holds is re-delivered by the server to a live worker anyway."""
    try:
        await asyncio.wait_for(worker.__aexit__(*exc), deadline_s)  # type: ignore[arg-type]
    except TimeoutError:
        log.error(
            "the worker on task queue %s did not stop within %.1fs; leaving it behind (temporalio/sdk-rust#1297)",
            worker.task_queue,
            deadline_s,
        )
        return False
    return True


def build_worker(client: Client, settings: Settings) -> PlatformWorkers:
    return PlatformWorkers(client, settings)


async def ensure_search_attributes(client: Client) -> None:
    """Upserting an unregistered search attribute fails workflow tasks forever, so register them first."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        k.name: IndexedValueType.ValueType(k.indexed_value_type)
        for k in SEARCH_ATTRIBUTES
        if k.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    client = await connect_client(settings)
    await ensure_search_attributes(client)
    await ensure_artifact_gc_schedule(client, settings)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with HealthServer(client, worker, settings.worker_health_host, settings.worker_health_port), worker:
        logging.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
