"""Label and field selectors as the apiserver parses them (apimachinery labels.Parse, fields.ParseSelector).

Labels: `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, comma-separated,
all terms must hold. Fields: `path=value`, `path==value`, `path!=value`, comma-separated, over the paths a resource
declares (metadata.name and metadata.namespace for every one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from domain.labels import label_key_error, label_value_error

# A selector is a query string parameter: bounded so a hostile one cannot make a list request slow.
SELECTOR_MAX_CHARS = 4096
SELECTOR_MAX_TERMS = 64
SELECTOR_MAX_VALUES = 64


class SelectorError(ValueError):
    """A selector that does not parse; the API answers 400 BadRequest with this message."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too, as Kubernetes does.
        return not present or labels[self.key] not in self.values


_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|[^\s(),!=]+)")


def _tokens(text: str) -> list[str]:
    found, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if not match:
            raise SelectorError(f"unable to parse requirement: unexpected character at {at}")
        found.append(match.group(1))
        at = match.end()
    return found


def _bounded(text: str, what: str) -> None:
    if len(text) > SELECTOR_MAX_CHARS:
        raise SelectorError(f"{what} is {len(text)} characters, over the limit of {SELECTOR_MAX_CHARS}")


def _check_key(key: str) -> None:
    reason = label_key_error(key)
    if reason:
        raise SelectorError(f"unable to parse requirement: {reason}")


def _check_value(value: str) -> None:
    reason = label_value_error(value)
    if reason:
        raise SelectorError(f"unable to parse requirement: {reason}")


def parse_label_selector(text: str) -> list[Requirement]:
    _bounded(text, "labelSelector")
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    at = 0

    def take() -> str:
        nonlocal at
        if at >= len(tokens):
            raise SelectorError("unable to parse requirement: unexpected end of selector")
        at += 1
        return tokens[at - 1]

    while at < len(tokens):
        if len(requirements) >= SELECTOR_MAX_TERMS:
            raise SelectorError(f"labelSelector has more than {SELECTOR_MAX_TERMS} requirements")
        token = take()
        if token == "!":
            key = take()
            _check_key(key)
            requirements.append(Requirement(key, "!"))
        else:
            key = token
            _check_key(key)
            if at >= len(tokens) or tokens[at] == ",":
                requirements.append(Requirement(key, "exists"))
            else:
                op = take()
                if op in ("=", "==", "!="):
                    value = tokens[at] if at < len(tokens) and tokens[at] not in (",", "(", ")") else ""
                    if value:
                        at += 1
                    _check_value(value)
                    requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
                elif op in ("in", "notin"):
                    if take() != "(":
                        raise SelectorError(f"unable to parse requirement: expected '(' after {op}")
                    values: list[str] = []
                    while True:
                        value = take()
                        if value == ")" and not values:
                            break  # `in ()` is an empty set, as apimachinery allows
                        if value in (",", "(", ")"):
                            raise SelectorError("unable to parse requirement: expected a value")
                        _check_value(value)
                        values.append(value)
                        if len(values) > SELECTOR_MAX_VALUES:
                            raise SelectorError(f"a set of more than {SELECTOR_MAX_VALUES} values")
                        closing = take()
                        if closing == ")":
                            break
                        if closing != ",":
                            raise SelectorError("unable to parse requirement: expected ',' or ')'")
                    requirements.append(Requirement(key, op, tuple(values)))
                else:
                    raise SelectorError(f"unable to parse requirement: found {op!r}, expected an operator")
        if at < len(tokens):
            if tokens[at] != ",":
                raise SelectorError(f"unable to parse requirement: found {tokens[at]!r}, expected ','")
            at += 1
            if at >= len(tokens):
                raise SelectorError("unable to parse requirement: a selector may not end with ','")
    return requirements


def labels_match(requirements: list[Requirement], obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True)
class FieldTerm:
    path: str
    value: str
    negated: bool


def parse_field_selector(text: str, allowed: set[str]) -> list[FieldTerm]:
    """`allowed` are the field paths the resource supports; any other is refused, as the apiserver does."""
    _bounded(text, "fieldSelector")
    terms: list[FieldTerm] = []
    for part in filter(None, (p.strip() for p in _split_unescaped(text))):
        if len(terms) >= SELECTOR_MAX_TERMS:
            raise SelectorError(f"fieldSelector has more than {SELECTOR_MAX_TERMS} terms")
        for op in ("!=", "==", "="):
            path, found, value = part.partition(op)
            if found:
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        path = path.strip()
        if path not in allowed:
            raise SelectorError(f"field label not supported: {path}")
        terms.append(FieldTerm(path, _unescape(value.strip()), op == "!="))
    return terms


def _split_unescaped(text: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_value(obj: dict[str, Any], path: str) -> str:
    """The value a dotted path names in an object, as text ("" when absent), as the apiserver's field sets do."""
    current: Any = obj
    for part in path.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    if current is None:
        return ""
    return str(current).lower() if isinstance(current, bool) else str(current)


def fields_match(
    terms: list[FieldTerm], obj: dict[str, Any], value: Callable[[dict[str, Any], str], str] = field_value
) -> bool:
    return all((value(obj, t.path) == t.value) != t.negated for t in terms)
