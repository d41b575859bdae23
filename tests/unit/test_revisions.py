"""The pure rules of PromiseRevisions and ResourceBindings (domain/revisions.py), as Kratix's controllers apply them."""

from __future__ import annotations

import hashlib

import pytest

from domain.errors import InvalidDocument
from domain.revisions import (
    LATEST,
    MAX_REVISIONS,
    Binding,
    Revision,
    binding_document,
    binding_name,
    desired_version,
    last_attempt_failed_for,
    latest_version,
    mark_upgrade_finished,
    mark_upgrade_started,
    new_binding_version,
    record_revision,
    refuse_new_version,
    refuse_revision_delete,
    request_fits_revision,
    resource_name_label,
    revision_document,
    revision_name,
)
from domain.status import get_condition
from tests.integration.test_resource_lifecycle import example

NOW = "2026-01-01T00:00:00Z"


def upgrade(binding: Binding) -> dict:
    return get_condition({"conditions": binding.conditions}, "UpgradeSucceeded") or {}


def test_names_are_kratix_deterministic_names() -> None:
    # GenerateDeterministicObjectName(promise, version): the name, and the md5 of the version.
    assert revision_name("app-config", "v1") == f"app-config-{hashlib.md5(b'v1').hexdigest()[:5]}"
    assert (
        binding_name("app-config", "checkout")
        == f"checkout-app-config-{hashlib.md5(b'checkout-app-config').hexdigest()[:5]}"
    )
    long = "a" * 70
    assert len(resource_name_label(long)) <= 63 and resource_name_label("short") == "short"


def test_a_new_version_becomes_latest_and_the_old_latest_keeps_its_spec() -> None:
    revisions, created = record_revision([], "v1", None, NOW)
    assert created and latest_version(revisions) == "v1"
    revisions, created = record_revision(revisions, "v2", {"old": 1}, NOW)
    assert created and latest_version(revisions) == "v2"
    assert [(r.version, r.spec) for r in revisions] == [("v1", {"old": 1}), ("v2", None)]
    # Same version again: only its (live) spec changes, nothing new.
    again, created = record_revision(revisions, "v2", {"v2 spec": 1}, NOW)
    assert not created and again == revisions
    # Latest is the last applied, not the highest: going back to v1 makes v1 latest and keeps v2's spec.
    back, created = record_revision(revisions, "v1", {"v2 spec": 1}, NOW)
    assert not created and latest_version(back) == "v1"
    assert [(r.version, r.spec) for r in back] == [("v1", None), ("v2", {"v2 spec": 1})]


def test_the_latest_revision_cannot_be_deleted_and_revisions_are_bounded() -> None:
    revisions = [Revision(version="v1", created=NOW, spec={}), Revision(version="v2", created=NOW)]
    with pytest.raises(InvalidDocument, match="latest revision"):
        refuse_revision_delete(revisions, "v2")
    refuse_revision_delete(revisions, "v1")
    with pytest.raises(LookupError):
        refuse_revision_delete(revisions, "v3")
    full = [Revision(version=f"v{i}", created=NOW, spec={}) for i in range(MAX_REVISIONS - 1)]
    full.append(Revision(version="last", created=NOW))
    refuse_new_version(full, "v0", {})  # an existing version is always accepted
    with pytest.raises(InvalidDocument) as refused:
        refuse_new_version(full, "new", {})
    assert refused.value.errors[0].field == "metadata.labels[kratix.io/promise-version]"
    with pytest.raises(InvalidDocument, match="bytes of specs"):
        refuse_new_version([Revision(version="v1", created=NOW)], "v2", {"x": "y" * 600_000})


