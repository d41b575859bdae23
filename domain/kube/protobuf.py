"""Kubernetes' protobuf encoding, read for the bodies kubectl sends in it: `kubectl create secret` posts a v1
Secret and `kubectl auth can-i` its reviews as `application/vnd.kubernetes.protobuf` (typed clients prefer protobuf
for built-in kinds), and does not fall back to JSON when refused.

The envelope is the magic `k8s\\0` then a runtime.Unknown (typeMeta 1, raw 2, contentEncoding 3, contentType 4);
`raw` is the Secret message (k8s.io/api/core/v1/generated.proto): metadata 1, data 2 (map<string, bytes>), type 3,
stringData 4, immutable 5; ObjectMeta: name 1, generateName 2, namespace 3, labels 11, annotations 12. Other
fields are skipped. Decoding is pure and bounded by the body it reads: no recursion beyond these fixed levels.
"""

from __future__ import annotations

import base64
from typing import Any, Union

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtobufError("truncated or overlong varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited fields."""
    found, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise ProtobufError("a field runs past the end of the message")
            value, at = data[at : at + length], at + length
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if at > len(data):
            raise ProtobufError("truncated message")
        found.append((number, value))
    return found


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string field")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError("a string field is not UTF-8") from exc


def _entry(value: Any) -> tuple[str, bytes]:
    pairs = dict(fields(value)) if isinstance(value, bytes) else {}
    key, item = pairs.get(1, b""), pairs.get(2, b"")
    return _text(key), item if isinstance(item, bytes) else b""


def _metadata(data: bytes) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for number, value in fields(data):
        if number in names:
            metadata[names[number]] = _text(value)
        elif number in (11, 12):
            key, item = _entry(value)
            metadata.setdefault("labels" if number == 11 else "annotations", {})[key] = _text(item)
    return metadata


def decode_secret(body: bytes) -> dict[str, Any]:
    """The Secret a protobuf body holds, as the JSON document kubectl would have sent."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf message (no k8s\\0 prefix)")
    envelope = dict(fields(body[len(MAGIC) :]))
    type_meta = dict(fields(envelope.get(1, b"")))
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    if (api_version, kind) != ("v1", "Secret"):
        raise ProtobufError(f"only v1 Secret is read as protobuf, not {api_version} {kind}")
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret"}
    for number, value in fields(envelope.get(2, b"")):
        if number == 1:
            doc["metadata"] = _metadata(value)
        elif number in (2, 4):
            key, item = _entry(value)
            if number == 2:
                doc.setdefault("data", {})[key] = base64.b64encode(item).decode()
            else:
                doc.setdefault("stringData", {})[key] = _text(item)
        elif number == 3:
            doc["type"] = _text(value)
        elif number == 5:
            doc["immutable"] = bool(value)
    return doc


# A message's fields by number: the JSON name and a nested schema, or STRING. Fields it does not name are skipped.
STRING = "string"
Schema = dict[int, tuple[str, Union["Schema", str]]]


def decode(data: bytes, schema: Schema) -> dict[str, Any]:
    """The fields `schema` names, as the JSON form of the message has them (the last one wins, as in protobuf)."""
    found: dict[str, Any] = {}
    for number, value in fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if not isinstance(value, bytes):
            raise ProtobufError(f"field {name} is not length-delimited")
        found[name] = _text(value) if kind == STRING else decode(value, kind)  # type: ignore[arg-type]
    return found


def decode_object(body: bytes, schema: Schema) -> dict[str, Any]:
    """An object of a kind whose fields `schema` describes, with the apiVersion and kind its envelope names."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf message (no k8s\\0 prefix)")
    envelope = dict(fields(body[len(MAGIC) :]))
    type_meta = dict(fields(envelope.get(1, b"")))
    head = {"apiVersion": _text(type_meta.get(1, b"")), "kind": _text(type_meta.get(2, b""))}
    return {**head, **decode(envelope.get(2, b""), schema)}
