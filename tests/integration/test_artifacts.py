"""Pipeline outputs shared between workers through a bucket: another worker's tree arrives whole, once."""

from __future__ import annotations

import io
import time
import tarfile
from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.artifacts.object_bucket import ObjectBucket
from tests.servers.s3_server import SeaweedS3
from tests.waiting import eventually_blocking


def shared(s3_server: SeaweedS3, bucket: str) -> ObjectBucket:
    return ObjectBucket(s3_server.client(), bucket, "ktx-artifacts/")


def test_a_tree_collected_on_one_worker_is_read_on_another(
    tmp_path: Path, s3_server: SeaweedS3, s3_bucket: str
) -> None:
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


def test_a_hostile_tarball_in_the_bucket_writes_nothing_outside_the_store(
    tmp_path: Path, s3_server: SeaweedS3, s3_bucket: str
) -> None:
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


def test_with_a_bucket_the_local_disk_is_a_cache_trimmed_by_last_use(
    tmp_path: Path, s3_server: SeaweedS3, s3_bucket: str
) -> None:
    store = ArtifactStore(tmp_path / "store", shared(s3_server, s3_bucket))
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "app.yaml").write_text("kind: ConfigMap\n")
    digest, _ = store.put_tree(tmp_path / "output")
    store.path(digest, "app.yaml")  # used now: a trim up to a minute ago keeps it
    assert store.trim_cache(older_than=time.time() - 60) == 0
    assert store.trim_cache(older_than=time.time() + 1) == 1 and not (tmp_path / "store" / digest).exists()
    assert store.path(digest, "app.yaml").read_text() == "kind: ConfigMap\n"  # downloaded again


def test_storing_a_tree_already_in_the_bucket_makes_it_young_there(
    tmp_path: Path, s3_server: SeaweedS3, s3_bucket: str
) -> None:
    bucket = shared(s3_server, s3_bucket)
    store = ArtifactStore(tmp_path / "store", bucket)
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "app.yaml").write_text("kind: ConfigMap\n")
    digest, _ = store.put_tree(tmp_path / "output")
    ((_, first),) = bucket.listing()
    # A sweep whose cutoff falls after the upload but before the same tree is stored again must keep it.
    # LastModified counts whole seconds: store again once the clock is in the next one.
    cutoff = first + 0.5
    eventually_blocking(time.time, lambda now: now >= first + 1, timeout=5, what=f"the wall clock past {first + 1}")
    store.put_tree(tmp_path / "output")
    ((_, refreshed),) = bucket.listing()
    assert refreshed >= first + 1
    assert store.sweep(set(), older_than=cutoff).removed == 0
    bucket.put(bucket.key("ktx-transfer-run-1.tar.gz"), b"someone else's")  # same prefix, not an artifact
    assert store.sweep(set(), older_than=refreshed + 1).removed == 1
    assert [key for key, _ in bucket.listing()] == [bucket.key("ktx-transfer-run-1.tar.gz")]
