"""The Bucket writer against a real S3 server (SeaweedFS): skip unchanged objects, remove stale keys, every filepath
mode, and Kratix's write-permission probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.stores.bucket_writer import BucketCredentials, BucketWriter
from activities.stores.secrets import SecretStore
from activities.stores.state_stores import CheckStateStoreInput, StateStoreActivities, StoreTarget, WriteStateStoreInput
from activities.stores.writes import GroupWrite, StoreChange
from domain.documents import BucketStateStoreSpec
from domain.layout import Slot
from tests.servers.s3_regional import RegionalBucket
from tests.servers.s3_server import READER, WRITER, objects


def writer(server, bucket: str, tmp: Path, keys: tuple[str, str] = WRITER, path: str = "") -> BucketWriter:  # type: ignore[no-untyped-def]
    return BucketWriter(server.endpoint, bucket, True, BucketCredentials(*keys), ArtifactStore(tmp / "artifacts"), path)


def group(slot: Slot, files: dict[str, str], message: str = "Update from: test") -> StoreChange:
    return StoreChange(message=message, root="platform", replace=[GroupWrite(slot=slot, inline=files)])


async def test_unchanged_objects_are_not_uploaded_again_and_stale_keys_go(
    s3_server, s3_bucket: str, tmp_path: Path
) -> None:
    w = writer(s3_server, s3_bucket, tmp_path)
    slot = Slot(path="dev/resources/default/app/one/p/5058f")
    first = await w.write(group(slot, {"a.yaml": "a: 1\n", "b.yaml": "b: 1\n", "c.yaml": "c: 1\n"}))
    assert (first.uploaded, first.deleted, first.error) == (3, 0, None)
    again = await w.write(group(slot, {"a.yaml": "a: 1\n", "b.yaml": "b: 1\n", "c.yaml": "c: 1\n"}))
    assert (again.uploaded, again.deleted, again.changed) == (0, 0, False)
    update = await w.write(group(slot, {"a.yaml": "a: 1\n", "b.yaml": "b: 2\n"}))
    assert (update.uploaded, update.deleted) == (1, 1)
    stored = objects(s3_server.client(), s3_bucket)
    assert stored == {f"platform/{slot.path}/a.yaml": b"a: 1\n", f"platform/{slot.path}/b.yaml": b"b: 2\n"}


async def test_flat_and_aggregated_modes_compose_groups_in_one_bucket(
    s3_server, s3_bucket: str, tmp_path: Path
) -> None:
    w = writer(s3_server, s3_bucket, tmp_path)
    flat_one = Slot(mode="none", path="flat", key="flat/.kratix/default-one.yaml")
    flat_two = Slot(mode="none", path="flat", key="flat/.kratix/default-two.yaml")
    agg_one = Slot(mode="aggregatedYAML", path="agg/aggregated.yaml", key="work-one.agg-5058f")
    agg_two = Slot(mode="aggregatedYAML", path="agg/aggregated.yaml", key="work-two.agg-5058f")
    await w.write(
        StoreChange(
            message="m",
            replace=[
                GroupWrite(slot=flat_one, inline={"one.yaml": "one: 1\n", "shared/x.yaml": "x: 1\n"}),
                GroupWrite(slot=flat_two, inline={"two.yaml": "two: 1\n"}),
                GroupWrite(slot=agg_one, inline={"cm.yaml": "kind: ConfigMap\nname: one\n"}),
                GroupWrite(slot=agg_two, inline={"cm.yaml": "kind: ConfigMap\nname: two\n"}),
            ],
        )
    )
    await w.write(
        StoreChange(message="m", replace=[GroupWrite(slot=flat_one, inline={"one.yaml": "one: 2\n"})], remove=[agg_one])
    )
    stored = objects(s3_server.client(), s3_bucket)
    assert stored["flat/one.yaml"] == b"one: 2\n" and "flat/shared/x.yaml" not in stored
    assert stored["flat/two.yaml"] == b"two: 1\n"
    assert stored["flat/.kratix/default-one.yaml"] == b"files:\n- flat/one.yaml\n"
    aggregate = stored["agg/aggregated.yaml"].decode()
    assert "name: two" in aggregate and "name: one" not in aggregate
    await w.write(StoreChange(message="m", remove=[agg_two, flat_one, flat_two]))
    assert sorted(objects(s3_server.client(), s3_bucket)) == []


async def test_the_permission_probe_tells_a_read_only_identity_apart(s3_server, s3_bucket: str, tmp_path: Path) -> None:
    writer(s3_server, s3_bucket, tmp_path, WRITER, "platform").check_permissions()
    with pytest.raises(PermissionError, match="AccessDenied"):
        writer(s3_server, s3_bucket, tmp_path, READER, "platform").check_permissions()
    assert objects(s3_server.client(), s3_bucket) == {}  # the probe leaves nothing behind


@pytest.fixture
def ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """boto3's default chain with nothing found but what a test puts in the environment: no profile files, no
    instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    return monkeypatch


