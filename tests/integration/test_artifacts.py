"""Pipeline outputs shared between workers through a bucket: another worker's tree arrives whole, once."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from activities.artifacts import ArtifactStore
from activities.object_bucket import ObjectBucket
from tests.servers.s3_server import SeaweedS3


def shared(s3_server: SeaweedS3, bucket: str) -> ObjectBucket:
    return ObjectBucket(s3_server.client(), bucket, "ktx-artifacts/")


def test_a_tree_collected_on_one_worker_is_read_on_another(tmp_path: Path, s3_server: SeaweedS3, s3_bucket: str) -> None:
    output = tmp_path / "output"
    (output / "nested").mkdir(parents=True)
    (output / "app.yaml").write_text("kind: ConfigMap\n")
    (output / "nested" / "big.yaml").write_bytes(b"x" * 3_000_000)
    first = ArtifactStore(tmp_path / "first", shared(s3_server, s3_bucket))
    digest, files = first.put_tree(output)
    assert files == ["app.yaml", "nested/big.yaml"]
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == [f"ktx-artifacts/{digest}.tar"]
    first.put_tree(output)  # the same tree again: nothing new is uploaded
    assert len(s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]) == 1

    second = ArtifactStore(tmp_path / "second", shared(s3_server, s3_bucket))
    assert second.path(digest, "nested/big.yaml").read_bytes() == b"x" * 3_000_000
    assert second.path(digest, "app.yaml").read_text() == "kind: ConfigMap\n"
    assert sorted(p.name for p in (tmp_path / "second").iterdir()) == [digest]  # no staging left behind


def test_a_tree_nobody_uploaded_is_a_clear_error(tmp_path: Path, s3_server: SeaweedS3, s3_bucket: str) -> None:
    store = ArtifactStore(tmp_path / "store", shared(s3_server, s3_bucket))
    with pytest.raises(FileNotFoundError, match="neither on this worker nor in the shared bucket"):
        store.path("0" * 64, "app.yaml")


def test_a_hostile_tarball_in_the_bucket_writes_nothing_outside_the_store(tmp_path: Path, s3_server: SeaweedS3,
                                                                          s3_bucket: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("../../escaped.yaml")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"evil"))
    digest = "1" * 64
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"ktx-artifacts/{digest}.tar", Body=buffer.getvalue())
    store = ArtifactStore(tmp_path / "deep" / "store", shared(s3_server, s3_bucket))
    with pytest.raises(tarfile.TarError):
        store.path(digest, "escaped.yaml")
    assert not list(tmp_path.rglob("escaped.yaml"))
