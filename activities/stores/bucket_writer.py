"""The Bucket (S3) state-store writer: unchanged objects are not re-uploaded, stale keys under a group are removed.

Changes are staged per batch, then uploaded in parallel; a read during the batch sees the staged state, so
aggregated files and `.kratix` state files compose correctly when several groups of one batch touch them.
"""

from __future__ import annotations

import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from activities.artifacts.store import ArtifactStore
from activities.stores.writes import Content, StoreChange, apply_change, loaded
from activities.stores.write_batcher import BatchingWriter, Pacing, WriteOutcome
from domain.layout import join

PERMISSION_CHECK_KEY = ".kratix-write-permission-check"
_PARALLEL_UPLOADS = 16
DEFAULT_REGION = "us-east-1"  # what S3-compatible servers (MinIO, SeaweedFS) answer to unless set up otherwise
# Amazon S3's regional endpoints, as AWS lists them: s3.<region>, s3-<region> (legacy), s3.dualstack.<region>,
# s3-fips.<region>, with or without the bucket in front, under amazonaws.com or amazonaws.com.cn.
_AWS_ENDPOINT = re.compile(
    r"(?:[^/]*\.)?s3(?:-fips)?[.-](?:dualstack\.)?(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9])"
    r"\.amazonaws\.com(?:\.cn)?"
)


# A region name as S3 returns one (`eu-west-1`, `us-gov-west-1`, a MinIO server's own): short, lowercase, no dots.
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# The location request is one small round trip: a bounded wait, one retry, so an unreachable endpoint costs seconds.
LOCATION_CONFIG = Config(
    s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10
)


@dataclass
class BucketCredentials:
    access_key_id: str
    secret_access_key: str


class StagedBucket:
    def __init__(self, client: Any, bucket: str):
        self.client = client
        self.bucket = bucket
        self.staged: dict[str, Content | None] = {}
        self.digests: dict[str, str] = {}  # MD5 of each staged content, once computed
        self.etags: dict[str, str] = {}
        self.listed: dict[str, list[str]] = {}
        # Objects read in this batch: a `none` Destination's delete reads every state file beside its own.
        self.fetched: dict[str, bytes | None] = {}

    def prefetch(self, directories: list[str]) -> None:
        """List every group directory of a batch in parallel, instead of one round trip after another."""

        def listing(prefix: str) -> tuple[str, list[tuple[str, str]]]:
            found = []
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found += [(item["Key"], item["ETag"].strip('"')) for item in page.get("Contents", [])]
            return prefix, found

        prefixes = sorted({d.rstrip("/") + "/" for d in directories} - set(self.listed))
        with ThreadPoolExecutor(_PARALLEL_UPLOADS) as pool:
            for prefix, found in pool.map(listing, prefixes):
                self.listed[prefix] = [key for key, _ in found]
                self.etags.update(found)

    def read(self, path: str) -> bytes | None:
        if path in self.staged:
            staged = self.staged[path]
            return None if staged is None else loaded(staged)
        if path not in self.fetched:
            self.fetched[path] = self._get(path)
        return self.fetched[path]

    def _get(self, path: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=path)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        self.etags[path] = response["ETag"].strip('"')
        return response["Body"].read()

    def write(self, path: str, content: Content) -> None:
        self.staged[path] = content

    def delete(self, path: str) -> None:
        self.staged[path] = None

    def delete_dir(self, path: str) -> None:
        prefix = path.rstrip("/") + "/"
        for key in [k for k in self.staged if k.startswith(prefix)]:
            self.staged[key] = None
        self.prefetch([prefix])
        for key in self.listed[prefix]:
            self.staged.setdefault(key, None)

    def list(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        self.prefetch([prefix])
        found = {k for k in self.listed[prefix] if self.staged.get(k, b"") is not None}
        found |= {k for k, v in self.staged.items() if k.startswith(prefix) and v is not None}
        return sorted(k for k in found if "/" not in k[len(prefix) :])

    def _prefixes_of(self, key: str) -> list[str]:
        parts = key.split("/")[:-1]
        return [p for p in ("/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)) if p in self.listed]

    def commit(self) -> tuple[list[str], list[str]]:
        """Upload what differs, delete what is gone; returns (uploaded keys, deleted keys)."""
        self.digests = {k: _md5(v) for k, v in self.staged.items() if v is not None}
        uploads = {k: self.staged[k] for k, digest in self.digests.items() if self._etag(k) != digest}
        deletes = [k for k, v in self.staged.items() if v is None and self._etag(k) is not None]
        with ThreadPoolExecutor(_PARALLEL_UPLOADS) as pool:
            list(pool.map(lambda item: self._put(*item), uploads.items()))
        for start in range(0, len(deletes), 1000):
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in deletes[start : start + 1000]], "Quiet": True},
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise RuntimeError(f"could not delete {first.get('Key')}: {first.get('Message')}")
        return sorted(uploads), deletes

    def _put(self, key: str, content: Content | None) -> None:
        if isinstance(content, Path):
            with content.open("rb") as body:  # streamed: an output file may be hundreds of MB
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        else:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=content)

    def _etag(self, key: str) -> str | None:
        if key not in self.etags and any(key.startswith(prefix) for prefix in self._prefixes_of(key)):
            return None  # its directory was listed without it: it does not exist, no need to ask
        if key not in self.etags:
            try:
                self.etags[key] = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
            except ClientError:
                return None
        return self.etags[key]


