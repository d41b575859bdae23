"""Kratix's PromiseRevisions and ResourceBindings: which version of a Promise each request is reconciled with.

A Promise keeps one revision per `kratix.io/promise-version` it was ever applied with (the latest is the one applied
last, not the highest); each request has one binding whose `spec.version` is `latest` or a version. Everything here
is pure: the Promise and resource workflows hold the state and call these to change it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.dry_run import deterministic_name
from domain.errors import FieldError, InvalidDocument
from domain.labels import PROMISE_NAME, PROMISE_VERSION
from domain.promise_api import UNVERSIONED, PromiseApi, PromiseSnapshot, read_promise_api
from domain.status import get_condition, set_condition
from domain.validation import validate_resource_request

GROUP_VERSION = "platform.kratix.io/v1alpha1"
LATEST = "latest"
LATEST_REVISION_LABEL = "kratix.io/latest-revision"
RESOURCE_NAME_LABEL = "kratix.io/resource-name"
UPGRADE_SUCCEEDED = "UpgradeSucceeded"
UPGRADE_IN_PROGRESS = "UpgradeInProgress"
UPGRADE_COMPLETE = "UpgradeComplete"
UPGRADE_FAILED = "UpgradeFailed"
# A Promise's revisions live in its workflow's state, which continue-as-new carries in one Temporal payload (2 MB)
# beside the live Promise (at most 1 MiB, docs/input-limits.md): the older revisions' specs get half a MiB between
# them, and a Promise at most 32 revisions, far more versions than any team keeps serving at once.
MAX_REVISIONS = 32
MAX_OLD_SPECS_BYTES = 512 * 1024
# Bindings made before their requests wait in the Promise's state and snapshot: a few hundred bytes each, so 256 of
# them cost the snapshot under 100 KiB; a team pins requests it is about to make, not thousands ahead.
MAX_HELD_BINDINGS = 256
VERSION_FIELD = f"metadata.labels[{PROMISE_VERSION}]"

Strategy = Literal["floating", "pinned"]
# The Promise workflow's query for one revision (RevisionView), by version or `latest`.
REVISION_QUERY = "revision"


class Revision(BaseModel):
    """One PromiseRevision. `spec` is None for the latest: its spec is the live Promise's, held once."""

    version: str
    created: str
    spec: dict[str, Any] | None = None


class RevisionView(BaseModel):
    """One PromiseRevision as the API serves it, and the snapshot of the Promise its requests are reconciled with
    (with the API's schema, which the memo's snapshot leaves out)."""

    version: str
    latest: bool
    document: dict[str, Any]
    snapshot: PromiseSnapshot


def revision_name(promise: str, version: str) -> str:
    """Kratix's NewPromiseRevision name: the Promise's name and five hex digits of the md5 of the version."""
    return deterministic_name(promise, version)


def binding_name(promise: str, resource: str) -> str:
    """Kratix's name for a binding it creates: `<resource>-<promise>` cut to fit, and five hex digits of its md5."""
    return deterministic_name(f"{resource}-{promise}")


def _size(spec: dict[str, Any] | None) -> int:
    return len(json.dumps(spec, separators=(",", ":"))) if spec else 0


def refuse_new_version(revisions: list[Revision], version: str, live_spec: dict[str, Any] | None) -> None:
    """For the Promise's apply validator: a new version fits within the bounds above, or InvalidDocument says why."""
    if not revisions or any(r.version == version for r in revisions):
        return
    if len(revisions) >= MAX_REVISIONS:
        raise InvalidDocument(
            [
                FieldError(
                    VERSION_FIELD,
                    f"the Promise has {len(revisions)} PromiseRevisions, the most it may keep; delete an old one first",
                )
            ]
        )
    kept = sum(_size(r.spec) for r in revisions) + _size(live_spec)
    if kept > MAX_OLD_SPECS_BYTES:
        raise InvalidDocument(
            [
                FieldError(
                    VERSION_FIELD,
                    f"the older PromiseRevisions would hold {kept} bytes of specs, over "
                    f"{MAX_OLD_SPECS_BYTES}; delete an old one first",
                )
            ]
        )


