"""What a pipeline container may reach on the worker's host: the podman flags, and what collecting its output reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.artifacts.output_files import UnfollowedLink
from activities.pipelines.podman_runner import Isolation, checks_image_user, is_root_user, isolation_args


def test_every_container_loses_privilege_escalation_and_nothing_else_by_default() -> None:
    assert isolation_args(Isolation(), None) == ["--security-opt=no-new-privileges"]


def test_the_platform_can_take_the_network_away_and_map_root_to_an_unprivileged_host_uid() -> None:
    args = isolation_args(Isolation(network="none", host_uid=100000), None)
    assert "--network=none" in args
    assert "--uidmap=0:100000:65536" in args and "--gidmap=0:100000:65536" in args


@pytest.mark.parametrize(
    "context, expected",
    [
        ({"runAsUser": 1000}, ["--user=1000"]),
        ({"runAsUser": 1000, "runAsGroup": 2000}, ["--user=1000:2000"]),
        ({"runAsGroup": 2000}, ["--group-add=2000"]),
        ({"readOnlyRootFilesystem": True}, ["--read-only"]),
        ({"readOnlyRootFilesystem": False, "runAsNonRoot": True}, []),
    ],
)
def test_a_containers_security_context_becomes_runtime_flags(context: dict, expected: list[str]) -> None:
    assert isolation_args(Isolation(), context)[1:] == expected


@pytest.mark.parametrize(
    "context, image_user, refused",
    [
        ({"runAsNonRoot": True}, "", True),
        ({"runAsNonRoot": True}, "root", True),
        ({"runAsNonRoot": True}, "0:0", True),
        ({"runAsNonRoot": True}, "1000", False),
        ({"runAsNonRoot": True}, "nobody", False),
        ({"runAsNonRoot": True, "runAsUser": 1000}, "", False),
        ({"runAsNonRoot": False}, "", False),
        (None, "", False),
    ],
)
def test_run_as_non_root_follows_the_kubelets_rule(context: dict | None, image_user: str, refused: bool) -> None:
    assert (checks_image_user(context) and is_root_user(image_user)) is refused


def test_a_link_out_of_the_output_fails_collection_and_stores_nothing(tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.mkdir()
    (tmp_path / "host-secret").write_text("host only\n")
    (output / "app.yaml").write_text("kind: ConfigMap\n")
    (output / "leak.yaml").symlink_to(tmp_path / "host-secret")
    store = ArtifactStore(tmp_path / "artifacts")
    with pytest.raises(
        UnfollowedLink, match="/kratix/output/leak.yaml is a symbolic link that leads out of /kratix/output"
    ):
        store.put_tree(output)
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").iterdir())


def test_a_link_inside_the_output_is_stored_as_the_file_it_leads_to(tmp_path: Path) -> None:
    output = tmp_path / "output"
    (output / "nested").mkdir(parents=True)
    (output / "app.yaml").write_text("kind: ConfigMap\n")
    (output / "nested" / "alias.yaml").symlink_to("../app.yaml")
    store = ArtifactStore(tmp_path / "artifacts")
    digest, files = store.put_tree(output)
    assert files == ["app.yaml", "nested/alias.yaml"]
    alias = store.path(digest, "nested/alias.yaml")
    assert not alias.is_symlink() and alias.read_bytes() == b"kind: ConfigMap\n"


def test_the_same_tree_is_stored_once_whatever_order_it_was_written_in(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root, names in ((first, ["x.yaml", "y.yaml"]), (second, ["y.yaml", "x.yaml"])):
        root.mkdir()
        for name in names:
            (root / name).write_text(f"name: {name}\n")
    store = ArtifactStore(tmp_path / "artifacts")
    assert store.put_tree(first) == store.put_tree(second)
    assert [p.name for p in (tmp_path / "artifacts").iterdir()] == [store.put_tree(first)[0]]
    assert sorted(os.listdir(store.path(store.put_tree(first)[0]))) == ["x.yaml", "y.yaml"]
