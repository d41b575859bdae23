"""A stand-in for the Kubernetes API server's batch/v1 Job and core/v1 Pod endpoints the pipeline runner calls, with a
kubelet that really runs each Job's Pod: init containers in order, then containers, with podman, emptyDir volumes as
host directories. Shapes follow the API reference (https://kubernetes.io/docs/reference/kubernetes-api/):

- `POST /apis/batch/v1/namespaces/{ns}/jobs`: 201, 409 `AlreadyExists` when the name is taken;
- `GET .../jobs/{name}`, `GET .../jobs?labelSelector=` (a `JobList`), `DELETE .../jobs/{name}` with
  `DeleteOptions.propagationPolicy` (Background/Foreground delete the Job's Pods; Orphan leaves them);
- Job status: `active`, `succeeded`/`failed` counts, `startTime`, `completionTime`, and a terminal condition
  `Complete` or `Failed` (reason `BackoffLimitExceeded`) with `status: "True"`;
- Pods labelled `batch.kubernetes.io/job-name` and `job-name`; `status.initContainerStatuses` /
  `containerStatuses` with `state.waiting` (`PodInitializing`, `ErrImagePull`), `state.running` or
  `state.terminated` (`exitCode`, `reason` Completed/Error, `startedAt`, `finishedAt`);
- `GET /api/v1/namespaces/{ns}/pods/{name}/log?container=&tailLines=`: text/plain; `DELETE .../pods/{name}`;
- core/v1 Secrets: `POST .../secrets` (201, 409 `AlreadyExists`), `GET`, `PUT` and `DELETE .../secrets/{name}`;
  a Pod's `projected` volumes of Secret `items` are files with the volume's `defaultMode`, and a missing Secret
  leaves the Pod's first container waiting (`CreateContainerConfigError`), as kubelet does;
- ServiceAccounts and RBAC objects (tests/servers/kube_rbac.py); a Job whose Pod names a ServiceAccount that does not
  exist gets no Pod, as the ServiceAccount admission plugin refuses it (`default` always exists);
- every error is a `Status`; requests without the bearer token get 401;
- namespaces in `forbidden_namespaces` are ones the caller has no Role in: any request there is 403 `Forbidden`
  with the apiserver's message (`jobs.batch "x" is forbidden: User "..." cannot get resource "jobs" in API group
  "batch" in the namespace "..."`, as its authorization filter words it).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.servers.kube_api import FakeKubeApiServer, status
from tests.servers.kube_rbac import FakeRbac

_JOBS = re.compile(r"/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?")
_PODS = re.compile(r"/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?")
_SECRETS = re.compile(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?")
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_NAMESPACED = re.compile(r"/(?:api/v1|apis/([^/]+)/[^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?(?:/([^/]+))?")
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# The user the stand-in says the worker is, as a ServiceAccount token's.
CALLER = "system:serviceaccount:ktx-system:ktx-worker"


def _matches(labels: dict[str, str], selector: str) -> bool:
    """Equality requirements, which is all the runner sends."""
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeKube(FakeKubeApiServer):
    def __init__(self, workdir: Path, token: str, images: dict[str, tuple[str, list[str]]] | None = None):
        """`images` maps an image name to the local image and extra podman flags that stand in for it (the ktx
        adapter image is the project's source on the python base image)."""
        super().__init__(token)
        self.workdir = workdir
        self.images = images or {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str, str], Path] = {}
        self.running: dict[str, str] = {}  # job name -> the podman container running now
        self.deleted: list[tuple[str, str]] = []  # (job name, propagation policy)
        self.deleted_pods: list[str] = []  # Pods deleted by name (the pod TTL), not with their Job
        self.created: list[dict[str, Any]] = []  # each Job as the client sent it
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.admit_pods = True  # False: the Job controller's Pods are refused (admission, quota), so none appears
        self.clock = 0
        self.rbac = FakeRbac(self._now)
        self.forbidden_namespaces: set[str] = set()

    def _now(self) -> str:
        # A clock that always moves, so creation order is unambiguous even within one second.
        self.clock += 1
        return (_EPOCH + timedelta(seconds=self.clock)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def route(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        if (refused := self._forbidden(method, path)) is not None:
            return refused
        if match := _JOBS.fullmatch(path):
            namespace, name = match.groups()
            if method == "POST" and name is None:
                return self._create(namespace, body)
            if method == "GET" and name is None:
                items = [
                    copy.deepcopy(j)
                    for (ns, _), j in sorted(self.jobs.items())
                    if ns == namespace and _matches(j["metadata"].get("labels") or {}, query.get("labelSelector", ""))
                ]
                return 200, {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}, "items": items}
            job = self.jobs.get((namespace, name or ""))
            if job is None:
                return 404, status(404, "NotFound", f'jobs.batch "{name}" not found', name, kind="jobs")
            if method == "GET":
                return 200, copy.deepcopy(job)
            if method == "DELETE":
                return self._delete(
                    namespace, job, body.get("propagationPolicy") or query.get("propagationPolicy") or "Orphan"
                )
        if match := _PODS.fullmatch(path):
            namespace, name, log = match.groups()
            if name is None and method == "GET":
                items = [
                    copy.deepcopy(p)
                    for (ns, _), p in sorted(self.pods.items())
                    if ns == namespace and _matches(p["metadata"]["labels"], query.get("labelSelector", ""))
                ]
                return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
            if name and not log and method == "DELETE":
                if self.pods.pop((namespace, name), None) is None:
                    return 404, status(404, "NotFound", f'pods "{name}" not found', name, kind="pods")
                self.deleted_pods.append(name)
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            if log and method == "GET":
                log_file = self.logs.get((namespace, name or "", query.get("container", "")))
                if log_file is None:
                    return 400, status(
                        400, "BadRequest", f'container "{query.get("container")}" in pod "{name}" is waiting to start'
                    )
                lines = log_file.read_text(errors="replace").splitlines(keepends=True)
                return 200, "".join(lines[-int(query.get("tailLines", len(lines) or 1)) :])
        if match := _SECRETS.fullmatch(path):
            return self._secret(method, *match.groups(), body)
        if (found := self.rbac.route(method, path, query, body)) is not None:
            return found
        return 404, status(404, "NotFound", "the server could not find the requested resource")

    def _forbidden(self, method: str, path: str) -> tuple[int, Any] | None:
        match = _NAMESPACED.fullmatch(path)
        if match is None or match.group(2) not in self.forbidden_namespaces:
            return None
        group, namespace, resource, name, subresource = match.groups()
        verb = "list" if method == "GET" and name is None else _VERBS.get(method, method.lower())
        qualified = f"{resource}.{group}" if group else resource
        target = f'{qualified} "{name}"' if name else qualified
        what = resource + (f"/{subresource}" if subresource else "")
        message = (
            f'{target} is forbidden: User "{CALLER}" cannot {verb} resource "{what}" in API group "{group or ""}" '
            f'in the namespace "{namespace}"'
        )
        return 403, status(403, "Forbidden", message, name, kind=resource)

    def _secret(self, method: str, namespace: str, name: str | None, body: Any) -> tuple[int, Any]:
        if method == "POST" and name is None:
            name = body["metadata"]["name"]
            if (namespace, name) in self.secrets:
                return 409, status(409, "AlreadyExists", f'secrets "{name}" already exists', name, kind="secrets")
            body["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=self._now())
            self.secrets[namespace, name] = body
            return 201, copy.deepcopy(body)
        if (namespace, name or "") not in self.secrets:
            return 404, status(404, "NotFound", f'secrets "{name}" not found', name, kind="secrets")
        if method == "GET":
            return 200, copy.deepcopy(self.secrets[namespace, name or ""])
        if method == "PUT":
            self.secrets[namespace, name or ""] = body
            return 200, copy.deepcopy(body)
        if method == "DELETE":
            del self.secrets[namespace, name or ""]
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported on secrets")

    def _projected(self, namespace: str, volume: dict[str, Any], directory: Path) -> bool:
        """Writes a projected volume's Secret items; False when a Secret it needs is missing."""
        projected = volume["projected"]
        for source in projected["sources"]:
            if set(source) != {"secret"}:
                raise NotImplementedError(f"the fake kubelet projects Secrets only, not {source}")
            secret = self.secrets.get((namespace, source["secret"]["name"]))
            if secret is None:
                return False
            for item in source["secret"]["items"]:
                path = directory / item["path"]
                path.write_bytes(base64.b64decode(secret["data"][item["key"]]))
                path.chmod(projected.get("defaultMode", 0o644))
        directory.chmod(0o755)
        return True

    def _create(self, namespace: str, job: dict[str, Any]) -> tuple[int, Any]:
        name = job["metadata"]["name"]
        if (namespace, name) in self.jobs:
            return 409, status(409, "AlreadyExists", f'jobs.batch "{name}" already exists', name, kind="jobs")
        self.created.append(copy.deepcopy(job))
        uid = str(uuid.uuid4())
        job["metadata"].update(namespace=namespace, uid=uid, creationTimestamp=self._now(), resourceVersion="1")
        job["status"] = {"active": 1, "startTime": self._now()}
        template = job["spec"]["template"]
        pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "creationTimestamp": self._now(),
                "uid": str(uuid.uuid4()),
                "labels": {
                    **template["metadata"].get("labels", {}),
                    "batch.kubernetes.io/job-name": name,
                    "job-name": name,
                    "batch.kubernetes.io/controller-uid": uid,
                },
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [
                    self._waiting(c, "PodInitializing") for c in template["spec"].get("initContainers", [])
                ],
                "containerStatuses": [self._waiting(c, "PodInitializing") for c in template["spec"]["containers"]],
            },
        }
        self.jobs[namespace, name] = job
        account = template["spec"].get("serviceAccountName") or "default"
        if not self.admit_pods or not self.rbac.has_service_account(namespace, account):
            return 201, copy.deepcopy(job)
        self.pods[namespace, pod_name] = pod
        threading.Thread(target=self._kubelet, args=(namespace, name, pod), daemon=True).start()
        return 201, copy.deepcopy(job)

    def _delete(self, namespace: str, job: dict[str, Any], propagation: str) -> tuple[int, Any]:
        name = job["metadata"]["name"]
        del self.jobs[namespace, name]
        self.deleted.append((name, propagation))
        if propagation in ("Background", "Foreground"):
            for key, pod in list(self.pods.items()):
                if pod["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name:
                    del self.pods[key]
        container = self.running.pop(name, None)
        if container:
            subprocess.run(["podman", "rm", "-f", "-t", "0", "--ignore", container], capture_output=True)
        return 200, {**job, "status": {**job.get("status", {}), "terminating": 1}}

    @staticmethod
    def _waiting(container: dict[str, Any], reason: str) -> dict[str, Any]:
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason}},
        }

    def _kubelet(self, namespace: str, job_name: str, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        volumes = {}
        for volume in spec.get("volumes", []):
            if "emptyDir" not in volume and "projected" not in volume:
                raise NotImplementedError(f"the fake kubelet mounts emptyDir and projected volumes only, not {volume}")
            volumes[volume["name"]] = self.workdir / pod["metadata"]["name"] / volume["name"]
            volumes[volume["name"]].mkdir(parents=True, mode=0o777)
            volumes[volume["name"]].chmod(0o777)
            if "projected" in volume and not self._projected(namespace, volume, volumes[volume["name"]]):
                first = "initContainerStatuses" if spec.get("initContainers") else "containerStatuses"
                with self.lock:
                    pod["status"][first][0]["state"] = {
                        "waiting": {"reason": "CreateContainerConfigError", "message": "secret not found"}
                    }
                return
        with self.lock:
            pod["status"]["phase"] = "Running" if not spec.get("initContainers") else "Pending"
        for kind in ("initContainerStatuses", "containerStatuses"):
            containers = spec.get("initContainers" if kind == "initContainerStatuses" else "containers", [])
            for index, container in enumerate(containers):
                if (namespace, job_name) not in self.jobs:
                    return
                exit_code = self._run(namespace, job_name, pod, kind, index, container, volumes)
                if exit_code is None:
                    return  # cannot start: Kubernetes keeps retrying, and the Job stays active
                if exit_code != 0:
                    self._finish(namespace, job_name, pod, failed=True)
                    return
        self._finish(namespace, job_name, pod, failed=False)

    def _run(
        self,
        namespace: str,
        job_name: str,
        pod: dict[str, Any],
        kind: str,
        index: int,
        container: dict[str, Any],
        volumes: dict[str, Path],
    ) -> int | None:
        image, extra = self.images.get(container["image"], (container["image"], []))
        statuses = pod["status"][kind]
        if subprocess.run(["podman", "image", "exists", image]).returncode != 0:
            with self.lock:
                statuses[index]["state"] = {
                    "waiting": {"reason": "ErrImagePull", "message": f"pull access denied for {container['image']}"}
                }
            return None
        podman_name = f"fakepod-{pod['metadata']['name']}-{container['name']}"
        args = ["podman", "run", "--rm", "--name", podman_name, "--network", "host", *extra]
        for mount in container.get("volumeMounts", []):
            args += ["-v", f"{volumes[mount['name']]}:{mount['mountPath']}{':ro' if mount.get('readOnly') else ''}"]
        for env in container.get("env", []):
            if "value" in env:
                args += ["-e", f"{env['name']}={env['value']}"]
        if container.get("command"):
            args += ["--entrypoint", json.dumps(container["command"])]
        if container.get("workingDir"):
            args += ["-w", container["workingDir"]]
        args += [image, *container.get("args", [])]
        log_file = self.workdir / pod["metadata"]["name"] / f"{container['name']}.log"
        started = self._now()
        with self.lock:
            statuses[index]["state"] = {"running": {"startedAt": started}}
            self.logs[namespace, pod["metadata"]["name"], container["name"]] = log_file
            self.running[job_name] = podman_name
        with log_file.open("wb") as out:
            exit_code = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT).returncode
        with self.lock:
            self.running.pop(job_name, None)
            statuses[index]["state"] = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": self._now(),
                }
            }
        return exit_code

    def _finish(self, namespace: str, job_name: str, pod: dict[str, Any], failed: bool) -> None:
        with self.lock:
            pod["status"]["phase"] = "Failed" if failed else "Succeeded"
            job = self.jobs.get((namespace, job_name))
            if job is None:
                return
            now = self._now()
            condition = (
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
                if failed
                else {"type": "Complete", "status": "True"}
            )
            job["status"] = {
                "startTime": job["status"]["startTime"],
                "failed" if failed else "succeeded": 1,
                "conditions": [{**condition, "lastProbeTime": now, "lastTransitionTime": now}],
                **({} if failed else {"completionTime": now}),
            }