def record_revision(
    revisions: list[Revision], version: str, previous_spec: dict[str, Any] | None, now: str
) -> tuple[list[Revision], bool]:
    """The revisions once the Promise is applied with `version`; and whether that revision is new.

    The applied version becomes the latest (Kratix labels the revision it creates or updates latest); the revision
    that was latest keeps `previous_spec`, the spec it had. The same version applied again only changes its spec,
    which is the live one."""
    latest = next((r for r in revisions if r.spec is None), None)
    created = not any(r.version == version for r in revisions)
    result: list[Revision] = []
    for revision in revisions:
        if revision.version == version:
            result.append(revision.model_copy(update={"spec": None}))
        elif revision is latest:
            result.append(revision.model_copy(update={"spec": previous_spec or {}}))
        else:
            result.append(revision)
    if created:
        result.append(Revision(version=version, created=now))
    return result, created


def latest_version(revisions: list[Revision]) -> str:
    return next((r.version for r in revisions if r.spec is None), UNVERSIONED)


def refuse_revision_delete(revisions: list[Revision], version: str) -> None:
    """Kratix never deletes the latest revision: the Promise's live spec is it."""
    if not any(r.version == version for r in revisions):
        raise LookupError(f"the Promise has no PromiseRevision for version {version!r}")
    if latest_version(revisions) == version:
        raise InvalidDocument(
            [
                FieldError(
                    "metadata.name",
                    f"PromiseRevision for version {version} is the latest revision of its "
                    "Promise and cannot be deleted; apply the Promise with another version first",
                )
            ]
        )


def revision_document(
    promise: str, revision: Revision, spec: dict[str, Any], latest: bool, promise_uid: str = ""
) -> dict[str, Any]:
    """The PromiseRevision as Kratix serves it (cluster-scoped, owned by its Promise)."""
    labels = {PROMISE_NAME: promise}
    if latest:
        labels[LATEST_REVISION_LABEL] = "true"
    metadata: dict[str, Any] = {
        "name": revision_name(promise, revision.version),
        "labels": labels,
        "creationTimestamp": revision.created,
    }
    if promise_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": GROUP_VERSION, "kind": "Promise", "name": promise, "uid": promise_uid, "controller": True}
        ]
    document: dict[str, Any] = {
        "apiVersion": GROUP_VERSION,
        "kind": "PromiseRevision",
        "metadata": metadata,
        "spec": {"promiseRef": {"name": promise}, "promiseSpec": spec, "version": revision.version},
        "status": {"latest": True} if latest else {},
    }
    return document


# --- bindings ---


class Binding(BaseModel):
    """One ResourceBinding: the version a request should be reconciled with, and how its last upgrade went."""

    name: str
    version: str = Field(default=LATEST, max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)
    created: str = ""
    last_applied: str = ""
    failed: str = ""
    conditions: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {}
        if self.conditions:
            status["conditions"] = self.conditions
        if self.last_applied:
            status["lastAppliedVersion"] = self.last_applied
        if self.failed:
            status["failedVersion"] = self.failed
        return status


def new_binding_version(strategy: Strategy, latest: str, recorded: str | None) -> str:
    """What a binding Kratix creates gets: the request's `status.resourceBindingVersion` when its binding was deleted
    while it lived; else, under the pinned strategy, the latest revision's version; else `latest`."""
    if recorded:
        return recorded
    if strategy == "pinned" and latest != UNVERSIONED:
        return latest
    return LATEST


def desired_version(binding: Binding, latest: str) -> str:
    return latest if binding.version == LATEST else binding.version


def is_pinned(binding: Binding) -> bool:
    return binding.version != LATEST


def _mark(binding: Binding, value: str, reason: str, message: str, now: str) -> None:
    holder = {"conditions": binding.conditions}
    set_condition(holder, UPGRADE_SUCCEEDED, value, reason, message, now)
    binding.conditions = holder["conditions"]


def mark_upgrade_started(binding: Binding, attempted: str, now: str, *, manual: bool = False) -> bool:
    """Kratix marks an upgrade in progress only when one is: the version differs from the last applied, or the last
    attempt failed (and a new attempt clears failedVersion). True when the binding changed."""
    if not attempted or attempted == UNVERSIONED:
        return False
    existing = get_condition({"conditions": binding.conditions}, UPGRADE_SUCCEEDED)
    upgrading = (
        bool(binding.failed)
        or (existing is not None and existing.get("status") == "False")
        or (bool(binding.last_applied) and binding.last_applied != attempted)
    )
    if not (upgrading or manual):
        return False
    message = (
        f"Reconciliation requested for version {attempted}"
        if manual
        else f"Upgrade to version {attempted} is in progress"
    )
    _mark(binding, "Unknown", UPGRADE_IN_PROGRESS, message, now)
    binding.failed = ""
    return True


