"""The object store pipeline Pods exchange data through: object.yaml in, a tarball of output/ and metadata/ out.

Pods get presigned URLs for exactly their two objects, never credentials, and nothing goes through the API server
or the platform's own filesystem, so outputs of any size work across any number of workers.
"""

from __future__ import annotations

from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Long enough for a Pod that waits for a node, pulls a large image and runs a slow pipeline; the activity's own
# timeout (an hour by default) ends the run earlier.
URL_LIFETIME_S = 6 * 3600


class TransferBucket:
    def __init__(self, client: object, bucket: str, prefix: str = "ktx-transfer/"):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def connect(cls, bucket: str, endpoint: str | None, prefix: str) -> "TransferBucket":
        """Credentials from boto3's usual chain (AWS_* variables, a web identity, an instance role)."""
        client = boto3.client("s3", endpoint_url=endpoint,
                              config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return cls(client, bucket, prefix)

    def keys(self, job: str) -> tuple[str, str]:
        return f"{self.prefix}{job}/object.yaml", f"{self.prefix}{job}/result.tar.gz"

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)  # type: ignore[attr-defined]

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
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def remove(self, *keys: str) -> None:
        self.client.delete_objects(  # type: ignore[attr-defined]
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
