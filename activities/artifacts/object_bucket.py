"""An S3 bucket under a key prefix: what pipeline Pods exchange data through (presigned URLs for exactly their two
objects, never credentials) and where workers share pipeline outputs, so outputs of any size work across any number of
workers without going through the API server, Temporal payloads or one worker's disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Long enough for a Pod that waits for a node, pulls a large image and runs a slow pipeline; the activity's own
# timeout (an hour by default) ends the run earlier.
URL_LIFETIME_S = 6 * 3600


class ObjectBucket:
    def __init__(self, client: object, bucket: str, prefix: str):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def connect(cls, bucket: str, endpoint: str | None, prefix: str) -> "ObjectBucket":
        """Credentials from boto3's usual chain (AWS_* variables, a web identity, an instance role)."""
        client = boto3.client(
            "s3", endpoint_url=endpoint, config=Config(signature_version="s3v4", s3={"addressing_style": "path"})
        )
        return cls(client, bucket, prefix)

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)  # type: ignore[attr-defined]

    def upload(self, key: str, source: Path) -> None:
        """Streams from disk (multipart for large files)."""
        self.client.upload_file(str(source), self.bucket, key)  # type: ignore[attr-defined]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)  # type: ignore[attr-defined]
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def url(self, method: str, key: str) -> str:
        operation = {"GET": "get_object", "PUT": "put_object"}[method]
        return self.client.generate_presigned_url(  # type: ignore[attr-defined,no-any-return]
            operation, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=URL_LIFETIME_S
        )

    def fetch(self, key: str, target: Path) -> bool:
        """Streams to disk; False when the object is not there."""
        try:
            self.client.download_file(self.bucket, key, str(target))  # type: ignore[attr-defined]
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def refresh(self, key: str) -> None:
        """Makes the object's LastModified now, by copying it onto itself (server-side; the bytes do not travel)."""
        self.client.copy_object(  # type: ignore[attr-defined]
            Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key}, MetadataDirective="REPLACE"
        )

    def listing(self) -> Iterator[tuple[str, float]]:
        """(key, LastModified as epoch seconds) of every object under the prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)  # type: ignore[attr-defined]
        for page in pages:
            for entry in page.get("Contents", []):
                yield entry["Key"], entry["LastModified"].timestamp()

    def remove(self, *keys: str) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self.client.delete_objects(  # type: ignore[attr-defined]
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True}
            )


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