def test_revision_document_is_kratix_shaped() -> None:
    document = revision_document("app-config", Revision(version="v1", created=NOW), {"api": {}}, latest=True)
    assert document["kind"] == "PromiseRevision"
    assert document["metadata"]["labels"] == {
        "kratix.io/promise-name": "app-config",
        "kratix.io/latest-revision": "true",
    }
    assert document["spec"] == {"promiseRef": {"name": "app-config"}, "promiseSpec": {"api": {}}, "version": "v1"}
    assert document["status"] == {"latest": True}
    assert revision_document("p", Revision(version="v1", created=NOW), {}, latest=False)["status"] == {}


def test_new_bindings_follow_the_strategy_and_a_recreated_one_its_recorded_version() -> None:
    assert new_binding_version("floating", "v2", None) == LATEST
    assert new_binding_version("pinned", "v2", None) == "v2"
    assert new_binding_version("pinned", "not-set", None) == LATEST
    assert new_binding_version("floating", "v2", "v1") == "v1"
    assert desired_version(Binding(name="b"), "v3") == "v3"
    assert desired_version(Binding(name="b", version="v1"), "v3") == "v1"


def test_upgrade_conditions_as_kratix_records_them() -> None:
    binding = Binding(name="b")
    # A fresh request: no upgrade, no condition; lastAppliedVersion only.
    assert not mark_upgrade_started(binding, "v1", NOW)
    mark_upgrade_finished(binding, "v1", "v1", None, NOW)
    assert binding.last_applied == "v1" and binding.conditions == []

    assert mark_upgrade_started(binding, "v2", NOW)
    assert (upgrade(binding)["status"], upgrade(binding)["reason"]) == ("Unknown", "UpgradeInProgress")
    assert upgrade(binding)["message"] == "Upgrade to version v2 is in progress"
    mark_upgrade_finished(binding, "v1", "v2", "A Configure Pipeline has failed: render", NOW)
    assert (binding.failed, binding.last_applied) == ("v2", "v1")
    assert (upgrade(binding)["status"], upgrade(binding)["reason"]) == ("False", "UpgradeFailed")
    assert upgrade(binding)["message"] == "A Configure Pipeline has failed: render"
    assert last_attempt_failed_for(binding, "v2") and not last_attempt_failed_for(binding, "v3")

    # A new attempt clears failedVersion; success records the version and the condition.
    assert mark_upgrade_started(binding, "v2", NOW, manual=True)
    assert binding.failed == "" and upgrade(binding)["message"] == "Reconciliation requested for version v2"
    mark_upgrade_finished(binding, "v2", "v2", None, NOW)
    assert (binding.last_applied, binding.failed) == ("v2", "")
    assert (upgrade(binding)["status"], upgrade(binding)["reason"]) == ("True", "UpgradeComplete")
    assert upgrade(binding)["message"] == "Resource is at version v2"
    assert not mark_upgrade_started(binding, "not-set", NOW)


def test_binding_document_is_kratix_shaped() -> None:
    binding = Binding(name="checkout-app-config-12345", version="v1", last_applied="v1", labels={"team": "x"})
    document = binding_document(binding, "app-config", "default", "checkout")
    assert document["metadata"]["labels"] == {
        "team": "x",
        "kratix.io/promise-name": "app-config",
        "kratix.io/resource-name": "checkout",
    }
    assert document["spec"] == {
        "version": "v1",
        "promiseRef": {"name": "app-config"},
        "resourceRef": {"name": "checkout", "namespace": "default"},
    }
    assert document["status"] == {"lastAppliedVersion": "v1"}


def test_request_fits_revision_names_the_field_at_fault() -> None:
    spec = example("promise.yaml")["spec"]
    request = example("resource-request.yaml")
    request["metadata"].update(uid="u", generation=3, creationTimestamp=NOW)  # the platform's metadata is ignored
    assert request_fits_revision("app-config", spec, request) is None
    schema = spec["api"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    schema["required"] = ["team", "region"]
    refusal = request_fits_revision("app-config", spec, request)
    assert refusal is not None and refusal.field == "spec.region" and "Required value" in refusal.reason
    assert request_fits_revision("app-config", {}, request).field == "apiVersion"  # type: ignore[union-attr]