def mark_upgrade_finished(binding: Binding, applied: str, attempted: str, failure: str | None, now: str) -> None:
    """Kratix's applyResourceBindingUpgradeStatus: lastAppliedVersion on success, failedVersion on failure, and the
    UpgradeSucceeded condition only once an upgrade was attempted (a fresh request records no condition)."""
    existing = get_condition({"conditions": binding.conditions}, UPGRADE_SUCCEEDED)
    record = (
        failure is not None
        or bool(binding.failed)
        or (
            existing is not None
            and (existing.get("reason") == UPGRADE_IN_PROGRESS or existing.get("status") == "False")
        )
        or (bool(binding.last_applied) and binding.last_applied != applied)
    )
    if failure is None:
        binding.last_applied = applied
        binding.failed = ""
        if record:
            _mark(binding, "True", UPGRADE_COMPLETE, f"Resource is at version {applied}", now)
    else:
        binding.failed = attempted
        _mark(binding, "False", UPGRADE_FAILED, failure, now)


def upgrade_message(binding: Binding) -> str:
    condition = get_condition({"conditions": binding.conditions}, UPGRADE_SUCCEEDED)
    return str((condition or {}).get("message") or "")


def last_attempt_failed_for(binding: Binding, version: str) -> bool:
    """Kratix does not retry a version whose upgrade failed until the binding's manual-reconciliation label says so."""
    condition = get_condition({"conditions": binding.conditions}, UPGRADE_SUCCEEDED)
    return condition is not None and condition.get("status") == "False" and binding.failed == version


def binding_document(binding: Binding, promise: str, namespace: str, resource: str) -> dict[str, Any]:
    """The ResourceBinding as Kratix serves it, in the request's namespace."""
    labels = {**binding.labels, PROMISE_NAME: promise, RESOURCE_NAME_LABEL: resource_name_label(resource)}
    document: dict[str, Any] = {
        "apiVersion": GROUP_VERSION,
        "kind": "ResourceBinding",
        "metadata": {"name": binding.name, "namespace": namespace, "labels": labels},
        "spec": {
            "version": binding.version,
            "promiseRef": {"name": promise},
            "resourceRef": {"name": resource, "namespace": namespace},
        },
        "status": binding.status,
    }
    if binding.created:
        document["metadata"]["creationTimestamp"] = binding.created
    return document


def resource_name_label(resource: str) -> str:
    """A name as a label value: names longer than 63 characters become Kratix's bounded derivation of the name."""
    return resource if len(resource) <= 63 else deterministic_name(resource)


def request_fits_revision(promise: str, promise_spec: dict[str, Any], document: dict[str, Any]) -> FieldError | None:
    """Whether a request document validates under a revision's API schema (its `spec.promiseSpec`): None if it
    does, else the first field at fault and why. A revision with no API serves no requests: `apiVersion` fails."""
    crd = promise_spec.get("api")
    if not isinstance(crd, dict) or not crd:
        return FieldError("apiVersion", f"the revision of Promise {promise} serves no API")
    try:
        api = read_promise_api(promise, crd)
    except (InvalidDocument, ValueError) as exc:
        return FieldError("apiVersion", f"the revision's API cannot be read: {exc}")
    return request_fits_api(api, document)


def request_fits_api(api: PromiseApi, document: dict[str, Any]) -> FieldError | None:
    """The same, for a revision's API already read (a snapshot's, with its schema)."""
    # Only what the request's author gave: the platform's metadata (uid, generation, timestamps) is not theirs.
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    request = {k: v for k, v in document.items() if k not in ("status", "metadata")}
    request["metadata"] = {k: metadata[k] for k in ("name", "namespace", "labels", "annotations") if k in metadata}
    try:
        validate_resource_request(api, request)
    except InvalidDocument as exc:
        return exc.errors[0] if exc.errors else FieldError("spec", str(exc))
    return None
