"""A Promise's `spec.api` checked as the Kubernetes API server checks a CustomResourceDefinition.

The rules of apiextensions-apiserver's validation (names, versions, structural schemas): what the Promise's API
serves, validates and defaults must be well-formed before any request is checked against it, so a schema can never
turn a request into a 500 (`type: banana`, `minLength: "x"`, `multipleOf: 0`, a pattern that does not compile).
A few rules are stricter than Kubernetes, where ktx depends on the value (each says why); none is laxer.
"""

from __future__ import annotations

import re
from typing import Any

from domain.documents import Promise
from domain.errors import FieldError, InvalidDocument
from domain.promise_api import PromiseApi, check_promise
from domain.names import KIND_PATTERN, LABEL_MAX, NAME_PATTERN, SUBDOMAIN_MAX
from domain.validation import schema_pattern, value_errors

CRD_API_VERSION = "apiextensions.k8s.io/v1"
# DNS-1035 labels: plural, singular, short names, categories, version names (Kubernetes' IsDNS1035Label).
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes only requires the lower-cased kind to be a DNS-1035 label; ktx also wants it CamelCase from an
# uppercase letter, without '-' (KIND_PATTERN), as every Kratix Promise is: the kind is matched against platform kind
# names by its lower case and written into workflow search attributes and visibility queries.
_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_COUNTS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")
_FLAGS = (
    "nullable",
    "uniqueItems",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
)
_TEXTS = ("description", "title", "format", "pattern")
_JUNCTORS = ("allOf", "anyOf", "oneOf")
# JSON-Schema keywords a structural schema cannot hold (the validator would ignore them, so they would promise
# checks that never happen).
_UNSUPPORTED = ("$ref", "$schema", "id", "definitions", "dependencies", "patternProperties", "additionalItems")
_KNOWN = {
    "type",
    "properties",
    "additionalProperties",
    "items",
    "required",
    "enum",
    "default",
    "not",
    "example",
    "externalDocs",
    "minimum",
    "maximum",
    "multipleOf",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
    *_COUNTS,
    *_FLAGS,
    *_TEXTS,
    *_JUNCTORS,
    *_UNSUPPORTED,
}
# Inside allOf/anyOf/oneOf/not only value validations: the structure (and defaulting) is the outer schema's.
_NOT_IN_JUNCTORS = ("type", "default", "nullable", "additionalProperties", "description")


def admit_promise(promise: Promise) -> PromiseApi | None:
    """Every admission rule of a Promise (its CRD first, as Kubernetes would refuse it); returns the API it serves."""
    if promise.spec.api:
        errors = validate_crd(promise.spec.api)
        if errors:
            raise InvalidDocument(errors)
    return check_promise(promise)


def validate_crd(crd: dict[str, Any], field: str = "spec.api") -> list[FieldError]:
    errors: list[FieldError] = []
    if crd.get("apiVersion") != CRD_API_VERSION:
        errors.append(
            FieldError(
                f"{field}.apiVersion",
                f"Unsupported value: {crd.get('apiVersion')!r}: supported values: {CRD_API_VERSION!r}",
            )
        )
    if crd.get("kind") != "CustomResourceDefinition":
        errors.append(FieldError(f"{field}.kind", "must be CustomResourceDefinition"))
    metadata = _mapping(crd, "metadata", field, errors)
    spec = _mapping(crd, "spec", field, errors)
    group = spec.get("group")
    group_field = f"{field}.spec.group"
    if not group:
        errors.append(FieldError(group_field, "Required value"))
    elif not _text(group, group_field, errors):
        pass
    elif len(group) > SUBDOMAIN_MAX or not NAME_PATTERN.match(group):
        errors.append(FieldError(group_field, f"Invalid value: {group!r}: must be a lowercase RFC 1123 subdomain"))
    elif "." not in group:
        errors.append(FieldError(group_field, f"Invalid value: {group!r}: should be a domain with at least one dot"))
    names = _mapping(spec, "names", f"{field}.spec", errors)
    _check_names(names, f"{field}.spec.names", errors)
    scope = spec.get("scope", "Namespaced")
    if scope != "Namespaced":
        errors.append(
            FieldError(f"{field}.spec.scope", f"promise api needs to be namespace scoped; cannot be: {scope}")
        )
    plural = names.get("plural")
    if isinstance(plural, str) and isinstance(group, str) and metadata.get("name") != f"{plural}.{group}":
        errors.append(FieldError(f"{field}.metadata.name", f"must be '{plural}.{group}'"))
    _check_versions(spec.get("versions"), f"{field}.spec.versions", errors)
    return errors


