"""Bodies a hostile client sends: each refused as malformed input naming the problem, never an unexpected exception.
And visibility queries: no value reaches one unless it is a kind or a name."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.parsing import MalformedInput, decode_body, load_documents
from domain.visibility import QueryValueRefused, closed_since, equals, greater_than

HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"


@pytest.mark.parametrize(
    "text, phrase",
    [
        (HEAD + 'data: {a: "b\x00c"}\n', "unacceptable character #x0000"),
        (HEAD + "data: {a: b\x07c}\n", "unacceptable character #x0007"),
        (HEAD + "data: {a: b\x1bc}\n", "unacceptable character #x001b"),
        (HEAD + "data: {a: " + "9" * 5000 + "}\n", "integer too large: more than 4300 digits"),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "n": -' + "1" * 4301 + "}", "integer too large"),
        (HEAD + 'data: {a: "\\ud800"}\n', "lone UTF-16 surrogate"),
        (HEAD + '"\\udfff": 1\n', "lone UTF-16 surrogate"),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "a": "x\\ude00y"}', "lone UTF-16 surrogate"),
        (HEAD + "data: {a: .inf}\n", "'.inf' has no JSON equivalent"),
        (HEAD + "data: {a: -.Inf}\n", "has no JSON equivalent"),
        (HEAD + "data: {a: .nan}\n", "has no JSON equivalent"),
        (HEAD + "data:\n  a: 1\n  b: 2\n  a: 3\n", "duplicate key 'a' in a mapping"),
        (HEAD + "data:\n  1: x\n  '1': y\n", "duplicate key '1'"),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "kind": "Secret"}', "duplicate key 'kind'"),
    ],
)
def test_hostile_text_is_malformed_input_naming_the_problem(text: str, phrase: str) -> None:
    with pytest.raises(MalformedInput) as refused:
        load_documents(text)
    assert phrase in str(refused.value)


def test_duplicate_keys_name_the_line() -> None:
    with pytest.raises(MalformedInput) as refused:
        load_documents(HEAD + "data:\n  a: 1\n  a: 2\n")
    assert "duplicate key 'a'" in str(refused.value) and "line 6" in str(refused.value)


def test_what_json_and_yaml_allow_still_loads() -> None:
    """Escaped pairs (JSON's way of writing 😀), merge keys overriding merged values, big but sane integers."""
    (doc,) = load_documents('{"apiVersion": "v1", "kind": "ConfigMap", "a": "\\ud83d\\ude00", "n": ' + "9" * 4300 + "}")
    assert doc["a"] == "😀" and len(str(doc["n"])) == 4300
    (doc,) = load_documents(HEAD + "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  x: 3\nboth:\n  <<: [*b, {x: 9}]\n")
    assert doc["merged"] == {"x": 3, "y": 2} and doc["both"] == {"x": 1, "y": 2}
    assert load_documents(HEAD + 'data: {a: "b\\tc", f: 1.5e+3}\n')[0]["data"] == {"a": "b\tc", "f": 1500.0}


@pytest.mark.parametrize(
    "body, phrase",
    [
        (HEAD.encode("utf-16"), "UTF-16"),
        (HEAD.encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16"),
        (b"apiVersion: v1\nkind: \xff\xfe\n", "not UTF-8: byte 0xff at offset 21"),
        (b"kind: \xc3\x28", "not UTF-8"),
        (b"kind: \xed\xa0\x80", "not UTF-8"),  # a surrogate encoded as UTF-8 (CESU): not UTF-8 either
    ],
)
def test_bodies_that_are_not_utf8_are_refused(body: bytes, phrase: str) -> None:
    with pytest.raises(MalformedInput) as refused:
        decode_body(body)
    assert phrase in str(refused.value)


def test_a_utf8_bom_and_utf16_without_a_bom_are_handled() -> None:
    assert load_documents(decode_body(b"\xef\xbb\xbf" + HEAD.encode()))[0]["kind"] == "ConfigMap"
    with pytest.raises(MalformedInput, match="unacceptable character #x0000"):  # UTF-16 without BOM: NULs in UTF-8
        load_documents(decode_body(HEAD.encode("utf-16-le")))


@pytest.mark.parametrize(
    "attribute, value",
    [
        ("KtxKind", 'Ev"il'),
        ("KtxKind", "widget"),
        ("KtxKind", "A B"),
        ("KtxKind", "W\\"),
        ("KtxKind", ""),
        ("KtxPromise", 'p" OR KtxKind != "'),
        ("KtxNamespace", "Team-A"),
        ("KtxDestinations", "dev'"),
        ("KtxPromise", "x" * 254),
        ("Ktx Promise", "p"),
        ("KtxPromise = 'a' OR KtxPromise", "p"),
    ],
)
def test_visibility_values_must_be_kinds_or_names(attribute: str, value: str) -> None:
    with pytest.raises(QueryValueRefused):
        equals(attribute, value)


def test_visibility_clauses_are_quoted() -> None:
    assert equals("KtxKind", "AppConfig") == 'KtxKind = "AppConfig"'
    assert equals("KtxPromise", "app-config.v2") == 'KtxPromise = "app-config.v2"'


def test_a_visibility_comparison_takes_an_integer_only() -> None:
    assert greater_than("KtxResourceVersion", 1796168793992589) == "KtxResourceVersion > 1796168793992589"
    for value in ("1 OR true", 1.5, True):
        with pytest.raises(QueryValueRefused):
            greater_than("KtxResourceVersion", value)  # type: ignore[arg-type]
    with pytest.raises(QueryValueRefused):
        greater_than("KtxResourceVersion > 0 OR KtxKind", 1)


def test_a_close_time_bound_takes_an_aware_datetime_only() -> None:
    two_hours_east = timezone(timedelta(hours=2))
    when = datetime(2026, 12, 3, 21, 0, 0, 5, tzinfo=two_hours_east)
    assert closed_since(when) == 'CloseTime >= "2026-12-03T19:00:00.000005Z"'
    for value in (datetime(2026, 12, 3), '2026-12-03" OR true OR "', 0):
        with pytest.raises(QueryValueRefused):
            closed_since(value)  # type: ignore[arg-type]
