"""How a pipeline's output tree is read: links resolved as the container saw them, and never out of the tree."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from activities.artifacts.output_files import (
    METADATA_MOUNT,
    UnfollowedLink,
    output_files,
    read_regular,
    resolve_in_tree,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "host-secret").write_text("host only\n")
    root = tmp_path / "output"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "app.yaml").write_text("kind: ConfigMap\n")
    (root / "nested" / "deeper" / "deep.yaml").write_text("kind: Secret\n")
    return root


@pytest.mark.parametrize(
    "link, target, resolved",
    [
        ("alias.yaml", "app.yaml", "app.yaml"),
        ("nested/up.yaml", "../app.yaml", "app.yaml"),
        ("nested/dotted.yaml", "./deeper/../../app.yaml", "app.yaml"),
        ("absolute.yaml", "/kratix/output/nested/deeper/deep.yaml", "nested/deeper/deep.yaml"),
        ("chain.yaml", "nested/up.yaml", "app.yaml"),  # a link to a link
    ],
)
def test_a_link_that_stays_in_the_tree_reads_the_file_it_leads_to(
    tree: Path, link: str, target: str, resolved: str
) -> None:
    (tree / "nested" / "up.yaml").symlink_to("../app.yaml")
    (tree / link).unlink(missing_ok=True)
    (tree / link).symlink_to(target)
    assert resolve_in_tree(tree, link) == PurePosixPath(resolved)
    assert read_regular(output_files(tree)[link]) == (tree / resolved).read_bytes()


def test_a_path_through_a_linked_directory_is_resolved_component_by_component(tree: Path) -> None:
    (tree / "dirlink").symlink_to("nested/deeper")
    (tree / "nested" / "deeper" / "back").symlink_to("..")
    assert resolve_in_tree(tree, "dirlink/deep.yaml") == PurePosixPath("nested/deeper/deep.yaml")
    # `..` after a linked directory is the parent of where the link led, as the kernel resolves it.
    assert resolve_in_tree(tree, "dirlink/back/deeper/deep.yaml") == PurePosixPath("nested/deeper/deep.yaml")


@pytest.mark.parametrize(
    "target, reason",
    [
        ("/etc/passwd", "leads out of /kratix/output"),
        ("../host-secret", "leads out of /kratix/output"),
        ("nested/../../host-secret", "leads out of /kratix/output"),
        ("/kratix/input/object.yaml", "leads out of /kratix/output"),
        ("/kratix/outputs/app.yaml", "leads out of /kratix/output"),  # a prefix of the name is not the directory
        ("/", "leads out of /kratix/output"),
        ("nested", "does not lead to a regular file"),
        ("/kratix/output", "does not lead to a regular file"),
        ("missing.yaml", "leads to nothing"),
        ("app.yaml/more", "does not lead to a regular file"),
        ("self.yaml", "goes round in a loop"),
    ],
)
def test_any_other_link_is_refused_with_its_name_and_why(tree: Path, target: str, reason: str) -> None:
    (tree / "self.yaml").symlink_to("self.yaml")
    (tree / "link.yaml").symlink_to(target)
    with pytest.raises(UnfollowedLink) as refused:
        output_files(tree)
    assert "/kratix/output/" in str(refused.value) and "write the file itself" in str(refused.value)
    with pytest.raises(UnfollowedLink, match=reason):
        resolve_in_tree(tree, "link.yaml")


def test_the_host_file_behind_an_absolute_link_is_never_what_is_read(tree: Path, tmp_path: Path) -> None:
    # The container meant its own /kratix/output; on the worker's host the same path would be somewhere else.
    (tree / "abs.yaml").symlink_to("/kratix/output/app.yaml")
    assert output_files(tree)["abs.yaml"] == tree / "app.yaml"


def test_linked_directories_are_not_descended_and_special_files_are_left_out(tree: Path) -> None:
    (tree / "dirlink").symlink_to("nested")
    os.mkfifo(tree / "fifo")
    with pytest.raises(UnfollowedLink, match="/kratix/output/dirlink .*does not lead to a regular file"):
        output_files(tree)
    (tree / "dirlink").unlink()
    assert list(output_files(tree)) == ["app.yaml", "nested/deeper/deep.yaml"]


def test_metadata_links_are_judged_against_the_metadata_mount(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("message: ok\n")
    (tmp_path / "status.yaml").symlink_to("/kratix/metadata/real.yaml")
    assert resolve_in_tree(tmp_path, "status.yaml", METADATA_MOUNT) == PurePosixPath("real.yaml")
    (tmp_path / "escape.yaml").symlink_to("/kratix/output/app.yaml")
    with pytest.raises(UnfollowedLink, match="/kratix/metadata/escape.yaml .*leads out of /kratix/metadata"):
        resolve_in_tree(tmp_path, "escape.yaml", METADATA_MOUNT)


def test_reading_refuses_a_link_in_the_last_component(tree: Path) -> None:
    (tree / "alias.yaml").symlink_to("app.yaml")
    with pytest.raises(OSError):
        read_regular(tree / "alias.yaml")