def _check_names(names: dict[str, Any], field: str, errors: list[FieldError]) -> None:
    kind = names.get("kind")
    for key, required in (("kind", True), ("listKind", False)):
        value = names.get(key)
        if value is None or value == "":
            if required:
                errors.append(FieldError(f"{field}.{key}", "Required value"))
        elif _text(value, f"{field}.{key}", errors) and (len(value) > LABEL_MAX or not KIND_PATTERN.match(value)):
            errors.append(
                FieldError(
                    f"{field}.{key}",
                    f"Invalid value: {value!r}: must be CamelCase, start with an "
                    f"uppercase letter and be at most {LABEL_MAX} characters (e.g. 'MyWidget')",
                )
            )
    if names.get("listKind") is not None and names.get("listKind") == kind:
        errors.append(FieldError(f"{field}.listKind", "kind and listKind may not be the same"))
    for key, required in (("plural", True), ("singular", False)):
        value = names.get(key)
        if value is None or value == "":
            if required:
                errors.append(FieldError(f"{field}.{key}", "Required value"))
        else:
            _label(value, f"{field}.{key}", errors)
    for key in ("shortNames", "categories"):
        values = names.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            errors.append(FieldError(f"{field}.{key}", "must be of type array"))
            continue
        for index, value in enumerate(values):
            _label(value, f"{field}.{key}[{index}]", errors)


def _check_versions(versions: Any, field: str, errors: list[FieldError]) -> None:
    if not isinstance(versions, list) or not versions:
        errors.append(
            FieldError(field, "at least one version is required" if not versions else "must be of type array")
        )
        return
    seen: set[str] = set()
    storage = 0
    for index, version in enumerate(versions):
        here = f"{field}[{index}]"
        if not isinstance(version, dict):
            errors.append(FieldError(here, "must be of type object"))
            continue
        name = version.get("name")
        if name is None or name == "":
            errors.append(FieldError(f"{here}.name", "Required value"))
        elif _label(name, f"{here}.name", errors):
            if name in seen:
                errors.append(FieldError(f"{here}.name", f"Duplicate value: {name!r}"))
            seen.add(name)
        for flag in ("served", "storage"):
            if flag in version and not isinstance(version[flag], bool):
                errors.append(
                    FieldError(f"{here}.{flag}", f"Invalid value: {version[flag]!r}: must be of type boolean")
                )
        storage += version.get("storage") is True
        schema = version.get("schema")
        if not isinstance(schema, dict) or "openAPIV3Schema" not in schema:
            errors.append(FieldError(f"{here}.schema.openAPIV3Schema", "Required value: schemas are required"))
            continue
        _check_schema(schema["openAPIV3Schema"], f"{here}.schema.openAPIV3Schema", errors, root=True)
    if storage != 1:
        errors.append(FieldError(field, f"must have exactly one version marked as storage version, found {storage}"))


