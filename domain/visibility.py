"""Temporal visibility queries (SQL-like text) built from names without pasting text into them.

A value reaches a query only once its grammar says it is a kind or a Kubernetes name, which holds no quote, backslash
or space; it is then quoted and escaped all the same, so a value that slipped past a grammar still stays one literal.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from domain.names import KIND_PATTERN, LABEL_MAX, NAME_PATTERN, SUBDOMAIN_MAX

# Per search attribute, what its values are: KtxKind holds kinds and KtxPhase one-word phases (CamelCase, as kinds),
# every other attribute a name or namespace.
_KIND_ATTRIBUTES = {"KtxKind", "KtxPhase"}
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")

RUNNING = 'ExecutionStatus = "Running"'
CONTINUED_AS_NEW = 'ExecutionStatus = "ContinuedAsNew"'


class QueryValueRefused(ValueError):
    """A value that is not a kind or a name where a visibility query expected one."""

    def __init__(self, attribute: str, value: str, grammar: str):
        self.attribute, self.value = attribute, value
        super().__init__(f"{value!r} is not a valid {grammar} for {attribute}")


def equals(attribute: str, value: str) -> str:
    """`Attribute = "value"`, for a kind or name that the attribute's grammar admits; refuses anything else."""
    if not _ATTRIBUTE.match(attribute):
        raise QueryValueRefused("a search attribute", attribute, "attribute name")
    if attribute in _KIND_ATTRIBUTES:
        if not isinstance(value, str) or len(value) > LABEL_MAX or not KIND_PATTERN.match(value):
            raise QueryValueRefused(attribute, value, "kind (CamelCase, letters and digits)")
    elif not isinstance(value, str) or len(value) > SUBDOMAIN_MAX or not NAME_PATTERN.match(value):
        raise QueryValueRefused(attribute, value, "name (a lowercase RFC 1123 subdomain)")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} = "{escaped}"'


def greater_than(attribute: str, value: int) -> str:
    """`Attribute > value` for an Int search attribute; the value is an integer, never text."""
    if not _ATTRIBUTE.match(attribute):
        raise QueryValueRefused("a search attribute", attribute, "attribute name")
    if not isinstance(value, int) or isinstance(value, bool):
        raise QueryValueRefused(attribute, str(value), "integer")
    return f"{attribute} > {value}"


def closed_since(when: datetime) -> str:
    """`CloseTime >= "<RFC 3339, UTC>"` for a timezone-aware datetime; the value is a datetime, never text."""
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise QueryValueRefused("CloseTime", str(when), "timezone-aware datetime")
    stamp = when.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return f'CloseTime >= "{stamp}"'
