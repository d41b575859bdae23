"""Kubernetes Secret documents, as `ktx apply` and `ktx create secret` accept them for state-store credentials."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from domain.errors import FieldError, InvalidDocument
from domain.names import NAME_PATTERN, SUBDOMAIN_MAX
from domain.validation import object_at, validate_name, validate_namespace

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass
class SecretDocument:
    name: str
    namespace: str
    type: str
    data: dict[str, bytes]

    def __repr__(self) -> str:  # never print values, even by accident
        return f"SecretDocument({self.namespace}/{self.name}, keys={sorted(self.data)})"


def parse_secret(document: dict[str, Any]) -> SecretDocument:
    """`data` is base64, `stringData` plain text and wins on a clash, as in Kubernetes."""
    errors: list[FieldError] = []
    metadata = object_at(document, "metadata")
    name = metadata.get("name")
    errors += validate_name("metadata.name", name, max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN)
    namespace = metadata.get("namespace") or "default"
    errors += validate_namespace(namespace)
    data: dict[str, bytes] = {}
    for field, decode in (("data", _from_base64), ("stringData", lambda v: str(v).encode())):
        values = document.get(field) or {}
        if not isinstance(values, dict):
            errors.append(FieldError(field, "must be a map of keys to values"))
            continue
        for key, value in values.items():
            if not _KEY.match(str(key)):
                errors.append(FieldError(f"{field}.{key}", "keys may contain only letters, digits, '-', '_' and '.'"))
                continue
            try:
                data[str(key)] = decode(value)
            except ValueError:
                errors.append(FieldError(f"{field}.{key}", "is not valid base64"))
    if errors:
        raise InvalidDocument(errors)
    return SecretDocument(name=name, namespace=namespace, type=str(document.get("type") or "Opaque"), data=data)


def _from_base64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc
