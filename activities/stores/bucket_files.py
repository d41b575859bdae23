"""The files of one placement as a Bucket state store holds them now, read from the bucket itself (ktx keeps no copy of
what it uploaded), bounded as a Git placement's are (committed_files.bounded).

Only the keys the placement itself wrote are read, whatever its filepath mode: its own directory (nestedByMetadata),
the files its `.kratix/` state file lists (none: the Destination's directory holds every placement's files), or its
own blocks of the Destination's one file (aggregatedYAML: the file holds every placement's documents). A key comes
from the placement's slot and the store's path, never from the request, and is only ever an S3 key, never a path."""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from activities.stores.committed_files import CONTENTS_MAX_BYTES, FILE_MAX_BYTES, CommittedFiles, NotHeld, bounded
from domain.layout import Slot, aggregate_index_path, join, ledger_files, parse_aggregate

# A page waits on these reads: a bounded wait and one retry, so an unreachable bucket costs seconds, not minutes.
READ_CONFIG = Config(
    s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10
)
# A listing past this many keys is not a placement's directory of manifests: counted up to here, not further.
LIST_MAX = 10_000


def placed_objects(client: Any, bucket: str, root: str, slot: Slot) -> CommittedFiles:
    """The objects the placement in `slot` wrote under the store's path `root`, named by their keys."""
    try:
        if slot.mode == "aggregatedYAML":
            return _own_blocks(client, bucket, join(root, slot.path), join(root, aggregate_index_path(slot.path)), slot)
        if slot.mode == "none":
            ledger = _get(client, bucket, join(root, slot.key), CONTENTS_MAX_BYTES)
            keys = [join(root, f) for f in ledger_files(ledger, slot.path)]
            return bounded([(key, *_sized(client, bucket, key)) for key in sorted(keys)])
        return bounded(_listed(client, bucket, join(root, slot.path) + "/"))
    except (ClientError, BotoCoreError) as exc:
        raise NotHeld(f"bucket {bucket}: {exc}") from None


def _listed(client: Any, bucket: str, prefix: str) -> list[tuple[str, int, Any]]:
    found: list[tuple[str, int, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            found.append((key, int(item["Size"]), lambda key=key: _get(client, bucket, key, FILE_MAX_BYTES) or b""))
        if len(found) >= LIST_MAX:
            break
    return sorted(found, key=lambda entry: entry[0])


def _sized(client: Any, bucket: str, key: str) -> tuple[int, Any]:
    size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    return size, lambda: _get(client, bucket, key, FILE_MAX_BYTES) or b""


def _own_blocks(client: Any, bucket: str, key: str, index_key: str, slot: Slot) -> CommittedFiles:
    """This WorkPlacement's documents of the Destination's aggregate file, each named by the file it came from; the
    file is read only when it fits one answer's bound (over it, only its size is said)."""
    size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    if size > CONTENTS_MAX_BYTES:
        return bounded([(key, size, lambda: b"")])  # over FILE_MAX_BYTES too: listed, never read
    blocks = parse_aggregate(_get(client, bucket, key, size), _get(client, bucket, index_key, CONTENTS_MAX_BYTES))
    own = sorted((path, text) for (owner, path), text in blocks.items() if owner == slot.key)
    return bounded([(f"{key}#{path}", len(text), lambda text=text: text) for path, text in own])


def _get(client: Any, bucket: str, key: str, most: int) -> bytes | None:
    """At most `most` bytes of the object (None if there is none): one more than a bound is enough to see it is over,
    and an object replaced with a larger one since it was listed is never read whole."""
    try:
        response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max(most, 0)}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "InvalidRange"):
            return None
        raise
    return response["Body"].read(most + 1)
