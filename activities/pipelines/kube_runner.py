"""The Kubernetes pipeline runner: one Job per pipeline run, watched until it finishes, its result fetched from the
transfer bucket. The Job's shape is activities/pipelines/job.py; this module does the I/O."""

from __future__ import annotations

import asyncio
import json
import logging
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.pipelines.job import (
    ADAPTER_CONTAINERS,
    JobDefaults,
    container_states,
    deadline_exceeded,
    failed_condition_message,
    failed_container,
    MANAGED_BY,
    job_manifest,
    job_name,
    job_namespace,
    job_verdict,
    jobs_to_prune,
    pipeline_labels,
    pipeline_rbac_input,
    pods_expired,
    platform_api_secret,
    platform_api_secret_name,
    stuck_container,
)
from activities.pipelines.models import ContainerRun, ContainersOutcome, RunPipelineInput
from activities.pipelines.platform_access import PlatformAccess
from activities.pipelines.podman_runner import log_path
from activities.artifacts.object_bucket import ObjectBucket
from domain.pipeline_rbac import (
    PROMISE_NAME,
    object_key,
    owned_by_kratix,
    pipeline_rbac_objects,
    stale_objects,
    user_permission_labels,
)
from domain.pipeline_rules import timed_out

log = logging.getLogger(__name__)
LOG_TAIL_BYTES = 2048
LOG_LINES = 500


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _safe_member(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """Only regular files and directories under output/ and metadata/; anything else in the archive is dropped."""
    if (
        not (member.isfile() or member.isdir())
        or member.name.startswith("/")
        or member.name.split("/", 1)[0] not in ("output", "metadata")
    ):
        log.warning("dropped unsafe entry from a pipeline result: %s", member.name)
        return None
    try:
        return tarfile.data_filter(member, path)
    except tarfile.FilterError:
        log.warning("dropped unsafe path from a pipeline result: %s", member.name)
        return None


class KubeJobRunner:
    name = "kubernetes"

    def __init__(
        self,
        api: client.ApiClient,
        transfer: ObjectBucket,
        defaults: JobDefaults,
        jobs_to_keep: int,
        logs_dir: Path,
        poll_interval_s: float = 1.0,
        max_poll_interval_s: float = 5.0,
        stuck_grace_s: float = 120.0,
        access: PlatformAccess | None = None,
    ):
        """With `access`, each run's user containers get the platform API (job_manifest's platform_api) through a
        Secret made for the run and deleted once it is settled; `defaults.platform_api_env` names the endpoint."""
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.transfer = transfer
        self.defaults = defaults
        self.jobs_to_keep = jobs_to_keep
        self.logs_dir = logs_dir
        self.poll_interval_s = poll_interval_s
        self.max_poll_interval_s = max_poll_interval_s
        self.stuck_grace_s = stuck_grace_s
        self.access = access

    @staticmethod
    async def _read(call: Any, *args: Any, **kwargs: Any) -> Any:
        """The API's JSON as plain dicts: the runner reads a few fields, so the client's models (and their strict
        validation of fields we never look at) are skipped."""
        response = await asyncio.to_thread(call, *args, _preload_content=False, **kwargs)
        return json.loads(response.data)

    async def run(self, input: RunPipelineInput, workspace: Path) -> ContainersOutcome:
        name, ns = job_name(input), job_namespace(input, self.defaults)
        try:
            outcome = await self._run(input, workspace, name, ns)
            return outcome.model_copy(update={"notes": [*outcome.notes, *self._not_applied(input)]})
        except ApiException as exc:
            if exc.status != 403:
                raise
            # Retrying the activity would be refused the same way: a failed run naming what the worker may not do,
            # which the workflow retries on its backoff (the rights may be granted meanwhile).
            await asyncio.to_thread(self.transfer.remove, self.transfer.key(name, "object.yaml"))
            return ContainersOutcome(message=forbidden_reason(exc, ns, bool(input.context.pipeline_namespace)))

    def _not_applied(self, input: RunPipelineInput) -> list[str]:
        """rbac.permissions reach a Pod two ways: Kratix's RBAC objects on the cluster (KTX_KUBE_PIPELINE_RBAC) or
        the platform API's token (KTX_KUBE_PLATFORM_API_HOST). With neither, say so rather than drop them."""
        rbac = input.pipeline.spec.rbac
        if rbac is None or not rbac.permissions or self.defaults.pipeline_rbac or self.access is not None:
            return []
        return [
            "spec.rbac.permissions: not applied on the kubernetes runner without KTX_KUBE_PIPELINE_RBAC or "
            "KTX_KUBE_PLATFORM_API_HOST (the Pod has no token that carries them)"
        ]

    async def _run(self, input: RunPipelineInput, workspace: Path, name: str, ns: str) -> ContainersOutcome:
        input_key, result_key = self.transfer.key(name, "object.yaml"), self.transfer.key(name, "result.tar.gz")
        # Clean up only once the Job is settled (finished, or deleted on cancel): after a transient error or a worker
        # shutdown the next attempt resumes the same Job, which still needs its objects in the bucket.
        settled = False
        try:
            if await self._read_job(name, ns) is None:
                if self.defaults.pipeline_rbac:
                    await self._apply_rbac(input)
                await asyncio.to_thread(
                    self.transfer.put, input_key, (workspace / "input" / "object.yaml").read_bytes()
                )
                if self.access is not None:
                    # Minted now, inside the activity: the token reaches the Pod through the cluster only.
                    files = self.access.files(input)
                    await self._put_secret(platform_api_secret(input, name, self.defaults, files))
                manifest = job_manifest(
                    input,
                    name,
                    self.defaults,
                    self.transfer.url("GET", input_key),
                    self.transfer.url("PUT", result_key),
                    platform_api=self.access is not None,
                )
                await self._create(manifest)
            else:
                log.info("resuming Job %s/%s left by an earlier attempt", ns, name)
            try:
                verdict, job, last_pod = await self._wait(name, ns)
            except asyncio.CancelledError:
                if not activity.is_worker_shutdown():
                    await self._delete(name, ns)
                    settled = True
                raise
            settled = True
            pod = last_pod or await self._latest_pod(name, ns)
            runs = await self._container_runs(input, ns, pod)
            if verdict == "Complete":
                return await self._collect(result_key, workspace, runs)
            return self._failure(f"{ns}/{name}", job, pod, runs)
        finally:
            if settled:
                await asyncio.to_thread(self.transfer.remove, input_key, result_key)
                if self.access is not None:
                    await self._delete_secret(platform_api_secret_name(name), ns)
                await self._prune(input, ns)

    def _calls(self, kind: str) -> dict[str, Any]:
        """The client's create/replace/delete/read for one of the kinds domain/pipeline_rbac.py makes, each taking
        (name, namespace) for namespaced kinds and (name) for cluster-scoped ones, as the client does."""
        names = {
            "ServiceAccount": (self.core, "namespaced_service_account"),
            "Role": (self.rbac, "namespaced_role"),
            "RoleBinding": (self.rbac, "namespaced_role_binding"),
            "ClusterRole": (self.rbac, "cluster_role"),
            "ClusterRoleBinding": (self.rbac, "cluster_role_binding"),
        }
        api, suffix = names[kind]
        return {verb: getattr(api, f"{verb}_{suffix}") for verb in ("create", "replace", "delete", "read")}

    async def _apply_rbac(self, input: RunPipelineInput) -> None:
        """Kratix's ServiceAccount and RBAC for the pipeline, before its Job: user-permission objects no longer wanted
        deleted, then each object created, or updated when it exists. As in Kratix a failure is logged, not fatal:
        the Job then shows what it lacks (no Pod without its account, a 403 in its log)."""
        rbac = pipeline_rbac_input(input, self.defaults)
        desired = pipeline_rbac_objects(rbac)
        selector = _selector(user_permission_labels(rbac))
        try:
            existing = []
            for kind, lister in (
                ("Role", self.rbac.list_role_for_all_namespaces),
                ("RoleBinding", self.rbac.list_role_binding_for_all_namespaces),
                ("ClusterRole", self.rbac.list_cluster_role),
                ("ClusterRoleBinding", self.rbac.list_cluster_role_binding),
            ):
                items = (await self._read(lister, label_selector=selector)).get("items") or []
                existing += [{**item, "kind": kind} for item in items]  # a list's items carry no kind
            for obj in stale_objects(desired, existing):
                await self._rbac_call(obj, "delete")
        except ApiException as exc:
            log.warning("could not delete stale RBAC of pipeline %s: %s %s", rbac.id, exc.status, exc.reason)
        for obj in desired:
            try:
                await self._put_rbac(obj)
            except ApiException as exc:
                kind, ns, name = object_key(obj)
                log.warning(
                    "could not apply %s %s/%s for pipeline %s: %s %s", kind, ns, name, rbac.id, exc.status, exc.reason
                )

    async def delete_promise_rbac(self, promise: str) -> None:
        """Kratix's cleanup when a Promise is deleted: every ServiceAccount, Role, ClusterRole and binding labelled
        with it, in every namespace (a named account someone else made carries no such label and stays)."""
        if not self.defaults.pipeline_rbac:
            return
        selector = _selector({PROMISE_NAME: promise})
        for kind, lister in (
            ("ClusterRoleBinding", self.rbac.list_cluster_role_binding),
            ("ClusterRole", self.rbac.list_cluster_role),
            ("RoleBinding", self.rbac.list_role_binding_for_all_namespaces),
            ("Role", self.rbac.list_role_for_all_namespaces),
            ("ServiceAccount", self.core.list_service_account_for_all_namespaces),
        ):
            for item in (await self._read(lister, label_selector=selector)).get("items") or []:
                await self._rbac_call({**item, "kind": kind}, "delete")

    async def _rbac_call(self, obj: dict[str, Any], verb: str, body: bool = False) -> Any:
        kind, ns, name = object_key(obj)
        args: list[Any] = [] if verb == "create" else [name]
        if ns:
            args.append(ns)
        if body:
            args.append(obj)
        try:
            return await self._read(self._calls(kind)[verb], *args)
        except ApiException as exc:
            if verb == "delete" and exc.status == 404:
                return None
            raise

    async def _put_rbac(self, obj: dict[str, Any]) -> None:
        try:
            await self._rbac_call(obj, "create", body=True)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        if obj["kind"] == "ServiceAccount" and not owned_by_kratix(await self._rbac_call(obj, "read")):
            return  # a named account someone else made: used as it is
        try:
            await self._rbac_call(obj, "replace", body=True)
        except ApiException as exc:
            # A binding's roleRef cannot change: Kubernetes' answer is to make it again.
            if exc.status != 422 or "roleRef" not in obj:
                raise
            await self._rbac_call(obj, "delete")
            await self._rbac_call(obj, "create", body=True)

    async def _read_job(self, name: str, ns: str) -> dict[str, Any] | None:
        try:
            return await self._read(self.batch.read_namespaced_job, name, ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def _create(self, manifest: dict[str, Any]) -> None:
        try:
            await self._read(self.batch.create_namespaced_job, manifest["metadata"]["namespace"], manifest)
        except ApiException as exc:
            if exc.status != 409:  # created by a concurrent attempt of this same run: watch that one
                raise

    async def _put_secret(self, secret: dict[str, Any]) -> None:
        """Created, or replaced when an earlier attempt of this run left one (its token may be near its end)."""
        ns = secret["metadata"]["namespace"]
        try:
            await self._read(self.core.create_namespaced_secret, ns, secret)
        except ApiException as exc:
            if exc.status != 409:
                raise
            name = secret["metadata"]["name"]
            await self._read(self.core.replace_namespaced_secret, name, ns, secret)

    async def _delete_secret(self, name: str, ns: str) -> None:
        try:
            await self._read(self.core.delete_namespaced_secret, name, ns)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def _delete(self, name: str, ns: str) -> None:
        try:
            await self._read(self.batch.delete_namespaced_job, name, ns, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def _wait(self, name: str, ns: str) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """Polls (backing off to a few seconds) and heartbeats; a Pod stuck on an image or config that cannot start
        fails the run after a grace period, since Kubernetes would wait for ever (its last state is returned: the
        deleted Job takes the Pod with it)."""
        interval, stuck_since = self.poll_interval_s, None
        while True:
            job = await self._read_job(name, ns)
            if job is None:
                return (
                    "Failed",
                    {
                        "status": {
                            "conditions": [
                                {
                                    "type": "Failed",
                                    "status": "True",
                                    "reason": "Deleted",
                                    "message": f"Job {name} was deleted while it ran",
                                }
                            ]
                        }
                    },
                    None,
                )
            verdict = job_verdict(job)
            if verdict is not None:
                return verdict, job, None
            pod = await self._latest_pod(name, ns)
            # No Pod at all is stuck too: admission, a quota or a missing service account refused it.
            stuck = stuck_container(pod) if pod else "(no Pod)"
            if stuck is None:
                stuck_since = None
            elif stuck_since is None:
                stuck_since = time.monotonic()
            if stuck_since is not None and time.monotonic() - stuck_since >= self.stuck_grace_s:
                await self._delete(name, ns)
                return "Failed", job, pod
            activity.heartbeat(f"Job {ns}/{name}" + (f" waiting on {stuck}" if stuck else ""))
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval_s)

    async def _latest_pod(self, job: str, ns: str) -> dict[str, Any] | None:
        pods = await self._read(self.core.list_namespaced_pod, ns, label_selector=f"batch.kubernetes.io/job-name={job}")
        items = pods.get("items") or []
        return max(items, key=lambda p: p["metadata"].get("creationTimestamp") or "") if items else None

    async def _log(self, pod: str, container: str, ns: str) -> str:
        try:
            # Raw bytes: the client would otherwise parse a log that happens to be JSON into an object.
            response = await asyncio.to_thread(
                self.core.read_namespaced_pod_log,
                pod,
                ns,
                container=container,
                tail_lines=LOG_LINES,
                _preload_content=False,
            )
            return bytes(response.data).decode("utf-8", errors="replace")
        except ApiException as exc:
            return f"(log unavailable: {exc.status} {exc.reason})"

    async def _container_runs(self, input: RunPipelineInput, ns: str, pod: dict[str, Any] | None) -> list[ContainerRun]:
        """The user's containers that ran (adapter containers only when they failed), with their log tails; full logs
        (the last lines) are kept next to the podman runner's, and in the Pod until the Job is pruned."""
        if pod is None:
            return []
        user = {c.name for c in input.pipeline.spec.containers}
        failed = failed_container(pod)
        runs = []
        for state in container_states(pod):
            name = state["name"]
            terminated = (state.get("state") or {}).get("terminated")
            if name not in user and not (failed and failed[0] == name):
                continue
            text = (
                await self._log(pod["metadata"]["name"], name, ns)
                if terminated or (failed and failed[0] == name)
                else ""
            )
            log_file = log_path(self.logs_dir, input.run_id, name)
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(text)
            runs.append(
                ContainerRun(
                    name=name,
                    image=state.get("image", ""),
                    exit_code=terminated.get("exitCode") if terminated else None,
                    started_at=_epoch(terminated.get("startedAt")) if terminated else 0.0,
                    duration_seconds=_duration(terminated) if terminated else 0.0,
                    log_tail=text.encode()[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace"),
                    log_file=str(log_file),
                )
            )
        return runs

    def _failure(
        self, job_ref: str, job: dict[str, Any], pod: dict[str, Any] | None, runs: list[ContainerRun]
    ) -> ContainersOutcome:
        """`job_ref` is the Job's `namespace/name`."""
        if deadline_exceeded(job):
            # Whatever the Pod shows of the containers Kubernetes stopped, the reason is the deadline.
            running = next((r.name for r in runs if r.exit_code is None), None)
            return ContainersOutcome(
                containers=runs,
                failed_container=running,
                message=f"Job {job_ref} was stopped: {timed_out(float(job['spec']['activeDeadlineSeconds']))}",
            )
        if pod is None and job_verdict(job) is None:
            return ContainersOutcome(
                message=f"Job {job_ref} got no Pod within {self.stuck_grace_s:g}s: see its "
                "events (admission, quota, service account)"
            )
        found = failed_container(pod) if pod else None
        if found is None:
            return ContainersOutcome(
                containers=runs,
                message=f"Job {job.get('metadata', {}).get('name', '')} failed: {failed_condition_message(job)}",
            )
        container, message = found
        if container in ADAPTER_CONTAINERS:
            message += " (moving data between the Pod and the transfer bucket)"
        return ContainersOutcome(containers=runs, failed_container=container, message=message)

    async def _collect(self, result_key: str, workspace: Path, runs: list[ContainerRun]) -> ContainersOutcome:
        archive = workspace / "result.tar.gz"
        if not await asyncio.to_thread(self.transfer.fetch, result_key, archive):
            return ContainersOutcome(
                containers=runs,
                failed_container="ktx-writer",
                message="the Job completed but its result never reached the transfer bucket",
            )

        def unpack() -> None:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(workspace, filter=_safe_member)
            archive.unlink()

        await asyncio.to_thread(unpack)
        return ContainersOutcome(containers=runs)

    async def _prune(self, input: RunPipelineInput, ns: str) -> None:
        try:
            jobs = await self._read(
                self.batch.list_namespaced_job, ns, label_selector=_selector(pipeline_labels(input))
            )
            for name in jobs_to_prune(jobs.get("items") or [], self.jobs_to_keep):
                await self._delete(name, ns)
            if self.defaults.pod_ttl_seconds_after_finished:
                await self._expire_pods(ns, self.defaults.pod_ttl_seconds_after_finished)
        except ApiException as exc:
            # Retention is housekeeping: a failure here must not fail a pipeline that succeeded.
            log.warning("could not prune Jobs of pipeline %s: %s", input.pipeline.metadata.name, exc)

    async def _expire_pods(self, ns: str, ttl_s: int) -> None:
        """Kratix's pod cleanup, swept after each run: Pods of ktx's finished Jobs in the namespace, `ttl_s` after
        they finished (the Jobs themselves stay until retention prunes them)."""
        jobs = await self._read(self.batch.list_namespaced_job, ns, label_selector=_selector(MANAGED_BY))
        for job in pods_expired(jobs.get("items") or [], ttl_s, datetime.now(timezone.utc)):
            pods = await self._read(
                self.core.list_namespaced_pod, ns, label_selector=f"batch.kubernetes.io/job-name={job}"
            )
            for pod in pods.get("items") or []:
                try:
                    await self._read(self.core.delete_namespaced_pod, pod["metadata"]["name"], ns)
                except ApiException as exc:
                    if exc.status != 404:
                        raise


def forbidden_reason(exc: ApiException, namespace: str, pipeline_namespace: bool) -> str:
    """The apiserver's own words for a 403 (`jobs.batch is forbidden: User "..." cannot get resource "jobs" in API
    group "batch" in the namespace "..."`), bounded, and what grants it."""
    try:
        message = str(json.loads(exc.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = message[:1000] or f"{exc.status} {exc.reason}"
    where = (
        f"the worker may not run pipelines in the Promise's pipelineNamespace {namespace!r}: give it its pipeline "
        "Role there (deploy/components/pipeline-rbac grants it in every namespace)"
        if pipeline_namespace
        else f"the worker may not run pipelines in namespace {namespace!r} (KTX_KUBE_NAMESPACE): see "
        "deploy/base/rbac-pipelines.yaml"
    )
    return f"Forbidden: {message}; {where}"


def _epoch(timestamp: str | None) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() if timestamp else 0.0


def _duration(terminated: dict[str, Any]) -> float:
    return round(max(0.0, _epoch(terminated.get("finishedAt")) - _epoch(terminated.get("startedAt"))), 3)