def _check_schema(
    node: Any,
    field: str,
    errors: list[FieldError],
    *,
    root: bool = False,
    junctor: bool = False,
    int_or_string: bool = False,
) -> None:
    """One node of an openAPIV3Schema, and everything under it."""
    if not isinstance(node, dict):
        errors.append(FieldError(field, f"Invalid value: {node!r}: must be of type object"))
        return
    for key in node:
        if key in _UNSUPPORTED:
            errors.append(FieldError(f"{field}.{key}", f"Forbidden: {key} is not supported"))
        elif key not in _KNOWN:
            errors.append(FieldError(f"{field}.{key}", "field not declared in schema"))
    before = len(errors)
    for key in _FLAGS:
        if key in node and not isinstance(node[key], bool):
            errors.append(FieldError(f"{field}.{key}", f"Invalid value: {node[key]!r}: must be of type boolean"))
    for key in _TEXTS:
        if key in node:
            _text(node[key], f"{field}.{key}", errors)
    for key in _COUNTS:
        if key in node and (not isinstance(node[key], int) or isinstance(node[key], bool) or node[key] < 0):
            errors.append(FieldError(f"{field}.{key}", f"Invalid value: {node[key]!r}: must be a non-negative integer"))
    for key in ("minimum", "maximum", "multipleOf"):
        if key in node and not _is_number(node[key]):
            errors.append(FieldError(f"{field}.{key}", f"Invalid value: {node[key]!r}: must be of type number"))
    if _is_number(node.get("multipleOf")) and node["multipleOf"] <= 0:
        errors.append(
            FieldError(f"{field}.multipleOf", f"Invalid value: {node['multipleOf']!r}: must be greater than zero")
        )
    if isinstance(node.get("pattern"), str):
        try:
            schema_pattern(node["pattern"])
        except ValueError as exc:
            errors.append(
                FieldError(
                    f"{field}.pattern", f"Invalid value: {node['pattern']!r}: not an RE2 regular expression: {exc}"
                )
            )
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(FieldError(f"{field}.x-kubernetes-preserve-unknown-fields", "must be true or undefined"))
    if node.get("uniqueItems") is True:
        errors.append(
            FieldError(
                f"{field}.uniqueItems",
                "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    int_or_string = int_or_string or node.get("x-kubernetes-int-or-string") is True
    type_ = node.get("type")
    if junctor:
        for key in _NOT_IN_JUNCTORS:
            # The one exception Kubernetes makes: `anyOf: [{type: integer}, {type: string}]` under int-or-string.
            if key in node and not (key == "type" and int_or_string):
                errors.append(
                    FieldError(f"{field}.{key}", "Forbidden: must not be specified inside allOf, anyOf, oneOf or not")
                )
    elif type_ is None or type_ == "":
        if root or not (int_or_string or node.get("x-kubernetes-preserve-unknown-fields") is True):
            errors.append(FieldError(f"{field}.type", "Required value: must not be empty for specified object fields"))
    if type_ not in (None, ""):
        if type_ == "null":
            errors.append(
                FieldError(f"{field}.type", "Forbidden: type cannot be set to null, use nullable as an alternative")
            )
        elif type_ not in _TYPES:
            errors.append(
                FieldError(
                    f"{field}.type",
                    f"Unsupported value: {type_!r}: supported values: " + ", ".join(f'"{t}"' for t in _TYPES),
                )
            )
        elif node.get("x-kubernetes-int-or-string") is True and not junctor:
            errors.append(FieldError(f"{field}.type", "must be empty if x-kubernetes-int-or-string is true"))
    if root and type_ != "object":
        errors.append(FieldError(f"{field}.type", "must be object at the root"))
    if node.get("x-kubernetes-embedded-resource") is True and type_ != "object":
        errors.append(FieldError(f"{field}.type", "must be object if x-kubernetes-embedded-resource is true"))
    _check_children(node, field, errors, junctor=junctor, int_or_string=int_or_string, root=root)
    _check_lists_and_maps(node, field, errors)
    if "enum" in node:
        if not isinstance(node["enum"], list):
            errors.append(FieldError(f"{field}.enum", f"Invalid value: {node['enum']!r}: must be of type array"))
        elif len(errors) == before and type_ in _TYPES:
            for index, value in enumerate(node["enum"]):
                if value is not None or not node.get("nullable"):
                    errors.extend(
                        value_errors(
                            {"type": type_, "nullable": node.get("nullable", False)}, value, f"{field}.enum[{index}]"
                        )
                    )
    if "default" in node and not junctor and len(errors) == before:
        # Only on a node that is otherwise sound: validating against a broken schema would itself fail.
        outer = {k: v for k, v in node.items() if k != "default"}
        errors.extend(value_errors(outer, node["default"], f"{field}.default"))


def _check_children(
    node: dict[str, Any], field: str, errors: list[FieldError], *, junctor: bool, int_or_string: bool, root: bool
) -> None:
    properties = node.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            errors.append(
                FieldError(
                    f"{field}.properties",
                    f"Invalid value: {type(properties).__name__}: must be a map of property names to schemas",
                )
            )
            properties = None
        else:
            for key, child in properties.items():
                _check_schema(child, f"{field}.properties.{key}", errors, junctor=junctor)
    additional = node.get("additionalProperties")
    if additional is not None:
        if root:
            errors.append(FieldError(f"{field}.additionalProperties", "Forbidden: must not be used at the root"))
        if isinstance(additional, dict):
            _check_schema(additional, f"{field}.additionalProperties", errors, junctor=junctor)
        elif not isinstance(additional, bool):
            errors.append(FieldError(f"{field}.additionalProperties", "must be a boolean or a schema"))
        if properties and additional is not True:
            errors.append(
                FieldError(
                    f"{field}.additionalProperties",
                    "Forbidden: additionalProperties and properties are mutual exclusive",
                )
            )
    required = node.get("required")
    if required is not None:
        if not isinstance(required, list):
            errors.append(
                FieldError(f"{field}.required", f"Invalid value: {required!r}: must be a list of property names")
            )
        else:
            # Stricter than Kubernetes: a required field the schema cannot hold (not declared, unknown fields
            # refused) makes every request invalid, which is an authoring mistake to name now, not at each request.
            closed = (
                isinstance(properties, dict)
                and not junctor
                and additional is None
                and node.get("x-kubernetes-preserve-unknown-fields") is not True
            )
            for index, name in enumerate(required):
                if not isinstance(name, str):
                    errors.append(
                        FieldError(f"{field}.required[{index}]", f"Invalid value: {name!r}: must be of type string")
                    )
                elif closed and name not in properties:  # type: ignore[operator]
                    errors.append(
                        FieldError(
                            f"{field}.required[{index}]",
                            f"Invalid value: {name!r}: not one of the properties declared beside it",
                        )
                    )
    items = node.get("items")
    if items is None:
        if node.get("type") == "array" and not junctor:
            errors.append(FieldError(f"{field}.items", "Required value: must be specified"))
    elif isinstance(items, list):
        errors.append(FieldError(f"{field}.items", "Forbidden: items must be a schema object and not an array"))
    else:
        _check_schema(items, f"{field}.items", errors, junctor=junctor)
    for key in _JUNCTORS:
        if key not in node:
            continue
        if not isinstance(node[key], list):
            errors.append(FieldError(f"{field}.{key}", f"Invalid value: {node[key]!r}: must be a list of schemas"))
            continue
        for index, child in enumerate(node[key]):
            _check_schema(child, f"{field}.{key}[{index}]", errors, junctor=True, int_or_string=int_or_string)
    if "not" in node:
        _check_schema(node["not"], f"{field}.not", errors, junctor=True, int_or_string=int_or_string)


def _check_lists_and_maps(node: dict[str, Any], field: str, errors: list[FieldError]) -> None:
    list_type = node.get("x-kubernetes-list-type")
    keys = node.get("x-kubernetes-list-map-keys")
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errors.append(
            FieldError(
                f"{field}.x-kubernetes-list-type",
                f'Unsupported value: {list_type!r}: supported values: "atomic", "map", "set"',
            )
        )
    if list_type is not None and node.get("type") not in ("array", None):
        errors.append(FieldError(f"{field}.x-kubernetes-list-type", "must only be used if type is array"))
    if list_type == "map" and not keys:
        errors.append(
            FieldError(
                f"{field}.x-kubernetes-list-map-keys",
                "Required value: must not be empty if x-kubernetes-list-type is map",
            )
        )
    if keys is not None:
        if list_type != "map":
            errors.append(
                FieldError(f"{field}.x-kubernetes-list-map-keys", "must only be used if x-kubernetes-list-type is map")
            )
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            errors.append(FieldError(f"{field}.x-kubernetes-list-map-keys", "must be a list of strings"))
    map_type = node.get("x-kubernetes-map-type")
    if map_type is not None and map_type not in ("granular", "atomic"):
        errors.append(
            FieldError(
                f"{field}.x-kubernetes-map-type",
                f'Unsupported value: {map_type!r}: supported values: "atomic", "granular"',
            )
        )
    rules = node.get("x-kubernetes-validations")
    if rules is not None and not (
        isinstance(rules, list) and all(isinstance(r, dict) and isinstance(r.get("rule"), str) for r in rules)
    ):
        errors.append(
            FieldError(f"{field}.x-kubernetes-validations", "must be a list of {rule: <CEL expression>, ...}")
        )


def _mapping(parent: dict[str, Any], key: str, field: str, errors: list[FieldError]) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(f"{field}.{key}", f"Invalid value: {value!r}: must be of type object"))
        return {}
    return value


def _text(value: Any, field: str, errors: list[FieldError]) -> bool:
    if isinstance(value, str):
        return True
    errors.append(FieldError(field, f"Invalid value: {value!r}: must be of type string"))
    return False


def _label(value: Any, field: str, errors: list[FieldError]) -> bool:
    if not _text(value, field, errors):
        return False
    if len(value) > LABEL_MAX or not _DNS_1035.match(value):
        errors.append(
            FieldError(
                field,
                f"Invalid value: {value!r}: a DNS-1035 label must consist of lower case "
                "alphanumeric characters or '-', start with an alphabetic character, and end "
                f"with an alphanumeric character, at most {LABEL_MAX} characters",
            )
        )
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
