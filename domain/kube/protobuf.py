"""Kubernetes' protobuf encoding, read only as far as a schema asks: kubectl sends built-in kinds (reviews, Secrets)
as `application/vnd.kubernetes.protobuf` whatever the server's discovery says, and answers in JSON are fine for it.

A body is the magic `k8s\\0` and a runtime.Unknown (apimachinery runtime/generated.proto: typeMeta 1, raw 2,
contentEncoding 3, contentType 4) whose `raw` is the object's message. A schema maps a field number to its JSON name
and either a nested schema, `STRING` or `BYTES`; fields it does not name are skipped, so only what is read is decoded.
"""

from __future__ import annotations

from typing import Any, Iterator, Union

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
STRING, BYTES = "string", "bytes"
# map<string, string> and map<string, bytes>: repeated entries (key 1, value 2), gathered into one JSON object.
MAP_STRING, MAP_BYTES = "map<string,string>", "map<string,bytes>"
Schema = dict[int, tuple[str, Union["Schema", str]]]

TYPE_META: Schema = {1: ("apiVersion", STRING), 2: ("kind", STRING)}
UNKNOWN: Schema = {1: ("typeMeta", TYPE_META), 2: ("raw", BYTES)}

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):  # a varint is at most 10 bytes
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ProtobufError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ProtobufError("a field runs past the end of the message")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(data):
                raise ProtobufError("truncated fixed-width field")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def decode(data: bytes, schema: Schema) -> dict[str, Any]:
    """The fields `schema` names, as the JSON form of the message has them (the last one wins, as in protobuf)."""
    found: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if wire != _LENGTH:
            raise ProtobufError(f"field {name} is not length-delimited")
        if kind in (MAP_STRING, MAP_BYTES):
            entry = decode(value, {1: ("key", STRING), 2: ("value", BYTES if kind == MAP_BYTES else STRING)})
            found.setdefault(name, {})[entry.get("key", "")] = entry.get("value", b"" if kind == MAP_BYTES else "")
        elif kind == BYTES:
            found[name] = value
        elif kind == STRING:
            try:
                found[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtobufError(f"field {name} is not UTF-8") from None
        else:
            found[name] = decode(value, kind)  # type: ignore[arg-type]
    return found


OBJECT_META: Schema = {
    1: ("name", STRING),
    2: ("generateName", STRING),
    3: ("namespace", STRING),
    11: ("labels", MAP_STRING),
    12: ("annotations", MAP_STRING),
}
# k8s.io/api/core/v1 Secret, which `kubectl create secret` posts in protobuf.
SECRET: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("data", MAP_BYTES),
    3: ("type", STRING),
    4: ("stringData", MAP_STRING),
}


def decode_object(body: bytes, schema: Schema) -> dict[str, Any]:
    """An object sent as Kubernetes protobuf: its apiVersion and kind from the envelope, its fields by `schema`."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf message (no k8s\\0 prefix)")
    envelope = decode(body[len(MAGIC) :], UNKNOWN)
    return {**envelope.get("typeMeta", {}), **decode(envelope.get("raw", b""), schema)}