async def test_iam_stores_write_with_the_ambient_credentials(
    s3_server, s3_bucket: str, tmp_path: Path, ambient_aws
) -> None:
    stores = StateStoreActivities(ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache", SecretStore(tmp_path))
    spec = BucketStateStoreSpec(endpoint=s3_server.endpoint, bucket_name=s3_bucket, insecure=True, auth_method="IAM")
    store = StoreTarget(kind="BucketStateStore", name="iam", bucket=spec)
    write = WriteStateStoreInput(
        store=store, message="m", replace=[GroupWrite(slot=Slot(path="d/a"), inline={"a.yaml": "a: 1\n"})]
    )
    nothing = await stores.write_state_store(write)
    assert "Unable to locate credentials" in (nothing.error or "")
    ambient_aws.setenv("AWS_ACCESS_KEY_ID", READER[0])
    ambient_aws.setenv("AWS_SECRET_ACCESS_KEY", READER[1])
    stores = StateStoreActivities(ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache2", SecretStore(tmp_path))
    readiness = await stores.check_state_store(CheckStateStoreInput(store=store))
    assert (readiness.ready, readiness.reason) == (False, "ErrorValidatingPermissions")  # the reader's identity
    ambient_aws.setenv("AWS_ACCESS_KEY_ID", WRITER[0])
    ambient_aws.setenv("AWS_SECRET_ACCESS_KEY", WRITER[1])
    stores = StateStoreActivities(ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache3", SecretStore(tmp_path))
    assert (await stores.check_state_store(CheckStateStoreInput(store=store))).ready
    outcome = await stores.write_state_store(write)
    assert outcome.error is None and outcome.changed
    assert objects(s3_server.client(), s3_bucket) == {"d/a/a.yaml": b"a: 1\n"}
    # Signed for the bucket's own answer, over the worker's region, as Kratix's client does: SeaweedFS reports every
    # bucket in us-east-1 (an empty LocationConstraint), whatever the bucket was created with.
    assert stores.writer(store).client.meta.region_name == "us-east-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("refuse_location", [False, True])
def test_requests_are_signed_for_the_region_the_bucket_names(
    tmp_path: Path, refuse_location: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Kratix's minio-go client: no region configured, the bucket is asked where it is (signed for us-east-1),
    and every request after is signed for its answer, over the worker's own AWS region. A bucket elsewhere refuses a
    request signed for another region, so the write-permission probe passes only when the lookup was made."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    with RegionalBucket("fleet", "eu-central-1", refuse_location=refuse_location) as bucket:
        w = BucketWriter(
            bucket.endpoint, "fleet", True, BucketCredentials(*WRITER), ArtifactStore(tmp_path / "artifacts")
        )
        w.check_permissions()
        assert w.client.meta.region_name == "eu-central-1"
        assert bucket.signed_for == ["us-east-1", "eu-central-1", "eu-central-1"]
        # Asked once: the answer is kept.
        w.check_permissions()
        assert bucket.signed_for[3:] == ["eu-central-1", "eu-central-1"]


def test_without_an_answer_the_workers_region_is_used_and_the_bucket_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    with RegionalBucket("fleet", "eu-central-1") as bucket:
        w = BucketWriter(
            bucket.endpoint, "elsewhere", True, BucketCredentials(*WRITER), ArtifactStore(tmp_path / "artifacts")
        )
        assert w.client.meta.region_name == "eu-central-1"  # NoSuchBucket is no answer: the worker's region
        assert w.client.meta.region_name == "eu-central-1"
        assert bucket.signed_for == ["us-east-1", "us-east-1"]  # asked each time, until it answers