def _md5(content: Content) -> str:
    """As S3's ETag of a single-part upload; a file is read a chunk at a time."""
    if not isinstance(content, Path):
        return hashlib.md5(content).hexdigest()
    digest = hashlib.md5()
    with content.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class BucketClient:
    """An S3 client for one bucket, signing for the bucket's region (bucket_region), with the store's access keys or,
    without them, the ambient credentials: the writer's, and the API's when it reads a placement's objects."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        insecure: bool,
        credentials: BucketCredentials | None,
        use_dual_stack: bool = False,
        config: Config | None = None,
    ):
        self.bucket = bucket
        scheme = "http" if insecure else "https"
        self.endpoint_url = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
        self.keys = (
            {"aws_access_key_id": credentials.access_key_id, "aws_secret_access_key": credentials.secret_access_key}
            if credentials
            else {}
        )
        self.config = config or Config(
            s3={"addressing_style": "path", "use_dualstack_endpoint": use_dual_stack},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=_PARALLEL_UPLOADS * 2,
        )
        # IAM: no keys given, so boto3 takes the ambient credentials (environment, profile, IRSA, instance role). A
        # session of its own, not boto3's process-wide one, which keeps the first credentials it ever found.
        self.session = boto3.session.Session()
        self._client: Any = None
        self._region_known = False
        self._connecting = threading.Lock()  # a batch's uploads run in threads; one lookup, one client

    @property
    def client(self) -> Any:
        """Until the bucket has answered where it is, each use asks again, as minio-go caches only a location it was
        told."""
        with self._connecting:
            return self._located_client()

    def _located_client(self) -> Any:
        if self._client is None or not self._region_known:
            located = None
            if endpoint_region(self.endpoint_url) is None:
                # minio-go signs its location request for us-east-1, which every S3 answers it for.
                located = bucket_location(self._connect(DEFAULT_REGION, LOCATION_CONFIG), self.bucket)
            self._region_known = endpoint_region(self.endpoint_url) is not None or located is not None
            self._client = self._connect(bucket_region(self.endpoint_url, located, self.session.region_name))
        return self._client

    def _connect(self, region: str, config: Config | None = None) -> Any:
        return self.session.client(
            "s3", endpoint_url=self.endpoint_url, region_name=region, config=config or self.config, **self.keys
        )


class BucketWriter(BatchingWriter):
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        insecure: bool,
        credentials: BucketCredentials | None,
        artifacts: ArtifactStore,
        path: str = "",
        use_dual_stack: bool = False,
        pacing: Pacing = Pacing(),
    ):
        super().__init__(pacing)
        self.bucket = bucket
        self.path = path
        self.artifacts = artifacts
        self.connection = BucketClient(endpoint, bucket, insecure, credentials, use_dual_stack)

    @property
    def client(self) -> Any:
        return self.connection.client

    def _commit_batch(self, changes: list[StoreChange]) -> WriteOutcome:
        staged = StagedBucket(self.client, self.bucket)
        try:
            staged.prefetch(
                [
                    join(c.root, s.path)
                    for c in changes
                    for s in [*c.remove, *(w.slot for w in c.replace)]
                    if s.mode == "nestedByMetadata"
                ]
            )
            for change in changes:
                apply_change(staged, change, self.artifacts)
            uploaded, deleted = staged.commit()
        except (ClientError, BotoCoreError) as exc:
            return WriteOutcome(version_id="", changed=False, error=f"bucket {self.bucket}: {exc}")
        # Kratix's version id for buckets is a hash chain over what was uploaded.
        digest = hashlib.sha256()
        for key in uploaded:
            digest.update(f"{key}\0{staged.digests[key]}\n".encode())
        changed = bool(uploaded or deleted)
        return WriteOutcome(
            version_id=digest.hexdigest() if changed else "",
            changed=changed,
            uploaded=len(uploaded),
            deleted=len(deleted),
        )

    def check_permissions(self) -> None:
        """Kratix's probe: start and abort a multipart upload, which needs write permission and leaves nothing
        behind."""
        key = f"{self.path.strip('/')}/{PERMISSION_CHECK_KEY}".lstrip("/")
        try:
            client = self.client
            upload = client.create_multipart_upload(Bucket=self.bucket, Key=key)
            client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
        except (ClientError, BotoCoreError) as exc:
            raise PermissionError(f"cannot write to bucket {self.bucket}: {exc}") from exc


def endpoint_region(endpoint_url: str) -> str | None:
    """The region an Amazon S3 regional endpoint names (minio-go's GetRegionFromURL), else None."""
    host = endpoint_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    match = _AWS_ENDPOINT.fullmatch(host)
    return match.group("region") if match else None


def bucket_location(client: Any, bucket: str) -> str | None:
    """Where the bucket says it is, as minio-go's getBucketLocation reads it: an empty LocationConstraint is
    us-east-1 and `EU` is eu-west-1; a refusal that names a region (AccessDenied, AuthorizationHeaderMalformed,
    InvalidRegion) is that region, or us-east-1 if it names none. None when there is no answer (unreachable, no
    credentials, no such bucket, a location that is no region name): the caller falls back and asks again later."""
    try:
        answer = client.get_bucket_location(Bucket=bucket)
        location = answer.get("LocationConstraint") or DEFAULT_REGION
    except ClientError as exc:
        error = exc.response.get("Error") or {}
        if error.get("Code") not in ("AccessDenied", "AuthorizationHeaderMalformed", "InvalidRegion"):
            return None
        headers = (exc.response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        location = error.get("Region") or headers.get("x-amz-bucket-region") or DEFAULT_REGION
    except BotoCoreError:
        return None
    location = "eu-west-1" if location == "EU" else location
    # From the server, so checked before it is a signing scope and a host name part.
    return location if isinstance(location, str) and _REGION.fullmatch(location) else None


def bucket_region(endpoint_url: str, located: str | None, ambient: str | None) -> str:
    """The region requests are signed for, as Kratix's S3 client (minio-go, no region set) finds it: an Amazon S3
    regional endpoint's, else the bucket's own answer (`located`); when the bucket gave none, the worker's AWS
    setting (AWS_REGION, AWS_DEFAULT_REGION or its profile), else us-east-1."""
    return endpoint_region(endpoint_url) or located or ambient or DEFAULT_REGION
