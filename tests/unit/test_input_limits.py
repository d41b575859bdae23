"""Limits on what the API parses: alias bombs, nesting, JSON-shaped values, names and the body-size setting."""

from __future__ import annotations

import tracemalloc

import pytest

from domain.errors import InvalidDocument
from domain.health import read_health_record
from domain.parsing import MAX_ALIAS_NODES, MAX_DEPTH, MalformedInput, load_documents
from domain.secrets import parse_secret
from domain.names import NAME_PATTERN, SUBDOMAIN_MAX
from domain.validation import validate_name, validate_namespace
from worker.settings import Settings, parse_byte_size

HEAD = "apiVersion: v1\nkind: ConfigMap\n"


def billion_laughs(levels: int = 9) -> str:
    text = HEAD + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


def test_billion_laughs_is_refused_before_it_expands() -> None:
    # Memory, not time, is what shows the expansion never happened (a time bound fails on a loaded machine):
    # 9 levels expanded would be 9**9 nodes, hundreds of MB.
    tracemalloc.start()
    with pytest.raises(MalformedInput, match=f"aliases may add at most {MAX_ALIAS_NODES} nodes"):
        load_documents(billion_laughs())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000, peak


def test_aliases_within_the_budget_are_kept() -> None:
    text = HEAD + "base: &env [{name: A, value: '1'}, {name: B, value: '2'}]\none: *env\ntwo: {<<: {k: v}, env: *env}\n"
    (doc,) = load_documents(text)
    assert doc["one"] == doc["two"]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert doc["two"]["k"] == "v"


def test_the_alias_budget_is_per_request_not_per_document() -> None:
    # Each document alone stays under the budget; together they do not.
    per_doc = billion_laughs(levels=5)  # 9**5 ≈ 59,000 nodes from aliases
    with pytest.raises(MalformedInput, match="document 1: YAML aliases"):
        load_documents(per_doc + "---\n" + per_doc)
    assert len(load_documents(per_doc)) == 1


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(MalformedInput, match="recursive alias"):
        load_documents(HEAD + "a: &a [1, *a]\n")


def test_deep_nesting_is_refused_with_the_bound() -> None:
    with pytest.raises(MalformedInput, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_documents(HEAD + "x: " + "[" * 5000 + "]" * 5000)
    assert load_documents(HEAD + "x: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2))


def test_values_are_json_shaped_as_kubernetes_reads_them() -> None:
    (doc,) = load_documents(HEAD + "day: 2024-01-31\n1: one\ntrue: yes\n~: nothing\n")
    assert doc["day"] == "2024-01-31"
    assert {"1", "true", "null"} <= set(doc)
    for tag in ("!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]"):
        with pytest.raises(MalformedInput, match="has no JSON equivalent"):
            load_documents(HEAD + f"x: {tag}\n")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("a: [1, 2\n", "malformed YAML"),
        ("just text\n", "expected a mapping, got str"),
        ("kind: Thing\n", "document 0: missing apiVersion"),
        ("apiVersion: v1\nkind: [x]\n", "kind must be a string"),
        ("apiVersion: v1\nkind: List\nitems: [3]\n", "document 0: expected a mapping, got int"),
        ("{not json", "malformed YAML"),
    ],
)
def test_malformed_input_says_why(text: str, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        load_documents(text)


@pytest.mark.parametrize(
    "value, reason",
    [
        ("Upper", "RFC 1123 subdomain"),
        ("-dash", "RFC 1123 subdomain"),
        ("a..b", "RFC 1123 subdomain"),
        ("a" * 254, "no more than 253"),
        (7, "must be of type string"),
        ("", "Required value"),
    ],
)
def test_names_are_dns_1123_subdomains(value: object, reason: str) -> None:
    errors = validate_name("metadata.name", value, max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN)
    assert errors and errors[0].field == "metadata.name" and reason in errors[0].reason
    assert validate_name("metadata.name", "a.b-c" + "d" * 248, max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN) == []


def test_namespaces_are_dns_1123_labels() -> None:
    assert "RFC 1123 label" in validate_namespace("a.b")[0].reason
    assert "no more than 63" in validate_namespace("a" * 64)[0].reason
    assert validate_namespace("team-a") == []


def test_secret_and_health_record_names() -> None:
    with pytest.raises(InvalidDocument) as refused:
        parse_secret({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a..b", "namespace": "x.y"}})
    assert {e.field for e in refused.value.errors} == {"metadata.name", "metadata.namespace"}
    with pytest.raises(InvalidDocument, match="metadata: Invalid value: 'x': must be of type object"):
        parse_secret({"apiVersion": "v1", "kind": "Secret", "metadata": "x"})
    record = {
        "metadata": {"name": "Bad_Name"},
        "data": {"promiseRef": {"name": "p"}, "state": "healthy", "resourceRef": {"name": "r", "namespace": "NS"}},
    }
    with pytest.raises(InvalidDocument) as refused:
        read_health_record(record)
    assert {e.field for e in refused.value.errors} == {"metadata.name", "data.resourceRef.namespace"}
    with pytest.raises(InvalidDocument, match="data.promiseRef: Invalid value"):
        read_health_record({"metadata": {"name": "h"}, "data": {"promiseRef": "p"}})


def test_body_limit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().api_max_body == 4 * 1024 * 1024
    assert [parse_byte_size(t) for t in ("1000", "512Ki", "4Mi", "2M")] == [1000, 524288, 4194304, 2000000]
    with pytest.raises(ValueError, match="not a byte size"):
        parse_byte_size("lots")
    monkeypatch.setenv("KTX_API_MAX_BODY", "1Mi")
    assert Settings.from_env().api_max_body == 1024 * 1024


def test_a_collection_as_a_key_is_refused() -> None:
    with pytest.raises(MalformedInput, match="a mapping key must be a scalar"):
        load_documents(HEAD + "? [a, b]\n: c\n")


def test_metadata_maps_are_bounded_as_kubernetes_bounds_annotations() -> None:
    from domain.labels import LABELS_MAX_BYTES, metadata_errors

    assert metadata_errors({"labels": {"team": "a"}, "annotations": {"note": "x" * 1000}}) == []
    (error,) = metadata_errors({"annotations": {"note": "x" * LABELS_MAX_BYTES}})
    assert error.field == "metadata.annotations" and f"over the limit of {LABELS_MAX_BYTES}" in error.reason
    fields = [e.field for e in metadata_errors({"labels": {"a b": "x", "ok": "-"}, "annotations": {"/x": "y"}})]
    assert fields == ["metadata.labels['a b']", "metadata.labels['ok']", "metadata.annotations['/x']"]
