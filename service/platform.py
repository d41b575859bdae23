"""The operations the HTTP facade offers, on top of a Temporal client: apply, get, list, delete, wait.

Reads come from workflow memos (describe/list), never from queries, so they need no worker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.platform.catalog import fetch_catalog, fetch_revision
from activities.platform.promise_release import FetchFailed, authorization_header, fetch_promise
from activities.pipelines.container_logs import LOG_RESPONSE_BYTES, read_tail
from activities.pipelines.podman_runner import log_path
from activities.stores.bucket_files import READ_CONFIG, placed_objects
from activities.stores.bucket_writer import BucketClient
from activities.stores.committed_files import NotHeld, committed_files, find_clone
from activities.stores.secrets import SecretProvider
from activities.stores.state_stores import StoreNotReady, StoreTarget, bucket_credentials
from domain.catalog import Catalog
from domain import dry_run as dr
from domain.crd_validation import admit_promise
from domain.documents import BucketStateStore, Destination, GitStateStore, Promise, PromiseRelease, ResourceRequest
from domain.documents import BUILTIN_API_VERSIONS, PLATFORM_KIND_NAMES, builtin_kind
from domain.names import KRATIX_API_VERSION
from domain.errors import Conflict, DocumentTooLarge, FieldError, InvalidDocument, NotFound, StaleResourceVersion
from domain.gitops import GitOpsAgent, manifests as gitops_manifests
from domain.health import read_health_record
from domain.kube.changes import Observed
from domain.labels import (
    COMPONENT_OF_NAMESPACE,
    COMPONENT_OF_PROMISE,
    COMPONENT_OF_RESOURCE,
    MANUAL_RECONCILIATION,
    PROMISE_NAME,
    check_label_change,
)
from domain.naming import (
    CATALOG_WORKFLOW_ID,
    destination_workflow_id,
    dry_run_workflow_id,
    promise_release_workflow_id,
    promise_workflow_id,
    resource_workflow_id,
    rollout_workflow_id,
    state_store_workflow_id,
)
from domain.promise_release import RELEASE_NAME_LABEL, admission_warning
from domain.revisions import request_fits_api
from domain import rollout_plan as rp
from domain.rollout_progress import Control, RolloutProgress
from domain.parsing import is_platform_document, parse_platform_document
from domain.promise_api import PromiseApi, PromiseSnapshot, check_runner, snapshot_of
from domain.secrets import parse_secret
from domain.status import get_condition
from domain.validation import validate_resource_request
from domain.visibility import RUNNING, equals
from workflows.catalog import (
    ApplyDestinationInput,
    ApplyStateStoreInput,
    CatalogWorkflow,
    CatalogWorkflowInput,
    RegisterApiInput,
    RemoveEntryInput,
)
from workflows.destination import (
    ApplyDestinationDocument,
    DestinationState,
    DestinationWorkflow,
    DestinationWorkflowInput,
    RemoveDestination,
    ResyncRequest,
)
from workflows.delivery import Placement, iso
from workflows.lifecycle import RUNNING_PIPELINE_QUERY, RunningPipeline
from workflows.dry_run import DryRunWorkflow, DryRunWorkflowInput
from workflows.promise import PromiseState, PromiseWorkflow, PromiseWorkflowInput
from workflows.promise_release import (
    PromiseGone,
    PromiseReleaseState,
    PromiseReleaseWorkflow,
    PromiseReleaseWorkflowInput,
)
from workflows.records import ApplyInput, DeleteRequest, LabelRequest, StatusPatch
from workflows.resource import ResourceWorkflow
from workflows.rollout import RolloutControlRequest, RolloutWorkflow, RolloutWorkflowInput, StartRollout
from service.listing import LIST_PAGE_SIZE, current_page, current_runs
from service.revisions import Revisions
from workflows.resource_records import HealthRecordInput, RemoveHealthRecordInput, ResourceState, ResourceWorkflowInput
from activities.platform.search_attributes import (
    DESTINATIONS,
    KIND,
    NAMESPACE,
    PHASE,
    PROMISE,
    PROMISE_VERSION,
    RESOURCE_VERSION,
)
from workflows.state_store import (
    ApplyStoreTarget,
    StateStoreState,
    StateStoreWorkflow,
    StateStoreWorkflowInput,
    StoreCheckRequest,
)

# How a workflow can end with its object still there: the workflows end only once an object is deleted (completed),
# so these are a bug or an operator's hand; the object's files are still in the stores.
_ENDED_UNDELETED = {
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
    WorkflowExecutionStatus.CANCELED,
}
_CATALOG_KINDS = {
    "Destination": "destinations",
    "GitStateStore": "git_state_stores",
    "BucketStateStore": "bucket_state_stores",
}


class Applied(BaseModel):
    kind: str
    name: str
    namespace: str | None = None
    action: str
    # Admission's warnings, as the Kubernetes API returns them (kubectl prints each as "Warning: ...").
    warnings: list[str] = []


# A document travels in an update's payload and then lives in the workflow's state and memo, each a Temporal payload
# of at most 2 MB; 1 MiB leaves room for status beside it (Kubernetes' own limit per object is 1.5 MB).
DEFAULT_MAX_DOCUMENT = 1024 * 1024


# A Promise's diff runs each bound request's pipelines in turn: past this many, `--limit` takes a sample instead.
PROMISE_DIFF_MAX = 200


class Platform:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        secrets: SecretProvider,
        max_document: int = DEFAULT_MAX_DOCUMENT,
        pipeline_runner: str | None = None,
        list_page_size: int = LIST_PAGE_SIZE,
    ):
        """`pipeline_runner` is the workers' KTX_PIPELINE_RUNNER (the API and the workers read one configuration):
        a Promise using a Pipeline field that runner can never honour is refused at apply (None: none refused).
        `list_page_size`: how many workflows a list reads per visibility call."""
        self.client = client
        self.task_queue = task_queue
        self.secrets = secrets
        self.max_document = max_document
        self.revisions = Revisions(client, _domain_error)
        self.pipeline_runner = pipeline_runner
        self.list_page_size = list_page_size

    def _admit_promise(self, promise: Promise) -> PromiseApi | None:
        """Every admission rule, the runner's included; a CRD of a megabyte takes a while, so callers run it off the
        event loop."""
        api = admit_promise(promise)
        check_runner(promise, self.pipeline_runner)
        return api

    # --- apply ---

    async def apply(self, document: dict[str, Any]) -> Applied:
        """A document carrying metadata.resourceVersion is a change made from that read of the object: refused with
        StaleResourceVersion if the object has changed since (Kubernetes' optimistic concurrency), NotFound if it is
        gone. The version is the platform's to keep, never stored in the document."""
        size = len(json.dumps(document, separators=(",", ":"), default=str))
        if size > self.max_document:
            raise DocumentTooLarge(size, self.max_document)
        _check_builtin_api_version(document)
        document, precondition = _without_server_fields(document)
        if document.get("apiVersion") == KRATIX_API_VERSION and document.get("kind") == "HealthRecord":
            return await self._apply_health_record(document)
        if document.get("apiVersion") == KRATIX_API_VERSION and document.get("kind") == dr.KIND:
            return await self._apply_dry_run(document)
        if document.get("apiVersion") == "v1" and document.get("kind") == "Secret":
            return await self._apply_secret(document)
        if document.get("apiVersion") == KRATIX_API_VERSION and document.get("kind") == "ResourceBinding":
            action = await self.revisions.apply_binding(document, precondition)
            metadata = document.get("metadata") or {}
            return Applied(
                kind="ResourceBinding",
                name=str(metadata.get("name") or ""),
                namespace=str(
                    document["spec"]["resourceRef"].get("namespace") or metadata.get("namespace") or "default"
                ),
                action=action,
            )
        if document.get("apiVersion") == KRATIX_API_VERSION and document.get("kind") == "PromiseRevision":
            raise InvalidDocument(
                [FieldError("kind", "PromiseRevisions are made by applying their Promise with its version label")]
            )
        if is_platform_document(document):
            model = parse_platform_document(document)
            if isinstance(model, Promise):
                return await self._apply_promise(model, document, precondition)
            if isinstance(model, PromiseRelease):
                return await self._apply_promise_release(model, precondition)
            return await self._apply_catalog_entry(model, precondition)  # type: ignore[arg-type]
        return await self._apply_resource(document, precondition)

    async def admit(self, document: dict[str, Any]) -> dict[str, Any]:
        """A dry run of `apply` (the Kubernetes API's `?dryRun=All`): the same admission checks, the catalog's rules
        run on a copy of it, nothing started or stored. Returns the document as it would be stored (defaulted)."""
        size = len(json.dumps(document, separators=(",", ":"), default=str))
        if size > self.max_document:
            raise DocumentTooLarge(size, self.max_document)
        _check_builtin_api_version(document)
        if document.get("apiVersion") == KRATIX_API_VERSION and document.get("kind") == "HealthRecord":
            record = read_health_record(document)
            if record.promise not in (await fetch_catalog(self.client)).apis:
                raise NotFound(f'promise "{record.promise}" not found (data.promiseRef.name)')
            return document
        if document.get("apiVersion") == "v1" and document.get("kind") == "Secret":
            parse_secret(document)
            return document
        if document.get("apiVersion") == KRATIX_API_VERSION and document.get("kind") == dr.KIND:
            spec, _ = await self._dry_run_request(document)
            return {**document, "metadata": {**document["metadata"], "namespace": spec.namespace}}
        if is_platform_document(document):
            model = parse_platform_document(document)
            catalog = await fetch_catalog(self.client)
            if isinstance(model, Promise):
                api = await asyncio.to_thread(self._admit_promise, model)
                if api is not None:
                    catalog.register_api(api)
                return document
            if isinstance(model, PromiseRelease):
                if await self._describe_running(promise_release_workflow_id(model.metadata.name)) is None:
                    await self._admit_release(model)
                return model.to_doc()
            if isinstance(model, Destination):
                catalog.apply_destination(model)
            return model.to_doc()
        api, request = await self._validated_request(document)
        admitted = request.to_doc()
        admitted.setdefault("metadata", {}).setdefault("labels", {})[PROMISE_NAME] = api.promise
        admitted["metadata"].setdefault("namespace", "default")
        return admitted

    async def _dry_run_request(self, document: dict[str, Any]) -> tuple[dr.DryRunSpec, dict[str, Any]]:
        """The DryRun's fields, and the request its pipelines will see: the live request's metadata (or the names it
        would have) with the proposed spec, validated and defaulted by the Promise's API as a request would be."""
        spec = dr.parse_dry_run(document)
        api = (await fetch_catalog(self.client)).apis.get(spec.promise)
        if api is None:
            raise NotFound(f'promise "{spec.promise}" not found (spec.promiseRef.name)')
        try:
            live = await self.get_resource(api, spec.live_name, spec.live_namespace)
            metadata = {k: v for k, v in live["metadata"].items() if k not in ("resourceVersion", "deletionTimestamp")}
        except NotFound:
            metadata = {"name": spec.live_name, "namespace": spec.live_namespace}
        proposed = {
            "apiVersion": f"{api.group}/{api.version}",
            "kind": api.kind,
            "metadata": {"name": spec.live_name, "namespace": spec.live_namespace},
            "spec": spec.resource,
        }
        try:
            request = (await asyncio.to_thread(validate_resource_request, api, proposed)).to_doc()
        except InvalidDocument as exc:
            raise InvalidDocument(
                [FieldError("spec.resource" + e.field.removeprefix("spec"), e.reason) for e in exc.errors]
            ) from exc
        labels = {**(metadata.get("labels") or {}), PROMISE_NAME: api.promise}
        request["metadata"] = {**metadata, "labels": labels}
        return spec, request

    async def _apply_dry_run(self, document: dict[str, Any]) -> Applied:
        """A DryRun runs once (Kratix skips a completed one): applying the same spec again changes nothing, a changed
        spec is refused until the DryRun is deleted."""
        spec, request = await self._dry_run_request(document)
        document = {**document, "metadata": {**document["metadata"], "namespace": spec.namespace}}
        document.pop("status", None)
        try:
            await self._start_dry_run(spec, document, request, None)
            return Applied(kind=dr.KIND, name=spec.name, namespace=spec.namespace, action="created")
        except WorkflowAlreadyStartedError:
            current = await self.get(dr.KIND, spec.name, spec.namespace)
            if current.get("spec") != document.get("spec"):
                raise Conflict(
                    f'dryrun "{spec.name}" has run: a DryRun\'s spec does not change; delete it and apply it again'
                ) from None
            return Applied(kind=dr.KIND, name=spec.name, namespace=spec.namespace, action="unchanged")

    async def _start_dry_run(
        self,
        spec: dr.DryRunSpec,
        document: dict[str, Any],
        request: dict[str, Any],
        promise: PromiseSnapshot | None,
    ) -> None:
        await self.client.start_workflow(
            DryRunWorkflow.run,
            DryRunWorkflowInput(document=document, request=request, promise=promise),
            id=dry_run_workflow_id(spec.namespace, spec.name),
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(KIND, dr.KIND), SearchAttributePair(PROMISE, spec.promise)]
            ),
            memo={"object": document},
        )

    async def diff(self, document: dict[str, Any], timeout: float, limit: int | None = None) -> list[dict[str, Any]]:
        """`ktx diff`: for a request, what applying it would change; for a Promise, what it would change for each
        request bound to it (by namespace and name, the first `limit` or PROMISE_DIFF_MAX). Each is a DryRun against
        the request as it is, read as soon as its diff is made, then deleted."""
        if builtin_kind(document) == "Promise":
            return await self._diff_promise(document, timeout, limit)
        admitted = await self.admit(document)
        api = (await fetch_catalog(self.client)).find_api(str(admitted.get("apiVersion")), str(admitted.get("kind")))
        if api is None or builtin_kind(admitted) is not None:
            raise InvalidDocument([FieldError("kind", "ktx diff previews requests and Promises")])
        metadata = admitted["metadata"]
        name, namespace = str(metadata["name"]), str(metadata.get("namespace") or "default")
        preview = self._preview_document(api.promise, name, namespace, admitted.get("spec") or {})
        spec, request = await self._dry_run_request(preview)
        return [await self._diff_one(api, spec, preview, request, None, timeout)]

    async def _diff_promise(self, document: dict[str, Any], timeout: float, limit: int | None) -> list[dict[str, Any]]:
        """Every bound request's spec, validated by the changed Promise's API, through the changed pipelines."""
        model = parse_platform_document(document)
        assert isinstance(model, Promise)
        api = await asyncio.to_thread(self._admit_promise, model)
        installed = (await fetch_catalog(self.client)).apis.get(model.metadata.name)
        if api is None or installed is None:
            raise NotFound(f'promise "{model.metadata.name}" has no requests to diff: it is not installed with an API')
        snapshot = snapshot_of(model, api, 0, True, [])
        requests = await self.list(installed.kind, promise=installed.promise)
        diffs = []
        for live in requests[: min(limit or PROMISE_DIFF_MAX, PROMISE_DIFF_MAX)]:
            name, namespace = live["metadata"]["name"], live["metadata"]["namespace"]
            preview = self._preview_document(installed.promise, name, namespace, live.get("spec") or {})
            proposed = {
                "apiVersion": f"{api.group}/{api.version}",
                "kind": api.kind,
                "metadata": {"name": name, "namespace": namespace},
                "spec": live.get("spec") or {},
            }
            request = (await asyncio.to_thread(validate_resource_request, api, proposed)).to_doc()
            metadata = {k: v for k, v in live["metadata"].items() if k not in ("resourceVersion", "deletionTimestamp")}
            request["metadata"] = {**metadata, "labels": {**(metadata.get("labels") or {}), PROMISE_NAME: api.promise}}
            diffs.append(
                await self._diff_one(installed, dr.parse_dry_run(preview), preview, request, snapshot, timeout)
            )
        return diffs

    @staticmethod
    def _preview_document(promise: str, name: str, namespace: str, resource: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": KRATIX_API_VERSION,
            "kind": dr.KIND,
            "metadata": {"name": f"ktx-diff-{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "spec": {
                "promiseRef": {"name": promise},
                "resourceRequestRef": {"name": name, "namespace": namespace},
                "resource": resource,
            },
        }

    async def _diff_one(
        self,
        api: PromiseApi,
        spec: dr.DryRunSpec,
        preview: dict[str, Any],
        request: dict[str, Any],
        promise: PromiseSnapshot | None,
        timeout: float,
    ) -> dict[str, Any]:
        """Returns the changed files (each with the Destinations the live request holds that pipeline's output on),
        the off-platform actions that would run, and the Completed condition if a pipeline failed."""
        await self._start_dry_run(spec, preview, request, promise)
        try:
            deadline = time.monotonic() + timeout
            delay = 0.05
            while True:
                obj = await self.get(dr.KIND, spec.name, spec.namespace)
                completed = get_condition(obj["status"], dr.COMPLETED)
                result = obj["_ktx"].get("dryRun") or {}
                if result.get("diffed") or completed is not None:
                    break
                if time.monotonic() + delay > deadline:
                    raise TimeoutError(f"timed out waiting for the dry run of {api.kind}/{spec.live_name}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        finally:
            await self.delete(dr.KIND, spec.name, spec.namespace)
        failed = completed if completed is not None and completed.get("status") == "False" else None
        request = {"kind": api.kind, "name": spec.live_name, "namespace": spec.live_namespace, "promise": api.promise}
        catalog = await fetch_catalog(self.client)
        return await self._diff_of(catalog, request, result, failed)

    async def _diff_of(
        self, catalog: Catalog, request: dict[str, str], result: dict[str, Any], failed: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One request's diff, with its components' (a compound request's), recursively; each file with the
        Destinations the live request holds that pipeline's output on."""
        api = catalog.apis.get(request["promise"])
        try:
            live = await self.get_resource(api, request["name"], request["namespace"]) if api else None
        except NotFound:
            live = None
        where: dict[str, set[str]] = {}
        for placement in live["_ktx"]["placements"] if live else []:
            where.setdefault(placement["pipeline"], set()).add(placement["destination"])
        files = [{**f, "destinations": sorted(where.get(f["pipeline"], set()))} for f in result.get("files") or []]
        components = []
        for component in result.get("components") or []:
            phase = component.get("phase")
            message = component.get("message") or f"did not finish within {dr.COMPONENT_TIMEOUT_S // 60}m"
            child = {k: component[k] for k in ("kind", "namespace", "promise")} | {"name": component["request"]}
            outcome = {"files": component.get("files"), "wouldRun": component.get("would_run")}
            outcome["components"] = component.get("components")
            components.append(
                await self._diff_of(catalog, child, outcome, None if phase == "Succeeded" else {"message": message})
            )
        return {
            "request": request,
            "files": files,
            "wouldRun": result.get("wouldRun") or [],
            "failed": failed,
            "components": components,
        }

    async def get_resource(self, api: PromiseApi, name: str, namespace: str) -> dict[str, Any]:
        """A request of a Promise's API, named by the API rather than by a kind a user typed."""
        return await self._get_workflow_object(resource_workflow_id(api.promise, namespace, name), api.kind, name)

    async def dry_run_outcome(self, admitted: dict[str, Any]) -> Applied:
        """What `apply` would have answered for an admitted document, as kubectl's `--dry-run=server` prints it:
        created if no such object is stored yet, configured if one is."""
        metadata = admitted.get("metadata") or {}
        kind, name, namespace = str(admitted.get("kind")), str(metadata.get("name")), metadata.get("namespace")
        try:
            await self.get(kind, name, namespace or "default")
            action = "configured"
        except NotFound:
            action = "created"
        return Applied(kind=kind, name=name, namespace=namespace, action=action)

    async def _catalog_update(self, update: Any, arg: BaseModel) -> Any:
        start = WithStartWorkflowOperation(
            CatalogWorkflow.run,
            CatalogWorkflowInput(),
            id=CATALOG_WORKFLOW_ID,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=self.task_queue,
        )
        try:
            return await self.client.execute_update_with_start_workflow(update, arg, start_workflow_operation=start)
        except WorkflowUpdateFailedError as exc:
            raise _domain_error(exc) from exc

    async def _apply_catalog_entry(
        self, model: Destination | GitStateStore | BucketStateStore, precondition: str | None = None
    ) -> Applied:
        name = model.metadata.name
        if precondition is not None:
            # Checked here, not in a validator: the document lives in the catalog workflow and the version in the
            # entry's own workflow, so two writers racing between this read and the write can both pass.
            current = await self.get(model.kind, name)
            if current["_ktx"].get("resourceVersion") != precondition:
                raise StaleResourceVersion()
        if isinstance(model, Destination):
            change = await self._catalog_update(
                CatalogWorkflow.apply_destination, ApplyDestinationInput(destination=model)
            )
            start = self._start(
                DestinationWorkflow.run,
                DestinationWorkflowInput(state=DestinationState(destination=model)),
                destination_workflow_id(name),
                "Destination",
            )
            await self._update_with_start(DestinationWorkflow.apply, ApplyDestinationDocument(destination=model), start)
        else:
            change = await self._catalog_update(CatalogWorkflow.apply_state_store, ApplyStateStoreInput(store=model))
            target = StoreTarget.of(model)
            start = self._start(
                StateStoreWorkflow.run,
                StateStoreWorkflowInput(state=StateStoreState(target=target)),
                state_store_workflow_id(model.kind, name),
                model.kind,
            )
            await self._update_with_start(StateStoreWorkflow.apply, ApplyStoreTarget(target=target), start)
        return Applied(kind=model.kind, name=name, action=change.action)

    def _start(self, run: Any, arg: BaseModel, workflow_id: str, kind: str) -> WithStartWorkflowOperation:
        return WithStartWorkflowOperation(
            run,
            arg,
            id=workflow_id,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(KIND, kind)]),
        )

    async def _apply_secret(self, document: dict[str, Any]) -> Applied:
        """Values go to the secret provider only; stores that use the Secret are told to check themselves again."""
        secret = parse_secret(document)
        action = self.secrets.put(secret.namespace, secret.name, secret.data, secret.type)
        if action != "unchanged":
            catalog = await fetch_catalog(self.client)
            stores = [*catalog.git_state_stores.values(), *catalog.bucket_state_stores.values()]
            for store in stores:
                ref = store.spec.secret_ref
                if ref is not None and (ref.name, ref.namespace) == (secret.name, secret.namespace):
                    await self._signal(
                        state_store_workflow_id(store.kind, store.metadata.name),
                        StateStoreWorkflow.recheck,
                        StoreCheckRequest(reason=f"Secret {secret.namespace}/{secret.name} changed"),
                    )
        return Applied(kind="Secret", name=secret.name, namespace=secret.namespace, action=action)

    async def _signal(self, workflow_id: str, signal: Any, arg: BaseModel) -> None:
        try:
            await self.client.get_workflow_handle(workflow_id).signal(signal, arg)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise

    async def _apply_promise(
        self, promise: Promise, document: dict[str, Any], precondition: str | None = None
    ) -> Applied:
        # A CRD of a megabyte takes a while to check: off the event loop, so other requests keep being answered.
        api = await asyncio.to_thread(self._admit_promise, promise)
        if api is not None:
            await self._catalog_update(CatalogWorkflow.register_api, RegisterApiInput(api=api))
        name = promise.metadata.name
        start = WithStartWorkflowOperation(
            PromiseWorkflow.run,
            PromiseWorkflowInput(state=PromiseState(name=name)),
            id=promise_workflow_id(name),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(KIND, "Promise"),
                    SearchAttributePair(PROMISE, name),
                    SearchAttributePair(PHASE, "Pending"),
                ]
            ),
        )
        arg = ApplyInput(document=document, resource_version=precondition)
        if precondition is None:
            result = await self._update_with_start(PromiseWorkflow.apply, arg, start)
        else:  # a change of what the client read: never a create
            result = await self._update(
                promise_workflow_id(name), PromiseWorkflow.apply, arg, f'promise "{name}" not found'
            )
        return Applied(kind="Promise", name=name, action=result.action)

    async def _admit_release(self, release: PromiseRelease) -> list[str]:
        """Kratix's webhook on create: the Promise must be fetchable now, or the release is refused (422 naming the
        URL and why); a version label that would fail the install is a warning only. The Secret is read here, in
        this process, and sent to the source only."""
        source = release.spec.source_ref
        try:
            header = authorization_header(self.secrets, source.secret_ref)
            fetched = await fetch_promise(source.url, header)
        except FetchFailed as exc:
            raise InvalidDocument([FieldError("spec.sourceRef.url", f"failed to fetch promise: {exc}")]) from None
        warning = admission_warning(release.spec.version, fetched)
        return [warning] if warning else []

    async def _apply_promise_release(self, release: PromiseRelease, precondition: str | None = None) -> Applied:
        name = release.metadata.name
        workflow_id = promise_release_workflow_id(name)
        # Kratix's webhook fetches on create only; an update is checked for its URL alone (the model does that).
        warnings = [] if await self._describe_running(workflow_id) else await self._admit_release(release)
        arg = ApplyInput(document=release.to_doc(), resource_version=precondition)
        if precondition is None:
            start = WithStartWorkflowOperation(
                PromiseReleaseWorkflow.run,
                PromiseReleaseWorkflowInput(state=PromiseReleaseState(name=name)),
                id=workflow_id,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                task_queue=self.task_queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(KIND, "PromiseRelease"), SearchAttributePair(PHASE, "Pending")]
                ),
            )
            result = await self._update_with_start(PromiseReleaseWorkflow.apply, arg, start)
        else:
            result = await self._update(
                workflow_id, PromiseReleaseWorkflow.apply, arg, f'promiserelease "{name}" not found'
            )
        return Applied(kind="PromiseRelease", name=name, action=result.action, warnings=warnings)

    async def _live(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(kind, name)
        except (NotFound, Conflict):  # gone, or its workflow ended: the delete says which
            return None

    async def _describe_running(self, workflow_id: str) -> WorkflowExecutionDescription | None:
        description = await self._describe(workflow_id)
        return description if description and description.status == WorkflowExecutionStatus.RUNNING else None

    async def _release_promise_deleted(self, promise: dict[str, Any]) -> None:
        """A released Promise being deleted: its release installs it again, as Kratix's owner watch makes it do."""
        release = ((promise.get("metadata") or {}).get("labels") or {}).get(RELEASE_NAME_LABEL)
        if isinstance(release, str) and release:
            await self._signal(
                promise_release_workflow_id(release),
                PromiseReleaseWorkflow.promise_deleted,
                PromiseGone(promise=promise["metadata"]["name"]),
            )

    async def _validated_request(self, document: dict[str, Any]) -> tuple[PromiseApi, ResourceRequest]:
        """The Promise API serving the document's kind, and the request checked against its schema."""
        catalog = await fetch_catalog(self.client)
        api = catalog.find_api(str(document.get("apiVersion")), str(document.get("kind")))
        if api is None:
            raise NotFound(
                f"no Promise serves kind {document.get('kind')!r} in {document.get('apiVersion')!r}; "
                "is the Promise installed?"
            )
        # Off the event loop: a large request against a large schema must not hold every other request up.
        return api, await asyncio.to_thread(validate_resource_request, api, document)

    async def _apply_resource(self, document: dict[str, Any], precondition: str | None = None) -> Applied:
        api, request = await self._validated_request(document)
        namespace = request.metadata.namespace or "default"
        name = request.metadata.name
        document = request.to_doc()
        # Kratix's resource controller first labels every request with its Promise (overwriting any other value), so
        # pipelines and readers see it; here it is on the document before anything stores it.
        document.setdefault("metadata", {}).setdefault("labels", {})[PROMISE_NAME] = api.promise
        workflow_id = resource_workflow_id(api.promise, namespace, name)
        applied = Applied(kind=api.kind, name=name, namespace=namespace, action="created")
        # A new resource is accepted as soon as Temporal has its workflow (as kubectl's apply returns once etcd has
        # the object): no worker takes part, so a burst of requests is not queued behind the pipelines' work. An
        # existing one is updated, which the worker answers. A workflow ending between the two (a delete
        # finishing) sends the request round again.
        # A closed workflow of the same name is looked at before it is replaced: one that ended without deleting its
        # object (a failure, a termination) hands its placements to the new one, which rewrites or removes its files.
        reuse, carried = WorkflowIDReusePolicy.REJECT_DUPLICATE, list[Placement]()
        if precondition is not None:  # a change of what the client read: never a create
            result = await self._update(
                workflow_id,
                ResourceWorkflow.apply,
                ApplyInput(document=document, resource_version=precondition),
                f'{api.kind.lower()} "{name}" not found',
            )
            return applied.model_copy(update={"action": result.action})
        for _ in range(3):
            try:
                await self.client.start_workflow(
                    ResourceWorkflow.run,
                    ResourceWorkflowInput(
                        state=ResourceState(promise=api.promise, namespace=namespace, name=name, placements=carried),
                        initial=ApplyInput(document=document),
                    ),
                    id=workflow_id,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=reuse,
                    task_queue=self.task_queue,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(KIND, api.kind),
                            SearchAttributePair(PROMISE, api.promise),
                            SearchAttributePair(NAMESPACE, namespace),
                            SearchAttributePair(PHASE, "Pending"),
                        ]
                    ),
                    # What `get` shows until the worker publishes the object's own memo: the request, no status yet.
                    memo={"object": document},
                )
                return applied
            except WorkflowAlreadyStartedError:
                pass
            try:
                result = await self.client.get_workflow_handle(workflow_id).execute_update(
                    ResourceWorkflow.apply, ApplyInput(document=document)
                )
            except WorkflowUpdateFailedError as exc:
                raise _domain_error(exc) from exc
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                reuse, carried = WorkflowIDReusePolicy.ALLOW_DUPLICATE, await self._left_behind(workflow_id)
                continue
            return applied.model_copy(update={"action": result.action})
        raise Conflict(f'{api.kind.lower()} "{name}" is being replaced by another request; apply it again')

    async def _apply_health_record(self, document: dict[str, Any]) -> Applied:
        """A HealthRecord lives with the resource it reports on, which folds it into `status.healthStatus`."""
        record = read_health_record(document)
        api = (await fetch_catalog(self.client)).apis.get(record.promise)
        if api is None:
            raise NotFound(f'promise "{record.promise}" not found (data.promiseRef.name)')
        workflow_id = resource_workflow_id(record.promise, record.resource.namespace, record.resource.name)
        await self._update(
            workflow_id,
            ResourceWorkflow.record_health,
            HealthRecordInput(record=record),
            f'{api.kind.lower()} "{record.resource.name}" not found (data.resourceRef)',
        )
        return Applied(kind="HealthRecord", name=record.name, namespace=record.namespace, action="configured")

    async def _left_behind(self, workflow_id: str) -> list[Placement]:
        """The placements of an object whose workflow ended without deleting it: its files are still in the stores."""
        description = await self._describe(workflow_id)
        if description is None or description.status not in _ENDED_UNDELETED:
            return []
        return [Placement.model_validate(p) for p in (await description.memo()).get("placements") or []]

    async def _ended(self, description: WorkflowExecutionDescription, what: str) -> Conflict:
        """What to say of an object whose workflow ended without deleting it (which the workflows never do on purpose:
        a bug, or an operator's `temporal workflow terminate`): why, and how to recover."""
        try:
            await self.client.get_workflow_handle(description.id, run_id=description.run_id).result(follow_runs=False)
            reason = ""
        except Exception as exc:  # the failure itself is the answer: its message says why the workflow ended
            cause = exc.__cause__ or exc
            reason = f": {cause}"[:1000]
        status = description.status.name.lower() if description.status else "closed"
        return Conflict(
            f"{what}: its workflow {status}{reason}; it is no longer reconciled. `ktx delete` removes the "
            "files it wrote, applying it again starts it afresh and takes them over"
        )

    async def _update(self, workflow_id: str, update: Any, arg: BaseModel, missing: str) -> Any:
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
            if description.status in _ENDED_UNDELETED:
                raise await self._ended(description, missing.replace(" not found", ""))
            if description.status != WorkflowExecutionStatus.RUNNING:
                raise NotFound(missing)
            return await self.client.get_workflow_handle(workflow_id).execute_update(update, arg)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(missing) from exc
            raise
        except WorkflowUpdateFailedError as exc:
            raise _domain_error(exc) from exc

    async def _update_with_start(self, update: Any, arg: BaseModel, start: WithStartWorkflowOperation) -> Any:
        try:
            return await self.client.execute_update_with_start_workflow(update, arg, start_workflow_operation=start)
        except WorkflowUpdateFailedError as exc:
            raise _domain_error(exc) from exc

    # --- rollouts ---

    async def preview_rollout(self, document: dict[str, Any]) -> tuple[rp.RolloutPlan, rp.PlanOrder]:
        """The plan and the order it would run in, from the requests as they are now; nothing is started."""
        plan = rp.parse_plan(document)
        api = (await fetch_catalog(self.client)).apis.get(plan.promise)
        if api is None:
            raise NotFound(f'promise "{plan.promise}" not found (spec.promiseRef.name)')
        revision = await fetch_revision(self.client, plan.promise, plan.to_version)
        target = revision.snapshot.api if revision is not None else None
        if target is None:
            raise InvalidDocument(
                [
                    FieldError(
                        "spec.toVersion",
                        f"Invalid value: {plan.to_version!r}: promise {plan.promise} has no revision of that version "
                        "serving an API",
                    )
                ]
            )
        candidates = [
            rp.Candidate(
                namespace=obj["metadata"].get("namespace") or "default",
                name=obj["metadata"]["name"],
                labels=obj["metadata"].get("labels") or {},
                version=(obj.get("status") or {}).get("promiseVersion"),
                document={k: v for k, v in obj.items() if k not in ("status", "_ktx")},
            )
            for obj in await self.list(api.kind, promise=plan.promise)
        ]

        def problems(request: dict[str, Any]) -> list[FieldError]:
            found = request_fits_api(target, request)
            return [found] if found is not None else []

        order = await asyncio.to_thread(rp.order_plan, plan, candidates, problems)
        return plan, order

    async def create_rollout(self, document: dict[str, Any]) -> tuple[Applied, rp.PlanOrder]:
        """Starts the plan's workflow; the same plan applied again is unchanged, a changed one refused (409)."""
        size = len(json.dumps(document, separators=(",", ":"), default=str))
        if size > self.max_document:
            raise DocumentTooLarge(size, self.max_document)
        plan, order = await self.preview_rollout(document)
        stored = {k: v for k, v in document.items() if k != "status"}
        # The metadata the Kubernetes API shows of every object, the server's to set: a plan's age is its column.
        stored["metadata"] = {
            **{k: v for k, v in document["metadata"].items() if k not in ("uid", "creationTimestamp", "generation")},
            "uid": str(uuid.uuid4()),
            "creationTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generation": 1,
        }
        # The Promise's workflow starts the plan: it refuses a second live plan of the Promise (docs/rollouts.md).
        result = await self._update(
            promise_workflow_id(plan.promise),
            PromiseWorkflow.start_rollout,
            StartRollout(
                plan=plan.name, rollout=RolloutWorkflowInput(progress=RolloutProgress.of(plan, order), document=stored)
            ),
            f'promise "{plan.promise}" not found (spec.promiseRef.name)',
        )
        if result.started:
            return Applied(kind=rp.KIND, name=plan.name, action="created"), order
        current = await self.rollout(plan.name)
        if current.get("spec") != stored.get("spec"):
            raise Conflict(
                f'rolloutplan "{plan.name}" exists with another spec: a plan does not change once it runs; '
                "delete it (ktx rollout delete) and create it again"
            )
        return Applied(kind=rp.KIND, name=plan.name, action="unchanged"), order

    async def rollout(self, name: str) -> dict[str, Any]:
        return await self._get_workflow_object(rollout_workflow_id(name), rp.KIND, name)

    async def rollouts(self) -> list[dict[str, Any]]:
        """Every plan there is, by name."""
        objects = await self._listed([equals(KIND.name, rp.KIND)])
        return sorted(objects, key=lambda o: o["metadata"]["name"])

    async def control_rollout(self, name: str, control: Control) -> str:
        """pause, resume, abort, rollback or delete; Conflict naming the phase when it does not apply now."""
        result = await self._update(
            rollout_workflow_id(name),
            RolloutWorkflow.control,
            RolloutControlRequest(control=control),
            f'rolloutplan "{name}" not found',
        )
        return result.phase

    # --- read ---

    async def resolve_kind(self, kind: str) -> tuple[str, PromiseApi | None]:
        """Map what a user typed (kind, plural, singular, short name) to a kind and, for resources, its API."""
        platform_kind = PLATFORM_KIND_NAMES.get(kind.lower())
        if platform_kind:
            return platform_kind, None
        api = (await fetch_catalog(self.client)).resolve_kind(kind)
        if api is None:
            raise NotFound(f"the server doesn't have a resource type {kind!r}")
        return api.kind, api

    async def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
        resolved, api = await self.resolve_kind(kind)
        if resolved == "ResourceBinding":
            return await self.revisions.get_binding(name, namespace)
        if resolved == "PromiseRevision":
            return await self.revisions.get_revision(name)
        if resolved == "HealthRecord":
            found = [
                r
                for r in await self._health_records()
                if (r["metadata"]["namespace"], r["metadata"]["name"]) == (namespace, name)
            ]
            if not found:
                raise NotFound(f'healthrecord "{name}" not found')
            return found[0]
        if resolved == "Secret":
            found = [s for s in self.secrets.summaries() if (s.namespace, s.name) == (namespace, name)]
            if not found:
                raise NotFound(f'secret "{name}" not found')
            return _secret_doc(found[0])
        if resolved in _CATALOG_KINDS:
            entry = getattr(await fetch_catalog(self.client), _CATALOG_KINDS[resolved]).get(name)
            if entry is None:
                raise NotFound(f'{resolved.lower()} "{name}" not found')
            return await self._with_status(entry)
        workflow_id = _object_workflow_id(resolved, api, name, namespace)
        return await self._get_workflow_object(workflow_id, resolved, name)

    async def _get_workflow_object(self, workflow_id: str, kind: str, name: str) -> dict[str, Any]:
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f'{kind.lower()} "{name}" not found') from exc
            raise
        if description.status in _ENDED_UNDELETED:
            raise await self._ended(description, f'{kind.lower()} "{name}"')
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise NotFound(f'{kind.lower()} "{name}" not found')
        return await _object_from(description)

    async def list(self, kind: str, namespace: str | None = None, promise: str | None = None) -> list[dict[str, Any]]:
        resolved, api = await self.resolve_kind(kind)
        if resolved == "ResourceBinding":
            return await self.revisions.list_bindings(namespace)
        if resolved == "PromiseRevision":
            return await self.revisions.list_revisions(promise)
        if resolved == "HealthRecord":
            return [r for r in await self._health_records() if namespace in (None, r["metadata"]["namespace"])]
        if resolved == "Secret":
            return [_secret_doc(s) for s in self.secrets.summaries() if namespace in (None, s.namespace)]
        if resolved in _CATALOG_KINDS:
            return (await self.catalog_objects([resolved]))[resolved]
        clauses = [equals(KIND.name, resolved)]
        if api is not None:
            clauses.append(equals(PROMISE.name, api.promise))
        if namespace and api is not None:
            clauses.append(equals(NAMESPACE.name, namespace))
        if promise:
            clauses.append(equals(PROMISE.name, promise))
        objects = await self._listed(clauses)
        if resolved == dr.KIND and namespace:
            # Not by the namespace attribute: that one marks the resources' workflows (all_resources).
            objects = [o for o in objects if o["metadata"].get("namespace") == namespace]
        return sorted(objects, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    async def catalog_objects(self, kinds: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The Destinations and state stores of these kinds, by name, each with its status, from one read of the
        catalog: the overview shows all three kinds, and a `list` of each would read the catalog three times."""
        if not kinds:
            return {}
        catalog = await fetch_catalog(self.client)
        entries = {kind: getattr(catalog, _CATALOG_KINDS[kind]) for kind in kinds}
        listed = await asyncio.gather(
            *[self._with_status(of_kind[n]) for of_kind in entries.values() for n in sorted(of_kind)]
        )
        found = iter(listed)
        return {kind: [next(found) for _ in of_kind] for kind, of_kind in entries.items()}

    async def _listed(self, clauses: list[str]) -> list[dict[str, Any]]:
        """Every object whose workflow the clauses select and that exists throughout the list, once
        (service/listing.py). Visibility lags the workflows: a workflow started a moment ago may be listed before its
        first memo, with no object to show yet. It is left out, as if the list had been read a moment earlier."""
        objects = [await _object_from(w) for w in await current_runs(self.client, clauses, self.list_page_size)]
        return [o for o in objects if "metadata" in o]

    async def _with_status(self, entry: Destination | GitStateStore | BucketStateStore) -> dict[str, Any]:
        """The catalog entry with the status its workflow publishes; Destinations also count what they hold."""
        doc = entry.to_doc()
        name = entry.metadata.name
        workflow_id = (
            destination_workflow_id(name)
            if isinstance(entry, Destination)
            else state_store_workflow_id(entry.kind, name)
        )
        try:
            memo = await (await self.client.get_workflow_handle(workflow_id).describe()).memo()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            memo = {}
        doc["status"] = memo.get("status") or {}
        extra: dict[str, Any] = {
            "workflowId": workflow_id,
            "events": memo.get("events") or [],
            "resourceVersion": memo.get("resourceVersion") or "0",
        }
        if isinstance(entry, Destination):
            held = await self.client.count_workflows(
                f'{equals(DESTINATIONS.name, name)} AND ExecutionStatus = "Running"'
            )
            extra["objects"] = held.count
        doc["_ktx"] = extra
        return doc

    async def observed(self, execution: WorkflowExecution) -> Observed | None:
        """An object's workflow as the change feed lists it, in Platform.get's shape (service/change_feed.py); None for
        one not yet showing an object, or not an object's workflow."""
        attributes = execution.typed_search_attributes
        kind, version = attributes.get(KIND), attributes.get(RESOURCE_VERSION)
        if not kind or version is None or execution.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            return None  # a continued run's successor carries its state on, with a newer version
        closed = execution.status != WorkflowExecutionStatus.RUNNING
        memo = await execution.memo()
        if kind in _CATALOG_KINDS:
            name = execution.id.split("/", 1)[1]
            if kind == "GitStateStore" or kind == "BucketStateStore":
                # Its workflow publishes status only; the document is the catalog's.
                obj = None if closed else await self._catalog_object(kind, name)
                obj = obj or {"apiVersion": KRATIX_API_VERSION, "kind": kind, "metadata": {"name": name}}
            else:
                obj = dict(memo.get("object") or {"apiVersion": KRATIX_API_VERSION, "kind": kind})
            obj["status"] = memo.get("status") or {}
            obj["_ktx"] = {
                "workflowId": execution.id,
                "events": memo.get("events") or [],
                "resourceVersion": memo.get("resourceVersion") or "0",
            }
        else:
            obj = await _object_from(execution)
            if "metadata" not in obj:
                return None
            if kind == "Promise":  # what a watch of PromiseRevisions derives its changes from
                obj["_ktx"]["revisions"] = memo.get("revisions") or []
        return Observed(
            workflow_id=execution.id,
            resource_version=version,
            closed=closed,
            created=int(memo.get("createdResourceVersion") or 0),
            object=obj,
            kind=kind,
            promise=attributes.get(PROMISE) or "",
        )

    async def _catalog_object(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(kind, name)
        except NotFound:
            return None

    async def catalog(self) -> Catalog:
        return await fetch_catalog(self.client)

    async def destination_manifests(self, name: str, gitops: GitOpsAgent) -> list[dict[str, Any]]:
        """What to apply on a Destination's cluster so Flux or ArgoCD pulls the Destination from its state store."""
        catalog = await fetch_catalog(self.client)
        destination = catalog.destinations.get(name)
        if destination is None:
            raise NotFound(f'destination "{name}" not found')
        ref = destination.spec.state_store_ref
        store = catalog.state_store(ref.kind, ref.name)
        if store is None:
            raise NotFound(f'{ref.kind.lower()} "{ref.name}" not found (spec.stateStoreRef of destination "{name}")')
        return gitops_manifests(gitops, destination, store)

    async def all_resources(self) -> list[dict[str, Any]]:
        return await self.resources()

    async def resources(
        self,
        promise: str | None = None,
        namespaces: list[str] | None = None,
        phase: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every Promise's resource requests, narrowed by visibility (not in memory) to a Promise, to some namespaces
        (None: all of them) and to a phase (the KtxPhase search attribute) when given: the web console's views."""
        clauses = _resources_clauses(promise, namespaces, phase)
        return [] if clauses is None else await self._listed(clauses)

    async def count_resources(
        self,
        promise: str | None = None,
        namespaces: list[str] | None = None,
        phase: str | None = None,
        version: str | None = None,
    ) -> int:
        """How many `resources` there are, counted by visibility (no memo read); `version`: of those last reconciled
        at that Promise version (the KtxPromiseVersion search attribute)."""
        clauses = _resources_clauses(promise, namespaces, phase, version)
        return 0 if clauses is None else (await self.client.count_workflows(" AND ".join([*clauses, RUNNING]))).count

    async def resources_page(
        self,
        promise: str | None,
        namespaces: list[str] | None,
        phase: str | None,
        limit: int,
        page_token: bytes | None = None,
    ) -> tuple[list[dict[str, Any]], bytes | None, int]:
        """One page of `resources` in visibility's order (newest first), the token of the next page (None after the
        last) and how many there are in all: a page reads `limit` memos, not every request's."""
        clauses = _resources_clauses(promise, namespaces, phase)
        if clauses is None:
            return [], None, 0
        total, (runs, following) = await asyncio.gather(
            self.client.count_workflows(" AND ".join([*clauses, RUNNING])),
            current_page(self.client, clauses, limit, page_token),
        )
        objects = [await _object_from(w) for w in runs]
        return [o for o in objects if "metadata" in o], following, total.count

    async def _health_records(self) -> list[dict[str, Any]]:
        records = [r for obj in await self.all_resources() for r in obj["_ktx"]["health"]]
        return sorted(records, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"]))

    async def tree(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
        """An object and the resources its pipelines requested through the platform Destination, recursively."""
        root = await self.get(kind, name, namespace)
        resources = await self.all_resources()

        def node(obj: dict[str, Any], depth: int) -> dict[str, Any]:
            meta = obj["metadata"]
            promise = obj["_ktx"]["workflowId"].split("/")[1] if obj["kind"] != "Promise" else meta["name"]
            children = (
                []
                if depth > 10
                else [
                    node(child, depth + 1)
                    for child in resources
                    if (child["metadata"].get("labels") or {}).get(COMPONENT_OF_RESOURCE) == meta["name"]
                    and (child["metadata"].get("labels") or {}).get(COMPONENT_OF_NAMESPACE) == meta.get("namespace")
                    and (child["metadata"].get("labels") or {}).get(COMPONENT_OF_PROMISE) == promise
                ]
            )
            reconciled = get_condition(obj.get("status") or {}, "Reconciled") or {}
            return {
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "promise": promise,
                "status": reconciled.get("message", "Pending"),
                "children": children,
            }

        return node(root, 0)

    # --- controls ---

    async def label(
        self,
        kind: str,
        name: str,
        namespace: str = "default",
        set: dict[str, str] | None = None,
        remove: list[str] | None = None,
    ) -> dict[str, str]:
        resolved, api = await self.resolve_kind(kind)
        if resolved in _CATALOG_KINDS or resolved in ("HealthRecord", "PromiseRelease", dr.KIND):
            raise Conflict(f"labels on {resolved} objects are set by applying the document")
        # Refused here, before Temporal: a change carries at most what the workflow would accept (the workflow checks
        # again against the labels it holds).
        check_label_change(set or {}, remove or [])
        if resolved == "ResourceBinding":
            return await self.revisions.label_binding(name, namespace, set or {}, remove or [])
        if resolved == "PromiseRevision":
            raise Conflict("PromiseRevisions' labels are their Promise's")
        workflow_id = promise_workflow_id(name) if api is None else resource_workflow_id(api.promise, namespace, name)
        update = PromiseWorkflow.label if api is None else ResourceWorkflow.label
        result = await self._update(
            workflow_id,
            update,
            LabelRequest(set=set or {}, remove=remove or []),
            f'{resolved.lower()} "{name}" not found',
        )
        return result.labels

    async def patch_status(
        self,
        kind: str,
        name: str,
        namespace: str = "default",
        patch: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> dict[str, Any]:
        """The status subresource of a Promise or resource: a merge patch of its status (or, `replace`, the whole
        status), kept by its workflow as durably as the status its pipelines write. Returns the status."""
        resolved, api = await self.resolve_kind(kind)
        if resolved != "Promise" and api is None:
            raise Conflict(f"the status of {resolved} objects is the platform's to set")
        workflow_id = promise_workflow_id(name) if api is None else resource_workflow_id(api.promise, namespace, name)
        update = PromiseWorkflow.patch_status if api is None else ResourceWorkflow.patch_status
        result = await self._update(
            workflow_id,
            update,
            StatusPatch(patch=patch or {}, replace=replace),
            f'{resolved.lower()} "{name}" not found',
        )
        return result.status

    async def reconcile(self, kind: str, name: str, namespace: str = "default") -> dict[str, str]:
        """`ktx reconcile`: the same as labelling the object `kratix.io/manual-reconciliation=true`.

        For a Destination: a full re-sync, rewriting its canary files and every output placed on it.
        """
        resolved, _ = await self.resolve_kind(kind)
        if resolved == "Destination":
            await self._update(
                destination_workflow_id(name),
                DestinationWorkflow.resync,
                ResyncRequest(reason="ktx reconcile destination"),
                f'destination "{name}" not found',
            )
            return {}
        return await self.label(kind, name, namespace, set={MANUAL_RECONCILIATION: "true"})

    async def logs(
        self,
        kind: str,
        name: str,
        namespace: str = "default",
        pipeline: str | None = None,
        container: str | None = None,
        limit_bytes: int = LOG_RESPONSE_BYTES,
        logs_dir: Path | None = None,
    ) -> list[dict[str, Any]]:
        """The log of each container of each pipeline's latest run, read from the worker's log directory: its last
        `limit_bytes`, with `truncated` and the stored size saying whether that was all of it. With `logs_dir` (the
        worker's, on this host), the run in progress too, as far as its containers have written (`running: true`)."""
        obj = await self.get(kind, name, namespace)
        found: list[dict[str, Any]] = []
        if logs_dir is not None:
            found += await self._running_logs(obj.get("_ktx", {}), pipeline, container, limit_bytes, logs_dir)
        for run in obj.get("_ktx", {}).get("runs", []):  # stores and Destinations run no pipelines
            if pipeline not in (None, run["pipeline"]):
                continue
            for c in run["containers"]:
                if container not in (None, c["name"]):
                    continue
                path = Path(c.get("log_file") or "")
                if path.is_file():
                    text, size = await asyncio.to_thread(read_tail, path, limit_bytes)
                else:
                    text = c.get("log_tail", "")
                    size = len(text.encode())
                found.append(
                    _log_entry(run["pipeline"], run["action"], run["run_id"], c["name"], text, size, limit_bytes)
                    | {"exitCode": c["exit_code"]}
                )
        if not found:
            raise NotFound(
                f"no logs for {kind}/{name}"
                + (f" pipeline {pipeline}" if pipeline else "")
                + (f" container {container}" if container else "")
            )
        return found

    async def _running_logs(
        self, ktx: dict[str, Any], pipeline: str | None, container: str | None, limit_bytes: int, logs_dir: Path
    ) -> list[dict[str, Any]]:
        """The containers of the run in progress that have started writing, asked of the object's workflow (the run's
        ID is random, so it cannot be derived). Objects that run no pipelines (stores, Destinations: no `runs`), no
        worker to answer, or no run, give no entry: logs stay readable."""
        if "runs" not in ktx or not ktx.get("workflowId"):
            return []
        handle = self.client.get_workflow_handle(ktx["workflowId"])
        try:
            running = await handle.query(
                RUNNING_PIPELINE_QUERY, result_type=RunningPipeline, rpc_timeout=timedelta(seconds=5)
            )
        except Exception:  # noqa: BLE001 - a query needs a live worker; without one there is simply no live log
            return []
        if running is None or pipeline not in (None, running.name):
            return []
        found = []
        for each in running.containers:
            if container not in (None, each):
                continue
            try:
                path = log_path(logs_dir, running.run_id, each)
            except ValueError:
                continue
            if not path.is_file():
                continue  # not started yet
            text, size = await asyncio.to_thread(read_tail, path, limit_bytes)
            entry = _log_entry(running.name, running.action, running.run_id, each, text, size, limit_bytes)
            found.append(entry | {"exitCode": None, "running": True})
        return found

    async def placement_files(
        self, kind: str, name: str, namespace: str, destination: str, path: str, git_cache_dir: Path
    ) -> dict[str, Any]:
        """The files of one of a request's placements (the one on `destination` at `path`): a Git store's as its
        commit holds them, read from the worker's clone in `git_cache_dir`; a bucket's as the bucket holds them now,
        read from the bucket with the store's credentials. Only a path one of its placements names is read; a commit
        this host's cache does not hold, and a bucket that cannot be read, are NotFound with why."""
        obj = await self.get(kind, name, namespace)
        placement = next(
            (
                Placement.model_validate(p)
                for p in obj.get("_ktx", {}).get("placements") or []
                if p.get("destination") == destination and p.get("path") == path
            ),
            None,
        )
        if placement is None:
            raise NotFound(f"{kind}/{name} has no placement on {destination!r} at {path!r}")
        if placement.store_kind == "BucketStateStore":
            files = await self._bucket_files(placement)
        else:
            files = await self._committed_files(placement, git_cache_dir)
        return {
            "destination": destination,
            "store": placement.store_key,
            "path": placement.path,
            "commit": placement.version_id,
            **files,
        }

    async def _committed_files(self, placement: Placement, git_cache_dir: Path) -> dict[str, Any]:
        if not placement.version_id:
            raise NotFound(f"the placement on {placement.destination} is not committed yet")
        store = (await self.catalog()).git_state_stores.get(placement.store_name)
        if store is None:
            raise NotFound(f"state store {placement.store_key} not found")

        def read() -> dict[str, Any]:
            clone = find_clone(git_cache_dir, store.spec.url, placement.version_id)
            found = committed_files(clone, placement.version_id, placement.path)
            return {"files": [vars(f) for f in found.files], "total": found.total}

        try:
            return await asyncio.to_thread(read)
        except NotHeld as exc:
            raise NotFound(str(exc)) from None

    async def _bucket_files(self, placement: Placement) -> dict[str, Any]:
        """A bucket keeps no history ktx could read at the placement's version (a hash of what was uploaded, not an
        S3 version ID), so what is shown is what the bucket holds under the placement's keys now."""
        store = (await self.catalog()).bucket_state_stores.get(placement.store_name)
        if store is None:
            raise NotFound(f"state store {placement.store_key} not found")
        spec = store.spec

        def read() -> dict[str, Any]:
            connection = BucketClient(
                spec.endpoint,
                spec.bucket_name,
                spec.insecure,
                bucket_credentials(self.secrets, spec),
                config=READ_CONFIG,
            )
            found = placed_objects(connection.client, spec.bucket_name, spec.path, placement.slot)
            return {"files": [vars(f) for f in found.files], "total": found.total}

        try:
            return await asyncio.to_thread(read)
        except StoreNotReady as exc:
            raise NotFound(f"state store {placement.store_key}: {exc}") from None
        except NotHeld as exc:
            raise NotFound(str(exc)) from None

    # --- delete ---

    async def delete(self, kind: str, name: str, namespace: str = "default", force: bool = False) -> str:
        resolved, api = await self.resolve_kind(kind)
        if resolved == "ResourceBinding":
            await self.revisions.delete_binding(name, namespace)
            return resolved
        if resolved == "PromiseRevision":
            await self.revisions.delete_revision(name)
            return resolved
        if resolved == dr.KIND:
            workflow_id = dry_run_workflow_id(namespace, name)
            await self._update(workflow_id, DryRunWorkflow.delete, DeleteRequest(), f'dryrun "{name}" not found')
            return workflow_id
        if resolved == "HealthRecord":
            record = await self.get(kind, name, namespace)
            data = record["data"]
            target = resource_workflow_id(
                data["promiseRef"]["name"],
                data["resourceRef"].get("namespace") or namespace,
                data["resourceRef"]["name"],
            )
            await self._update(
                target,
                ResourceWorkflow.remove_health,
                RemoveHealthRecordInput(name=name, namespace=namespace),
                f'healthrecord "{name}" not found',
            )
            return resolved
        if resolved == "Secret":
            if not self.secrets.delete(namespace, name):
                raise NotFound(f'secret "{name}" not found')
            return resolved
        if resolved in _CATALOG_KINDS:
            await self._catalog_update(CatalogWorkflow.remove, RemoveEntryInput(kind=resolved, name=name))  # type: ignore[arg-type]
            if resolved == "Destination":
                workflow_id = destination_workflow_id(name)
                await self._update(
                    workflow_id, DestinationWorkflow.remove, RemoveDestination(), f'destination "{name}" not found'
                )
            else:
                workflow_id = state_store_workflow_id(resolved, name)
                await self._update(
                    workflow_id,
                    StateStoreWorkflow.remove,
                    StoreCheckRequest(reason="deleted"),
                    f'{resolved.lower()} "{name}" not found',
                )
            return workflow_id
        if resolved == "PromiseRelease":
            workflow_id = promise_release_workflow_id(name)
            await self._update(
                workflow_id,
                PromiseReleaseWorkflow.delete,
                DeleteRequest(force=force),
                f'promiserelease "{name}" not found',
            )
            return workflow_id
        released = await self._live(resolved, name) if resolved == "Promise" else None
        workflow_id = promise_workflow_id(name) if api is None else resource_workflow_id(api.promise, namespace, name)
        update = PromiseWorkflow.delete if api is None else ResourceWorkflow.delete
        try:
            await self.client.get_workflow_handle(workflow_id).execute_update(update, DeleteRequest(force=force))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                if await self._clean_up_after(workflow_id, api, name, namespace, force):
                    return workflow_id
                raise NotFound(f'{resolved.lower()} "{name}" not found') from exc
            raise
        except WorkflowUpdateFailedError as exc:
            raise _domain_error(exc) from exc
        if released is not None:
            await self._release_promise_deleted(released)
        return workflow_id

    async def _clean_up_after(
        self, workflow_id: str, api: PromiseApi | None, name: str, namespace: str, force: bool
    ) -> bool:
        """Deleting an object whose workflow ended without deleting it: a new run of its workflow, told to delete
        from the start, removes the files the ended one wrote (its placements, from its memo). False if there is
        nothing to clean up (never created, or deleted)."""
        description = await self._describe(workflow_id)
        if description is None or description.status not in _ENDED_UNDELETED:
            return False
        memo = await description.memo()
        document = memo.get("object") or {}
        # Shown as deleting (Kubernetes' deletionTimestamp) from now until the clean-up run ends.
        document.setdefault("metadata", {}).setdefault("deletionTimestamp", iso(datetime.now(timezone.utc)))
        carried = {
            "document": document,
            "status": memo.get("status") or {},
            "placements": [Placement.model_validate(p) for p in memo.get("placements") or []],
            "delete_requested": True,
            "force_delete": force,
        }
        if api is None:
            run: Any = PromiseWorkflow.run
            arg: BaseModel = PromiseWorkflowInput(state=PromiseState(name=name, **carried))
            attributes = [SearchAttributePair(KIND, "Promise"), SearchAttributePair(PROMISE, name)]
        else:
            run = ResourceWorkflow.run
            arg = ResourceWorkflowInput(
                state=ResourceState(promise=api.promise, namespace=namespace, name=name, **carried)
            )
            attributes = [
                SearchAttributePair(KIND, api.kind),
                SearchAttributePair(PROMISE, api.promise),
                SearchAttributePair(NAMESPACE, namespace),
            ]
        try:
            await self.client.start_workflow(
                run,
                arg,
                id=workflow_id,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                task_queue=self.task_queue,
                search_attributes=TypedSearchAttributes([*attributes, SearchAttributePair(PHASE, "Deleting")]),
                memo={"object": carried["document"], "status": carried["status"]},
            )
        except WorkflowAlreadyStartedError:
            pass  # another delete started the clean-up first
        return True

    async def _describe(self, workflow_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def wait_deleted(self, workflow_id: str, timeout: float) -> bool:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            await asyncio.wait_for(handle.result(), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def wait_condition(
        self, kind: str, name: str, namespace: str, condition: str, timeout: float
    ) -> dict[str, Any]:
        """Poll the memo (a few ms per read, no worker involved) until the condition is True."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            obj = await self.get(kind, name, namespace)
            found = get_condition(obj.get("status") or {}, condition)
            if found and found.get("status") == "True":
                return obj
            if time.monotonic() + delay > deadline:
                summary = {
                    c.get("type"): f"{c.get('status')}/{c.get('reason')}"
                    for c in (obj.get("status") or {}).get("conditions", [])
                }
                raise TimeoutError(
                    f"timed out waiting for condition {condition} on {kind}/{name}; conditions: {summary}"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


def _resources_clauses(
    promise: str | None, namespaces: list[str] | None, phase: str | None, version: str | None = None
) -> list[str] | None:
    """The visibility clauses of resource requests so narrowed, any run; None when no namespace is allowed (nothing
    to list)."""
    if namespaces is not None and not namespaces:
        return None
    clauses = [f"{NAMESPACE.name} IS NOT NULL"]
    clauses += [equals(a.name, v) for a, v in ((PROMISE, promise), (PHASE, phase), (PROMISE_VERSION, version)) if v]
    if namespaces is not None:
        clauses.append("(" + " OR ".join(equals(NAMESPACE.name, n) for n in namespaces) + ")")
    return clauses


def _log_entry(
    pipeline: str, action: str, run_id: str, container: str, text: str, size: int, limit_bytes: int
) -> dict[str, Any]:
    """One container's log as the logs route answers it (the caller adds its exit code, or that it runs still)."""
    return {
        "pipeline": pipeline,
        "action": action,
        "runId": run_id,
        "container": container,
        "log": text,
        "bytes": size,
        "truncated": size > limit_bytes,
    }


def _object_workflow_id(kind: str, api: PromiseApi | None, name: str, namespace: str) -> str:
    """The workflow holding a Promise, a PromiseRelease, a DryRun or a resource."""
    if kind == dr.KIND:
        return dry_run_workflow_id(namespace, name)
    if api is not None:
        return resource_workflow_id(api.promise, namespace, name)
    return promise_release_workflow_id(name) if kind == "PromiseRelease" else promise_workflow_id(name)


def _check_builtin_api_version(document: dict[str, Any]) -> None:
    """A platform kind in another version of its group is a typo, not a request for some Promise's API: say so."""
    kind = builtin_kind(document)
    api_version = str(document.get("apiVersion"))
    if kind is None or api_version == BUILTIN_API_VERSIONS[kind]:
        return
    raise InvalidDocument(
        [
            FieldError(
                "apiVersion", f"Unsupported value: {api_version!r}: {kind} is served as {BUILTIN_API_VERSIONS[kind]!r}"
            )
        ]
    )


def _without_server_fields(document: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The document as stored, and the resourceVersion it was read at: the version and deletionTimestamp are the
    platform's to set, so a document read back and applied again carries neither into the object."""
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not ({"resourceVersion", "deletionTimestamp"} & metadata.keys()):
        return document, None
    metadata = dict(metadata)
    precondition = metadata.pop("resourceVersion", None)
    metadata.pop("deletionTimestamp", None)
    if precondition in (None, ""):
        return {**document, "metadata": metadata}, None
    if not isinstance(precondition, str) or len(precondition) > 20 or not precondition.isdigit():
        raise InvalidDocument(
            [
                FieldError(
                    "metadata.resourceVersion", f"Invalid value: {str(precondition)[:40]!r}: not a resourceVersion"
                )
            ]
        )
    return {**document, "metadata": metadata}, precondition


def _secret_doc(summary: Any) -> dict[str, Any]:
    """Kubernetes' shape without the values: the keys only, as `kubectl describe secret` shows them."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": summary.type,
        "metadata": {"name": summary.name, "namespace": summary.namespace},
        "keys": summary.keys,
    }


async def _object_from(description: WorkflowExecutionDescription | Any) -> dict[str, Any]:
    memo = await description.memo()
    obj = dict(memo.get("object") or {})
    obj["status"] = memo.get("status") or {}
    obj["_ktx"] = {
        "workflowId": description.id,
        "placements": memo.get("placements") or [],
        "pending": memo.get("pending") or [],
        "runs": memo.get("runs") or [],
        "runCounts": memo.get("runCounts") or {},
        "events": memo.get("events") or [],
        "health": memo.get("health") or [],
        "schedule": memo.get("schedule") or {},
        **({"dryRun": memo["dryRun"]} if memo.get("dryRun") else {}),
        **({"binding": memo["binding"]} if memo.get("binding") else {}),
        # Objects whose workflow started before resourceVersions were published have none until they next change.
        "resourceVersion": memo.get("resourceVersion") or "0",
    }
    return obj


def _domain_error(exc: WorkflowUpdateFailedError) -> Exception:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type == "InvalidDocument":
            details = cause.details[0] if cause.details else []
            errors = (
                [FieldError(d["field"], d["reason"]) for d in details]
                if details
                else [FieldError("document", cause.message)]
            )
            return InvalidDocument(errors)
        if cause.type == "NotFound":
            return NotFound(cause.message)
        if cause.type == "Conflict":
            return Conflict(cause.message)
        if cause.type == "StaleResourceVersion":
            return StaleResourceVersion()
    return exc
