"""Turn YAML/JSON text into documents, and platform documents into typed models with field-level errors."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from domain.documents import PLATFORM_KINDS, KRATIX_API_VERSION, KubeModel
from domain.errors import InvalidDocument, errors_from_pydantic
from domain.validation import validate_name, NAME_PATTERN


class MalformedInput(ValueError):
    """The text is not YAML/JSON, or a document is not a mapping with apiVersion and kind."""


def load_documents(text: str) -> list[dict[str, Any]]:
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise MalformedInput(f"malformed YAML: {exc}") from exc
    documents: list[dict[str, Any]] = []
    for index, doc in enumerate(loaded):
        if not isinstance(doc, dict):
            raise MalformedInput(f"document {index}: expected a mapping, got {type(doc).__name__}")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            documents.extend(doc["items"])
            continue
        documents.append(doc)
    for index, doc in enumerate(documents):
        missing = [f for f in ("apiVersion", "kind") if not doc.get(f)]
        if missing:
            raise MalformedInput(f"document {index}: missing {', '.join(missing)}")
    return documents


def is_platform_document(doc: dict[str, Any]) -> bool:
    return doc.get("apiVersion") == KRATIX_API_VERSION and doc.get("kind") in PLATFORM_KINDS


def parse_platform_document(doc: dict[str, Any]) -> KubeModel:
    model = PLATFORM_KINDS[doc["kind"]]
    body = {k: v for k, v in doc.items() if k != "status"}
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        raise InvalidDocument(errors_from_pydantic(exc)) from exc
    name_errors = validate_name("metadata.name", parsed.metadata.name, max_length=63, pattern=NAME_PATTERN)  # type: ignore[attr-defined]
    if name_errors:
        raise InvalidDocument(name_errors)
    return parsed
