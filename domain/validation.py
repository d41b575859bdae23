"""Validate a resource request against its Promise's OpenAPI v3 schema, the way the Kubernetes API server does.

Structural-schema semantics: defaults are applied, unknown fields are refused unless
`x-kubernetes-preserve-unknown-fields` is set, and each error names the JSON path of the field.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import TYPE_CHECKING, Any

import re2
from pydantic import ValidationError

from domain.documents import ResourceRequest
from domain.durations import check_wait
from domain.errors import FieldError, InvalidDocument, errors_from_pydantic
from domain.labels import RECONCILIATION_INTERVAL, metadata_errors
from domain.names import LABEL_MAX, NAME_PATTERN, NAMESPACE_PATTERN

if TYPE_CHECKING:  # only a type here: domain.promise_api checks Promises with this module's name rules
    from domain.promise_api import PromiseApi

_PATTERN_RULES = {
    NAME_PATTERN: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character",
    NAMESPACE_PATTERN: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
}
# Schema patterns come from Promise authors: matched with RE2, linear in the input as Kubernetes' Go regexp (same
# syntax), so no pattern can stall a request; Python's backtracking `re` took 7 s on `^(a+)+$` and 28 characters.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the author's 422, not a line on the API's stderr


@functools.lru_cache(maxsize=512)  # a few Promises' patterns, each used on every request
def schema_pattern(pattern: str) -> Any:
    """The compiled RE2 pattern; raises ValueError with RE2's reason for one it cannot compile."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(reason) from None


_IMPLICIT_TOP_LEVEL = {"apiVersion", "kind", "metadata", "status"}
_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def validate_name(field: str, value: object, *, max_length: int, pattern: re.Pattern[str]) -> list[FieldError]:
    if value is None or value == "":
        return [FieldError(field, "Required value")]
    if not isinstance(value, str):
        return [FieldError(field, f"Invalid value: {value!r}: must be of type string")]
    if len(value) > max_length:
        return [FieldError(field, f"must be no more than {max_length} characters")]
    if not pattern.match(value):
        return [FieldError(field, f"Invalid value: {value!r}: {_PATTERN_RULES[pattern]}")]
    return []


