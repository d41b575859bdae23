"""A Promise's CRD (`spec.api`) checked as the Kubernetes API server checks a CustomResourceDefinition."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.crd_validation import admit_promise, validate_crd
from domain.documents import Promise
from domain.errors import InvalidDocument
from domain.validation import validate_resource_request
from tests.kratix_documents import promise

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "promises"
SPEC = "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec"


def crd(properties: dict[str, Any] | None = None, **names: Any) -> dict[str, Any]:
    doc = promise("widgets", "Widget", properties=properties)["spec"]["api"]
    doc["spec"]["names"].update(names)
    return doc


def with_spec(spec_schema: dict[str, Any]) -> dict[str, Any]:
    doc = crd()
    doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = spec_schema
    return doc


def fields(errors: list) -> dict[str, str]:
    return {e.field: e.reason for e in errors}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/promise.yaml")))
def test_the_examples_and_test_promises_are_admitted(path: Path) -> None:
    assert validate_crd(yaml.safe_load(path.read_text())["spec"]["api"]) == []
    assert (
        validate_crd(
            crd(
                {
                    "size": {"type": "string", "enum": ["s", "m"], "default": "s"},
                    "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "tags": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "^[a-z]+$"},
                        "x-kubernetes-list-type": "set",
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                }
            )
        )
        == []
    )


@pytest.mark.parametrize(
    "schema, field, reason",
    [
        ({"type": "banana"}, "type", "Unsupported value: 'banana'"),
        ({"type": "null"}, "type", "use nullable"),
        ({"description": "no type"}, "type", "Required value"),
        ({"type": "string", "pattern": "(?<=a)b"}, "pattern", "not an RE2 regular expression"),
        ({"type": "string", "pattern": "[unclosed"}, "pattern", "not an RE2 regular expression"),
        ({"type": "string", "pattern": 5}, "pattern", "must be of type string"),
        ({"type": "object", "properties": ["a", "b"]}, "properties", "must be a map"),
        ({"type": "object", "properties": {"a": "string"}}, "properties.a", "must be of type object"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"}, "required", "must be a list"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": [1]},
            "required[0]",
            "must be of type string",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
            "required[0]",
            "not one of the properties",
        ),
        ({"type": "string", "enum": 5}, "enum", "must be of type array"),
        ({"type": "string", "enum": ["a", 1]}, "enum[1]", "must be of type string"),
        ({"type": "string", "minLength": "x"}, "minLength", "must be a non-negative integer"),
        ({"type": "string", "maxLength": -1}, "maxLength", "must be a non-negative integer"),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": True},
            "minItems",
            "must be a non-negative integer",
        ),
        ({"type": "integer", "minimum": "1"}, "minimum", "must be of type number"),
        ({"type": "integer", "multipleOf": 0}, "multipleOf", "must be greater than zero"),
        ({"type": "integer", "exclusiveMinimum": 3}, "exclusiveMinimum", "must be of type boolean"),
        ({"type": "array"}, "items", "must be specified"),
        ({"type": "array", "items": [{"type": "string"}]}, "items", "not an array"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems", "quadratic"),
        ({"$ref": "#/definitions/x"}, "$ref", "not supported"),
        ({"type": "object", "patternProperties": {"a": {"type": "string"}}}, "patternProperties", "not supported"),
        ({"type": "string", "minLenght": 3}, "minLenght", "field not declared in schema"),
        (
            {"type": "object", "x-kubernetes-preserve-unknown-fields": False},
            "x-kubernetes-preserve-unknown-fields",
            "true or undefined",
        ),
        ({"type": "string", "x-kubernetes-int-or-string": True}, "type", "must be empty"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "additionalProperties",
            "mutual exclusive",
        ),
        ({"type": "string", "allOf": [{"type": "string", "minLength": 1}]}, "allOf[0].type", "inside allOf"),
        ({"type": "string", "anyOf": {"minLength": 1}}, "anyOf", "must be a list of schemas"),
        ({"type": "string", "default": 5}, "default", "must be of type string"),
        ({"type": "integer", "default": 9, "maximum": 5}, "default", "less than or equal to 5"),
        (
            {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"},
            "x-kubernetes-list-map-keys",
            "Required",
        ),
        ({"type": "object", "x-kubernetes-map-type": "sometimes"}, "x-kubernetes-map-type", "Unsupported value"),
    ],
)
def test_schema_nodes_are_checked_and_named_by_path(schema: dict, field: str, reason: str) -> None:
    found = fields(validate_crd(with_spec(schema)))
    assert f"{SPEC}.{field}" in found, found
    assert reason in found[f"{SPEC}.{field}"]


def test_nested_nodes_are_named_with_their_whole_path() -> None:
    found = fields(
        validate_crd(
            crd(
                {
                    "size": {"type": "banana"},
                    "list": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"deep": {"type": "string", "minLength": "x"}}},
                    },
                }
            )
        )
    )
    assert found[f"{SPEC}.properties.size.type"].startswith("Unsupported value: 'banana'")
    assert f"{SPEC}.properties.list.items.properties.deep.minLength" in found


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (lambda d: d["spec"]["names"].update(kind="widget"), "spec.names.kind", "CamelCase"),
        (lambda d: d["spec"]["names"].update(kind='Ev"il'), "spec.names.kind", "CamelCase"),
        (lambda d: d["spec"]["names"].update(kind="My-Widget"), "spec.names.kind", "CamelCase"),
        (lambda d: d["spec"]["names"].update(kind="W" * 64), "spec.names.kind", "at most 63"),
        (lambda d: d["spec"]["names"].pop("kind"), "spec.names.kind", "Required value"),
        (lambda d: d["spec"]["names"].update(plural="wid/gets"), "spec.names.plural", "DNS-1035"),
        (lambda d: d["spec"]["names"].update(singular="Widget"), "spec.names.singular", "DNS-1035"),
        (lambda d: d["spec"]["names"].update(shortNames="wd"), "spec.names.shortNames", "must be of type array"),
        (lambda d: d["spec"]["names"].update(shortNames=["w d"]), "spec.names.shortNames[0]", "DNS-1035"),
        (lambda d: d["spec"]["names"].update(listKind="Widget"), "spec.names.listKind", "may not be the same"),
        (lambda d: d["spec"].update(names=["Widget"]), "spec.names", "must be of type object"),
        (lambda d: d["spec"].update(group="nodot"), "spec.group", "at least one dot"),
        (lambda d: d["spec"].update(group="Test.ktx.io"), "spec.group", "RFC 1123 subdomain"),
        (lambda d: d["spec"].update(group='x".io'), "spec.group", "RFC 1123 subdomain"),
        (lambda d: d["metadata"].update(name="other.test.ktx.io"), "metadata.name", "must be 'widgets.test.ktx.io'"),
        (lambda d: d.update(apiVersion="apiextensions.k8s.io/v1beta1"), "apiVersion", "Unsupported value"),
        (lambda d: d["spec"].update(scope="Cluster"), "spec.scope", "namespace scoped"),
        (lambda d: d["spec"].update(versions=[]), "spec.versions", "at least one version"),
        (lambda d: d["spec"].update(versions={"name": "v1"}), "spec.versions", "must be of type array"),
        (
            lambda d: d["spec"]["versions"][0].update(storage=False),
            "spec.versions",
            "exactly one version marked as storage",
        ),
        (
            lambda d: d["spec"]["versions"].append(copy.deepcopy(d["spec"]["versions"][0])),
            "spec.versions[1].name",
            "Duplicate value",
        ),
        (lambda d: d["spec"]["versions"][0].update(name="V1"), "spec.versions[0].name", "DNS-1035"),
        (lambda d: d["spec"]["versions"][0].update(served="yes"), "spec.versions[0].served", "must be of type boolean"),
        (
            lambda d: d["spec"]["versions"][0].pop("schema"),
            "spec.versions[0].schema.openAPIV3Schema",
            "schemas are required",
        ),
        (
            lambda d: d["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(type="string"),
            "spec.versions[0].schema.openAPIV3Schema.type",
            "must be object at the root",
        ),
    ],
)
def test_names_versions_and_identity(change: Any, field: str, reason: str) -> None:
    doc = crd()
    change(doc)
    found = fields(validate_crd(doc))
    assert f"spec.api.{field}" in found, found
    assert reason in found[f"spec.api.{field}"]


def test_admission_refuses_before_reading_a_broken_crd() -> None:
    """A CRD whose shape would crash the reader (names a list) is refused, not a TypeError."""
    doc = promise("widgets", "Widget")
    doc["spec"]["api"]["spec"]["names"] = ["Widget"]
    with pytest.raises(InvalidDocument, match="spec.api.spec.names"):
        admit_promise(Promise.model_validate(doc))
    assert admit_promise(Promise.model_validate(promise("widgets", "Widget"))).kind == "Widget"  # type: ignore[union-attr]


def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    """`^(a+)+$` took Python's `re` 7 s on 28 characters; RE2 answers in microseconds, even on a megabyte."""
    doc = promise("widgets", "Widget", properties={"name": {"type": "string", "pattern": "^(a+)+$"}})
    api = admit_promise(Promise.model_validate(doc))
    assert api is not None
    request = {"apiVersion": "test.ktx.io/v1", "kind": "Widget", "metadata": {"name": "w"}}
    started = time.perf_counter()
    for value in ("a" * 28 + "b", "a" * 1_000_000 + "!"):
        with pytest.raises(InvalidDocument, match="should match"):
            validate_resource_request(api, {**request, "spec": {"name": value}})
    assert time.perf_counter() - started < 1
    assert validate_resource_request(api, {**request, "spec": {"name": "a" * 28}}).spec == {"name": "a" * 28}
