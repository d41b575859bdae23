"""PromiseRevisions and ResourceBindings as the API serves them: read from the Promise and resource workflows, changed
through their updates.

Bindings are in their requests' memos. A revision's spec is asked of its Promise's workflow (a query: the older
revisions' specs are too large for a memo), so reading revisions needs a worker, as nothing else the API reads does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.platform.catalog import fetch_revision
from activities.platform.search_attributes import KIND, NAMESPACE
from domain import revisions as rv
from domain.errors import FieldError, InvalidDocument, NotFound
from domain.labels import PROMISE_NAME, label_errors, label_value_error
from domain.naming import promise_workflow_id, resource_workflow_id
from domain.names import LABEL_MAX, NAME_PATTERN
from domain.validation import validate_name, validate_namespace
from domain.visibility import equals
from service.listing import current_runs
from workflows.promise import PromiseWorkflow
from workflows.resource import ResourceWorkflow
from workflows.resource_records import BindingEdit
from workflows.revision_records import DeleteRevisionInput, HoldBindingInput


class Revisions:
    def __init__(self, client: Client, domain_error: Any) -> None:
        self.client = client
        # service/platform.py's mapping of a workflow's refusal to the domain's errors, shared.
        self._domain_error = domain_error

    # --- ResourceBindings ---

    async def _binding_entries(self, namespace: str | None) -> list[tuple[str, dict[str, Any]]]:
        clauses = [f"{NAMESPACE.name} IS NOT NULL"]
        if namespace:
            clauses.append(equals(NAMESPACE.name, namespace))
        entries = []
        for execution in await current_runs(self.client, clauses):
            memo = await execution.memo()
            binding = memo.get("binding")
            if isinstance(binding, dict):
                binding = {
                    **binding,
                    "metadata": {**binding["metadata"], "resourceVersion": memo.get("resourceVersion") or "0"},
                }
                entries.append((execution.id, binding))
        return entries

    async def _held_entries(self, namespace: str | None) -> list[tuple[str, dict[str, Any]]]:
        """Bindings applied before their requests, held by their Promises: (Promise workflow ID, binding)."""
        entries = []
        for execution in await current_runs(self.client, [equals(KIND.name, "Promise")]):
            memo = await execution.memo()
            promise = (memo.get("object") or {}).get("metadata", {}).get("name")
            held = (memo.get("snapshot") or {}).get("held_bindings") or {}
            for key, value in held.items():
                held_namespace, _, resource = key.partition("/")
                if promise and namespace in (None, held_namespace):
                    binding = rv.Binding.model_validate(value)
                    entries.append((execution.id, rv.binding_document(binding, promise, held_namespace, resource)))
        return entries

    async def list_bindings(self, namespace: str | None = None) -> list[dict[str, Any]]:
        entries = await self._binding_entries(namespace) + await self._held_entries(namespace)
        return sorted((b for _, b in entries), key=lambda b: (b["metadata"]["namespace"], b["metadata"]["name"]))

    async def _find_binding(self, name: str, namespace: str) -> tuple[str, dict[str, Any]]:
        for workflow_id, binding in await self._binding_entries(namespace) + await self._held_entries(namespace):
            if binding["metadata"]["name"] == name:
                return workflow_id, binding
        raise NotFound(f'resourcebinding "{name}" not found')

    async def get_binding(self, name: str, namespace: str) -> dict[str, Any]:
        return (await self._find_binding(name, namespace))[1]

    async def _hold(self, promise: str, namespace: str, resource: str, binding: rv.Binding | None) -> str:
        try:
            result = await self.client.get_workflow_handle(promise_workflow_id(promise)).execute_update(
                PromiseWorkflow.hold_binding, HoldBindingInput(namespace=namespace, resource=resource, binding=binding)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f'promise "{promise}" not found (spec.promiseRef.name)') from exc
            raise
        except WorkflowUpdateFailedError as exc:
            raise self._domain_error(exc) from exc
        return result.action

    async def apply_binding(self, document: dict[str, Any], precondition: str | None) -> str:
        """An edit of a binding: its `spec.version` (checked against the revision's schema first, so a request that
        would not validate is refused here, naming it and the field) and its labels. Returns the apply's action."""
        promise, namespace, resource, version, labels = _binding_fields(document)
        workflow_id = resource_workflow_id(promise, namespace, resource)
        current = next((b for w, b in await self._binding_entries(namespace) if w == workflow_id), None)
        name = document.get("metadata", {}).get("name")
        if current is None:
            # Made before its request: the Promise holds it, and the request adopts it (pinned from its first run).
            if version != rv.LATEST and await fetch_revision(self.client, promise, version) is None:
                raise InvalidDocument(
                    [FieldError("spec.version", f"Promise {promise} has no PromiseRevision for version {version!r}")]
                )
            held = rv.Binding(
                name=str(name or rv.binding_name(promise, resource)),
                version=version,
                labels=labels,
                created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            return await self._hold(promise, namespace, resource, held)
        if name and name != current["metadata"]["name"]:
            raise InvalidDocument(
                [FieldError("metadata.name", f"the request's binding is {current['metadata']['name']!r}")]
            )
        if version != current["spec"]["version"]:
            await self._refuse_unfit(promise, namespace, resource, version)
        unchanged = version == current["spec"]["version"] and labels == _own_labels(current)
        if unchanged:
            return "unchanged"
        edit = BindingEdit(version=version, labels=labels, resource_version=precondition)
        await self._edit(workflow_id, edit, f'resourcebinding "{current["metadata"]["name"]}" not found')
        return "configured"

    async def _refuse_unfit(self, promise: str, namespace: str, resource: str, version: str) -> None:
        revision = await fetch_revision(self.client, promise, version)
        if revision is None:
            raise InvalidDocument(
                [FieldError("spec.version", f"Promise {promise} has no PromiseRevision for version {version!r}")]
            )
        description = await self.client.get_workflow_handle(
            resource_workflow_id(promise, namespace, resource)
        ).describe()
        request = (await description.memo()).get("object") or {}
        if revision.snapshot.api is not None:
            refusal = await asyncio.to_thread(rv.request_fits_api, revision.snapshot.api, request)
            if refusal is not None:
                raise InvalidDocument(
                    [
                        FieldError(
                            "spec.version",
                            f"request {namespace}/{resource} does not validate under version {revision.version}: "
                            f"{refusal}",
                        )
                    ]
                )

    async def label_binding(self, name: str, namespace: str, set_: dict[str, str], remove: list[str]) -> dict[str, str]:
        """`ktx label resourcebinding`: its own labels; `kratix.io/manual-reconciliation=true` retries its version."""
        workflow_id, binding = await self._find_binding(name, namespace)
        labels = {k: v for k, v in _own_labels(binding).items() if k not in remove}
        labels.update(set_)
        if workflow_id.startswith("promise/"):  # held for a request not made yet
            spec = binding["spec"]
            held = rv.Binding(
                name=name, version=spec["version"], labels=labels, created=binding["metadata"]["creationTimestamp"]
            )
            await self._hold(spec["promiseRef"]["name"], namespace, spec["resourceRef"]["name"], held)
            return labels
        edit = BindingEdit(labels=labels, resource_version=None)
        await self._edit(workflow_id, edit, f'resourcebinding "{name}" not found')
        return labels

    async def delete_binding(self, name: str, namespace: str) -> None:
        """Kratix recreates a binding deleted while its request lives, with the version the request records; one held
        for a request not made yet is let go."""
        workflow_id, binding = await self._find_binding(name, namespace)
        if workflow_id.startswith("promise/"):
            spec = binding["spec"]
            await self._hold(spec["promiseRef"]["name"], namespace, spec["resourceRef"]["name"], None)
            return
        await self._edit(workflow_id, BindingEdit(deleted=True), f'resourcebinding "{name}" not found')

    async def _edit(self, workflow_id: str, edit: BindingEdit, missing: str) -> None:
        try:
            await self.client.get_workflow_handle(workflow_id).execute_update(ResourceWorkflow.edit_binding, edit)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(missing) from exc
            raise
        except WorkflowUpdateFailedError as exc:
            raise self._domain_error(exc) from exc

    # --- PromiseRevisions ---

    async def _revision_index(self, promise: str | None) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for execution in await current_runs(self.client, [equals(KIND.name, "Promise")]):
            memo = await execution.memo()
            name = (memo.get("object") or {}).get("metadata", {}).get("name")
            if not name or (promise and name != promise):
                continue
            found += [(name, r["version"]) for r in memo.get("revisions") or []]
        return found

    async def list_revisions(self, promise: str | None = None) -> list[dict[str, Any]]:
        views = await asyncio.gather(
            *[fetch_revision(self.client, p, v) for p, v in await self._revision_index(promise)]
        )
        documents = [v.document for v in views if v is not None]
        return sorted(documents, key=lambda d: d["metadata"]["name"])

    async def _find_revision(self, name: str) -> tuple[str, str]:
        for promise, version in await self._revision_index(None):
            if rv.revision_name(promise, version) == name:
                return promise, version
        raise NotFound(f'promiserevision "{name}" not found')

    async def get_revision(self, name: str) -> dict[str, Any]:
        promise, version = await self._find_revision(name)
        view = await fetch_revision(self.client, promise, version)
        if view is None:
            raise NotFound(f'promiserevision "{name}" not found')
        return view.document

    async def delete_revision(self, name: str) -> None:
        """Refused for the latest revision; else the requests bound to it are deleted with it."""
        promise, version = await self._find_revision(name)
        workflow_id = promise_workflow_id(promise)
        try:
            await self.client.get_workflow_handle(workflow_id).execute_update(
                PromiseWorkflow.delete_revision, DeleteRevisionInput(version=version)
            )
        except WorkflowUpdateFailedError as exc:
            raise self._domain_error(exc) from exc


def _own_labels(binding: dict[str, Any]) -> dict[str, str]:
    labels = dict(binding["metadata"].get("labels") or {})
    for key in (PROMISE_NAME, rv.RESOURCE_NAME_LABEL):
        labels.pop(key, None)
    return labels


def _binding_fields(document: dict[str, Any]) -> tuple[str, str, str, str, dict[str, str]]:
    """A ResourceBinding document's references, version and labels, or InvalidDocument naming each field at fault."""
    spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    promise_ref = spec.get("promiseRef") if isinstance(spec.get("promiseRef"), dict) else {}
    resource_ref = spec.get("resourceRef") if isinstance(spec.get("resourceRef"), dict) else {}
    promise, resource = promise_ref.get("name"), resource_ref.get("name")
    namespace = resource_ref.get("namespace") or metadata.get("namespace") or "default"
    version = spec.get("version")
    errors = validate_name("spec.promiseRef.name", promise, max_length=LABEL_MAX, pattern=NAME_PATTERN)
    errors += validate_name("spec.resourceRef.name", resource, max_length=LABEL_MAX, pattern=NAME_PATTERN)
    errors += validate_namespace(namespace, "spec.resourceRef.namespace")
    if metadata.get("namespace") not in (None, namespace):
        errors.append(FieldError("metadata.namespace", "must be the namespace of spec.resourceRef"))
    if not isinstance(version, str) or not version:
        errors.append(FieldError("spec.version", "Required value: `latest` or a Promise version"))
    elif version != rv.LATEST and (reason := label_value_error(version)):
        errors.append(FieldError("spec.version", reason))
    labels = metadata.get("labels") or {}
    errors += label_errors("metadata.labels", labels)
    if errors:
        raise InvalidDocument(errors)
    own = {k: v for k, v in labels.items() if k not in (PROMISE_NAME, rv.RESOURCE_NAME_LABEL)}
    return str(promise), str(namespace), str(resource), str(version), own
