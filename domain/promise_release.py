"""A PromiseRelease's rules, pure (Kratix's promiserelease_controller.go, lib/fetchers/url.go): what a fetched body
must be, the version-label check, and the Promise a release installs. The fetch itself is an activity
(activities/platform/promise_release.py); the workflow is workflows/promise_release.py."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from domain.labels import PROMISE_VERSION
from domain.parsing import MalformedInput, decode_body, load_documents

RELEASE_NAME_LABEL = "kratix.io/promise-release-name"
AUTHORIZATION_KEY = "authorizationHeader"
INSTALLED = "Installed"

# status.status and the Installed condition, in Kratix's words.
STATUS_INSTALLED = "Installed"
STATUS_ERROR = "Error installing"
MESSAGE_INSTALLED = "Installed successfully"
REASON_INSTALLED = "InstalledSuccessfully"
REASON_FETCH_FAILED = "FailedToFetchPromise"
MESSAGE_FETCH_FAILED = "Failed to fetch Promise from URL"
REASON_NO_VERSION_LABEL = "VersionLabelNotFound"
MESSAGE_NO_VERSION_LABEL = "Version label not found on Promise"
REASON_VERSION_MISMATCH = "VersionNotMatching"
REASON_APPLY_FAILED = "FailedToCreateOrUpdatePromise"
MESSAGE_APPLY_FAILED = "Failed to create or update Promise"


class FetchRefused(ValueError):
    """The source did not answer with exactly one Promise document; the message says why."""


def read_promise(body: bytes) -> dict[str, Any]:
    """The one Promise a fetched body holds (YAML or JSON), read with the API's bounded loader."""
    try:
        documents = load_documents(decode_body(body))
    except (MalformedInput, ValueError) as exc:
        raise FetchRefused(f"failed to unmarshal into Kubernetes object: {exc}") from exc
    if not documents:
        raise FetchRefused("failed to unmarshal into Kubernetes object: the body holds no document")
    kind = documents[0].get("kind")
    if kind != "Promise":
        raise FetchRefused(f"expected single Promise object but found object of kind: {kind}")
    if len(documents) > 1:
        raise FetchRefused("expected single document yaml, but found multiple documents")
    return documents[0]


@dataclass(frozen=True)
class VersionCheck:
    """`adopt`: the release names no version, so it takes the Promise's (Kratix writes it into the release's spec)."""

    ok: bool
    version: str = ""
    reason: str = ""
    message: str = ""
    adopt: bool = False


def check_version(wanted: str, promise: dict[str, Any]) -> VersionCheck:
    labels = (promise.get("metadata") or {}).get("labels") or {}
    found = labels.get(PROMISE_VERSION) if isinstance(labels, dict) else None
    if not isinstance(found, str):
        return VersionCheck(False, reason=REASON_NO_VERSION_LABEL, message=MESSAGE_NO_VERSION_LABEL)
    if not wanted:
        return VersionCheck(True, version=found, adopt=True)
    if found != wanted:
        return VersionCheck(
            False,
            version=found,
            reason=REASON_VERSION_MISMATCH,
            message=f"Version labels do not match, found: {found}, expected: {wanted}",
        )
    return VersionCheck(True, version=found)


def admission_warning(wanted: str, promise: dict[str, Any]) -> str | None:
    """Kratix's webhook admits a release whose Promise would fail the version check, with a warning."""
    check = check_version(wanted, promise)
    if check.reason == REASON_NO_VERSION_LABEL:
        return f"Warning: version label ({PROMISE_VERSION}) not found on promise, installation will fail"
    if check.reason == REASON_VERSION_MISMATCH:
        return (
            f"Warning: version labels do not match, found: {check.version}, expected: {wanted}, installation will fail"
        )
    return None


def released_promise(release: str, fetched: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """Kratix's create-or-update: the fetched spec replaces the existing one; labels and annotations are merged, the
    fetched ones winning; the release's name label marks whose it is."""
    promise = copy.deepcopy(fetched)
    promise.pop("status", None)
    metadata = promise.setdefault("metadata", {})
    old = (existing or {}).get("metadata") or {}
    for key in ("labels", "annotations"):
        merged = {**(old.get(key) or {}), **(metadata.get(key) or {})}
        if merged:
            metadata[key] = merged
    metadata.setdefault("labels", {})[RELEASE_NAME_LABEL] = release
    for key in ("resourceVersion", "deletionTimestamp", "uid", "generation", "creationTimestamp"):
        metadata.pop(key, None)
    return promise
