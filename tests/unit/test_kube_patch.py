"""The patches of domain/kube/patch.py against the RFCs' own examples: RFC 6902 appendix A and RFC 7386 appendix A."""

from __future__ import annotations

from typing import Any

import pytest

from domain.kube.patch import (
    MAX_DEPTH,
    MAX_OPERATIONS,
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

# RFC 6902 appendix A (A.1-A.16), each (document, patch, result or None when the patch must fail).
RFC6902: list[tuple[Any, list[dict[str, Any]], Any]] = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], None),
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], None),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], None),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    ({"foo": {"bar": 1}}, [{"op": "copy", "from": "/foo/bar", "path": "/baz"}], {"foo": {"bar": 1}, "baz": 1}),
]


@pytest.mark.parametrize("document, patch, result", RFC6902)
def test_rfc6902_appendix_a(document: Any, patch: list[dict[str, Any]], result: Any) -> None:
    if result is None:
        with pytest.raises(PatchError):
            apply_json_patch(document, patch)
    else:
        assert apply_json_patch(document, patch) == result


def test_json_patch_leaves_the_original_alone_and_refuses_malformed_operations() -> None:
    original = {"a": {"b": 1}}
    apply_json_patch(original, [{"op": "replace", "path": "/a/b", "value": 2}])
    assert original == {"a": {"b": 1}}
    for bad in (
        {"op": "add", "value": 1},  # no path
        {"op": "frobnicate", "path": "/a"},
        {"op": "move", "path": "/a/b/c", "from": "/a"},  # into itself
        {"op": "remove", "path": "/a/0"},  # not an array
        {"op": "add", "path": "a", "value": 1},  # not a pointer
        "add",
    ):
        with pytest.raises(PatchError):
            apply_json_patch(original, [bad])
    with pytest.raises(PatchError):
        apply_json_patch({"l": [1]}, [{"op": "add", "path": "/l/01", "value": 2}])  # leading zero
    with pytest.raises(PatchError):
        apply_json_patch({}, {"op": "add"})  # not an array


def test_json_patch_bounds_operations_and_depth() -> None:
    with pytest.raises(PatchError, match="operations"):
        apply_json_patch({}, [{"op": "test", "path": "", "value": {}}] * (MAX_OPERATIONS + 1))
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = {"a": deep}
    with pytest.raises(PatchError, match="nested"):
        apply_json_patch({}, [{"op": "add", "path": "/x", "value": deep}])


# RFC 7386 appendix A: (target, patch, result).
RFC7386: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target, patch, result", RFC7386)
def test_rfc7386_appendix_a(target: Any, patch: Any, result: Any) -> None:
    assert apply_merge_patch(target, patch) == result


def test_strategic_merge_patch_merges_maps_and_honours_directives() -> None:
    secret = {"metadata": {"name": "s", "labels": {"a": "1", "b": "2"}}, "data": {"k": "dg=="}, "type": "Opaque"}
    assert apply_strategic_merge_patch(secret, {"metadata": {"labels": {"c": "3", "a": None}}})["metadata"] == {
        "name": "s",
        "labels": {"b": "2", "c": "3"},
    }
    assert apply_strategic_merge_patch(secret, {"data": {"$patch": "replace", "x": "eA=="}})["data"] == {"x": "eA=="}
    assert "data" not in apply_strategic_merge_patch(secret, {"data": {"$patch": "delete"}})
    kept = apply_strategic_merge_patch(secret, {"$retainKeys": ["metadata", "type"], "type": "kubernetes.io/tls"})
    assert kept == {"metadata": secret["metadata"], "type": "kubernetes.io/tls"}
    # kubectl sends the order of merged lists beside them; a list is replaced here, so the order says nothing more
    assert apply_strategic_merge_patch(secret, {"$setElementOrder/finalizers": [], "type": "x"})["type"] == "x"
    for bad in ({"$patch": "explode"}, {"$unknown": 1}, ["not", "an", "object"]):
        with pytest.raises(PatchError):
            apply_strategic_merge_patch(secret, bad)