def object_at(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The mapping at a dotted path ({} where absent), so hand-read kinds refuse `metadata: x` instead of crashing."""
    value: Any = document
    for depth, key in enumerate(path.split(".")):
        value = value.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            field = ".".join(path.split(".")[: depth + 1])
            raise InvalidDocument([FieldError(field, f"Invalid value: {value!r}: must be of type object")])
    return value


def validate_namespace(value: object, field: str = "metadata.namespace") -> list[FieldError]:
    return validate_name(field, value, max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN)


def validate_resource_request(api: PromiseApi, document: dict[str, Any]) -> ResourceRequest:
    """Return the defaulted request, or raise InvalidDocument listing every field at fault."""
    errors: list[FieldError] = []
    if document.get("apiVersion") != api.api_version:
        errors.append(
            FieldError(
                "apiVersion",
                f"Unsupported value: {document.get('apiVersion')!r}: supported values: {api.api_version!r}",
            )
        )
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidDocument([FieldError("metadata", "must be of type object")])
    errors += validate_name("metadata.name", metadata.get("name"), max_length=LABEL_MAX, pattern=NAME_PATTERN)
    if metadata.get("namespace") is not None:
        errors += validate_namespace(metadata["namespace"])
    errors += metadata_errors(metadata)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict) and annotations.get(RECONCILIATION_INTERVAL) is not None:
        # Kratix reads the interval from Promises only, so here it changes nothing; a value no Promise could carry
        # is refused rather than silently ignored, as the team plainly meant something by it.
        errors += check_wait(
            f"metadata.annotations[{RECONCILIATION_INTERVAL}]",
            annotations[RECONCILIATION_INTERVAL],
            minimum_s=60,
            minimum="1m",
        )

    body = {k: copy.deepcopy(v) for k, v in document.items() if k not in _IMPLICIT_TOP_LEVEL}
    schema = dict(api.schema_)
    schema["properties"] = {k: v for k, v in (schema.get("properties") or {}).items() if k not in _IMPLICIT_TOP_LEVEL}
    body = _check_object(schema, body, "", errors)
    if errors:
        raise InvalidDocument(errors)
    request = dict(body)
    request.update(
        apiVersion=document["apiVersion"],
        kind=api.kind,
        metadata={**metadata, "namespace": metadata.get("namespace") or "default"},
    )
    try:
        return ResourceRequest.model_validate(request)
    except ValidationError as exc:  # the rest of metadata: labels and annotations must map strings to strings
        raise InvalidDocument(errors_from_pydantic(exc)) from exc


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _type_ok(expected: str, value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _type_of(value) == expected


def _check(schema: dict[str, Any], value: Any, path: str, errors: list[FieldError]) -> Any:
    """Validate one value; returns it with defaults applied. Errors are appended, not raised, to report them all."""
    if value is None:
        if not schema.get("nullable"):
            errors.append(FieldError(path, "Invalid value: null: must not be null"))
        return value
    expected = schema.get("type")
    if expected and not _type_ok(expected, value, schema):
        errors.append(FieldError(path, f"Invalid value: {value!r}: must be of type {expected}, got {_type_of(value)}"))
        return value
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(repr(v) for v in schema["enum"])
        errors.append(FieldError(path, f"Unsupported value: {value!r}: supported values: {supported}"))
    if isinstance(value, str):
        _check_string(schema, value, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(schema, value, path, errors)
    elif isinstance(value, list):
        value = _check_array(schema, value, path, errors)
    elif isinstance(value, dict):
        value = _check_object(schema, value, path, errors)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            _check_combinator(combinator, schema[combinator], value, path, errors)
    if "not" in schema and not _check_silently(schema["not"], value, path):
        errors.append(FieldError(path, "must not validate against the schema in 'not'"))
    return value


def _check_string(schema: dict[str, Any], value: str, path: str, errors: list[FieldError]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(
            FieldError(path, f"Invalid value: {value!r}: should be at least {schema['minLength']} chars long")
        )
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError(path, f"Too long: may not be longer than {schema['maxLength']}"))
    if "pattern" in schema and not schema_pattern(schema["pattern"]).search(value):
        errors.append(FieldError(path, f"Invalid value: {value!r}: should match '{schema['pattern']}'"))


def _check_number(schema: dict[str, Any], value: float, path: str, errors: list[FieldError]) -> None:
    if "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") is True and value == low):
            op = "greater than" if schema.get("exclusiveMinimum") is True else "greater than or equal to"
            errors.append(FieldError(path, f"Invalid value: {value}: should be {op} {low}"))
    if "maximum" in schema:
        high = schema["maximum"]
        if value > high or (schema.get("exclusiveMaximum") is True and value == high):
            op = "less than" if schema.get("exclusiveMaximum") is True else "less than or equal to"
            errors.append(FieldError(path, f"Invalid value: {value}: should be {op} {high}"))
    if "multipleOf" in schema and value % schema["multipleOf"] != 0:
        errors.append(FieldError(path, f"Invalid value: {value}: should be a multiple of {schema['multipleOf']}"))


def _check_array(schema: dict[str, Any], value: list[Any], path: str, errors: list[FieldError]) -> list[Any]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(FieldError(path, f"Invalid value: should have at least {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(FieldError(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
    if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
        errors.append(FieldError(path, "Duplicate value: items must be unique"))
    items = schema.get("items")
    if isinstance(items, dict):
        return [_check(items, item, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    return value


def _check_object(schema: dict[str, Any], value: dict[str, Any], path: str, errors: list[FieldError]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    result = dict(value)
    for key, item in value.items():
        child = _join(path, key)
        if key in properties:
            result[key] = _check(properties[key], item, child, errors)
        elif isinstance(additional, dict):
            result[key] = _check(additional, item, child, errors)
        elif not (preserve or additional is True or (not properties and additional is None and not schema.get("type"))):
            errors.append(FieldError(child, "field not declared in schema"))
    for key, sub in properties.items():
        if key not in result and isinstance(sub, dict) and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
    for key in schema.get("required") or []:
        if key not in result:
            errors.append(FieldError(_join(path, key), "Required value"))
    if "minProperties" in schema and len(result) < schema["minProperties"]:
        errors.append(FieldError(path, f"should have at least {schema['minProperties']} properties"))
    if "maxProperties" in schema and len(result) > schema["maxProperties"]:
        errors.append(FieldError(path, f"should have at most {schema['maxProperties']} properties"))
    return result


def value_errors(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    """What validating `value` against `schema` finds, leaving `value` as it was (a CRD's defaults are checked so)."""
    found: list[FieldError] = []
    _check(schema, copy.deepcopy(value), path, found)
    return found


def _check_silently(schema: dict[str, Any], value: Any, path: str) -> bool:
    return not value_errors(schema, value, path)


def _check_combinator(
    kind: str, schemas: list[dict[str, Any]], value: Any, path: str, errors: list[FieldError]
) -> None:
    passing = sum(_check_silently(s, value, path) for s in schemas)
    if kind == "allOf" and passing != len(schemas):
        for s in schemas:
            _check(s, copy.deepcopy(value), path, errors)
    elif kind == "anyOf" and passing == 0:
        errors.append(FieldError(path, "must validate against at least one schema in 'anyOf'"))
    elif kind == "oneOf" and passing != 1:
        errors.append(FieldError(path, f"must validate against exactly one schema in 'oneOf', matched {passing}"))
