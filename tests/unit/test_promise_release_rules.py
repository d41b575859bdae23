"""PromiseRelease's pure rules (domain/promise_release.py), as Kratix's controller and fetcher have them."""

from __future__ import annotations

import pytest

from domain import promise_release as pr
from domain.errors import InvalidDocument
from domain.parsing import parse_platform_document

PROMISE = b"""
apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: redis
  labels: {kratix.io/promise-version: v1.0.0, team: upstream}
  annotations: {note: upstream}
spec: {}
"""


def test_a_body_must_hold_exactly_one_promise() -> None:
    assert pr.read_promise(PROMISE)["metadata"]["name"] == "redis"
    assert pr.read_promise(
        b'{"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Promise", "metadata": {"name": "j"}}'
    )
    for body, reason in (
        (b"", "holds no document"),
        (b"apiVersion: v1\nkind: ConfigMap\n", "of kind: ConfigMap"),
        (PROMISE + b"---\n" + PROMISE, "found multiple documents"),
        (b"- a list", "failed to unmarshal"),
        (b"\xff\xfe\x00", "failed to unmarshal"),
    ):
        with pytest.raises(pr.FetchRefused, match=reason):
            pr.read_promise(body)


def test_the_version_check_has_kratix_s_reasons_and_messages() -> None:
    fetched = pr.read_promise(PROMISE)
    assert pr.check_version("v1.0.0", fetched) == pr.VersionCheck(True, version="v1.0.0")
    assert pr.check_version("", fetched) == pr.VersionCheck(True, version="v1.0.0", adopt=True)
    mismatch = pr.check_version("v2", fetched)
    assert (mismatch.ok, mismatch.reason, mismatch.message) == (
        False,
        "VersionNotMatching",
        "Version labels do not match, found: v1.0.0, expected: v2",
    )
    unlabelled = pr.check_version("v1.0.0", {"metadata": {"name": "x"}})
    assert (unlabelled.reason, unlabelled.message) == ("VersionLabelNotFound", "Version label not found on Promise")
    assert pr.admission_warning("v1.0.0", fetched) is None
    assert "installation will fail" in str(pr.admission_warning("v2", fetched))


def test_the_released_promise_takes_the_fetched_spec_merges_metadata_and_names_its_release() -> None:
    fetched = pr.read_promise(PROMISE)
    existing = {
        "metadata": {"name": "redis", "labels": {"team": "platform", "local": "kept"}, "uid": "u", "generation": 3},
        "spec": {"old": True},
    }
    released = pr.released_promise("rel", fetched, existing)
    assert released["spec"] == {}
    assert released["metadata"]["labels"] == {
        "local": "kept",
        "team": "upstream",  # the fetched Promise's wins
        "kratix.io/promise-version": "v1.0.0",
        "kratix.io/promise-release-name": "rel",
    }
    assert released["metadata"]["annotations"] == {"note": "upstream"}
    assert "uid" not in released["metadata"] and "generation" not in released["metadata"]


def test_a_release_is_parsed_with_kratix_s_defaults_and_bounds() -> None:
    doc = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "PromiseRelease",
        "metadata": {"name": "r"},
        "spec": {"sourceRef": {"url": "https://example.com/promise.yaml"}},
    }
    parsed = parse_platform_document(doc).to_doc()
    assert parsed["spec"]["sourceRef"]["type"] == "http"
    assert parsed["spec"]["version"] == ""
    for spec, field in (
        ({"sourceRef": {"type": "git", "url": "https://x"}}, "spec.sourceRef.type"),
        ({"sourceRef": {"url": "ftp://x/y"}}, "spec.sourceRef.url"),
        ({"sourceRef": {"url": "https://x"}, "version": "v" * 64}, "spec.version"),
        ({}, "spec.sourceRef"),
    ):
        with pytest.raises(InvalidDocument) as refused:
            parse_platform_document({**doc, "spec": spec})
        assert refused.value.errors[0].field == field
