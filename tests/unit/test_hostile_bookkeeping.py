"""Bookkeeping a pipeline cannot write, and deletes that reach only what their own placement wrote: the rules of
domain/layout.py and activities/stores/writes.py, run against a real directory tree (the Git writer's LocalTree)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from activities.artifacts.store import ArtifactStore
from activities.stores.git_writer import LocalTree
from activities.stores.writes import GroupWrite, StoreChange, UnsafePath, apply_change, check_paths
from domain.layout import Slot, ledger_files, ledger_text, reserved_output_path

NO_ARTIFACTS = cast(ArtifactStore, None)  # every write here is inline


@pytest.mark.parametrize(
    "path",
    [
        ".kratix/default-team-b.yaml",
        "sub/.kratix/default-team-b.yaml",  # a Destination nested under this one's path has its state files there
        ".ktx/aggregated/dev/aggregated.yaml.index",
        "deep/.ktx/x",
        ".git/config",
        "vendor/.git/HEAD",
        "kratix-canary-configmap.yaml",
        "dependencies/kratix-canary-namespace.yaml",
        "a\n12 other-wp b.yaml",  # would add a line to an aggregate's index or a state file
        "tab\there.yaml",
        "del\x7f.yaml",
    ],
)
def test_pipeline_output_may_not_land_on_bookkeeping(path: str) -> None:
    assert reserved_output_path(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "cm.yaml",
        "kratix/x.yaml",
        ".kratixx/a.yaml",
        "a.kratix",
        ".github/workflows/ci.yaml",
        "my-kratix-canary-configmap.yaml",
        "dir with spaces/é.yaml",
    ],
)
def test_ordinary_output_paths_are_allowed(path: str) -> None:
    assert reserved_output_path(path) is None


def test_state_file_bytes_are_kratix_yaml_marshal_in_its_walk_order() -> None:
    # os.ReadDir depth first: the directory "a" and what is in it before "a-b"; a plain string sort puts "a-b/" first.
    assert (
        ledger_text(["dev/a-b/x.yaml", "dev/b.yaml", "dev/a/x.yaml"])
        == "files:\n- dev/a/x.yaml\n- dev/a-b/x.yaml\n- dev/b.yaml\n"
    )
    # go-yaml quotes what would read back as another type with double quotes, and writes UTF-8 as it is.
    assert ledger_text(["yes", "1.0", "é.yaml"]) == 'files:\n- "1.0"\n- "yes"\n- é.yaml\n'
    assert ledger_text([]) == "files: []\n"


FORGED = b"""files:
- dev/mine.yaml
- README.md
- ../README.md
- dev/../README.md
- /etc/passwd
- ./dev/x.yaml
- dev//x.yaml
- dev
- .
- other/theirs.yaml
- dev/.kratix/default-team-b.yaml
- dev/sub/.git/config
- dev/kratix-canary-configmap.yaml
- .ktx/aggregated/dev/aggregated.yaml.index
- 42
"""


def test_a_state_file_names_only_files_under_its_destination_that_are_not_bookkeeping() -> None:
    assert ledger_files(FORGED, "dev") == ["dev/mine.yaml"]
    # At the store's root every plain path is under the Destination: only bookkeeping and malformed paths are left.
    assert ledger_files(FORGED, ".") == ["dev/mine.yaml", "README.md", "dev", "other/theirs.yaml"]


@pytest.mark.parametrize("text", [b"- a list\n", b"files: banana\n", b"{unclosed", b"a: &a [*a]\n", b"\xff\xfe"])
def test_an_unreadable_state_file_names_nothing(text: bytes) -> None:
    assert ledger_files(text, "dev") == []


def seeded(tmp_path: Path, files: dict[str, bytes]) -> LocalTree:
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    return LocalTree(tmp_path)


def slot(name: str) -> Slot:
    return Slot(mode="none", path="dev", key=f"dev/.kratix/default-{name}.yaml")


def test_a_forged_state_file_removes_only_its_own_placements_files(tmp_path: Path) -> None:
    """A state file forged before pipelines were refused `.kratix/` (or edited by hand) names files all over the
    repository; deleting its placement removes only what it may own."""
    tree = seeded(
        tmp_path,
        {
            "README.md": b"the repository's own\n",
            "other/theirs.yaml": b"another Destination's\n",
            "dev/mine.yaml": b"a's\n",
            "dev/b.yaml": b"b's\n",
            "dev/kratix-canary-configmap.yaml": b"canary\n",
            "dev/.kratix/default-team-b.yaml": ledger_text(["dev/b.yaml"]).encode(),
            "dev/.kratix/default-team-a.yaml": FORGED + b"- dev/b.yaml\n",
        },
    )
    apply_change(tree, StoreChange(message="delete a", remove=[slot("team-a")]), NO_ARTIFACTS)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "README.md",
        "dev/.kratix/default-team-b.yaml",
        "dev/b.yaml",
        "dev/kratix-canary-configmap.yaml",
        "other/theirs.yaml",
    ]


def test_the_first_placement_to_write_a_name_owns_it(tmp_path: Path) -> None:
    tree = LocalTree(tmp_path)
    first = StoreChange(
        message="a",
        replace=[
            GroupWrite(
                slot=slot("team-a"), inline={"shared.yaml": "kind: ConfigMap\n", "team-a.yaml": "kind: ConfigMap\n"}
            )
        ],
    )
    apply_change(tree, first, NO_ARTIFACTS)
    second = StoreChange(
        message="b",
        replace=[
            GroupWrite(slot=slot("team-b"), inline={"shared.yaml": "stolen\n", "team-b.yaml": "kind: ConfigMap\n"})
        ],
    )
    apply_change(tree, second, NO_ARTIFACTS)
    assert first.conflicts == []
    assert second.conflicts == ["dev/shared.yaml belongs to another placement in this Destination; not written"]
    assert (tmp_path / "dev/shared.yaml").read_text() == "kind: ConfigMap\n" and (
        tmp_path / "dev/team-b.yaml"
    ).is_file()
    assert (tmp_path / "dev/.kratix/default-team-b.yaml").read_text() == "files:\n- dev/team-b.yaml\n"
    # team-a lets it go; team-b's next write (its retry) takes the name.
    apply_change(
        tree,
        StoreChange(
            message="a again", replace=[GroupWrite(slot=slot("team-a"), inline={"team-a.yaml": "kind: ConfigMap\n"})]
        ),
        NO_ARTIFACTS,
    )
    assert not (tmp_path / "dev/shared.yaml").exists()
    apply_change(tree, second, NO_ARTIFACTS)
    assert second.conflicts == [] and (tmp_path / "dev/shared.yaml").read_text() == "stolen\n"


def test_a_name_two_old_state_files_list_stays_until_the_last_lets_it_go(tmp_path: Path) -> None:
    """State files written before names were owned may both list one file: neither delete takes it from the other."""
    tree = seeded(
        tmp_path,
        {
            "dev/shared.yaml": b"kind: ConfigMap\n",
            "dev/team-a.yaml": b"a\n",
            "dev/team-b.yaml": b"b\n",
            "dev/.kratix/default-team-a.yaml": ledger_text(["dev/shared.yaml", "dev/team-a.yaml"]).encode(),
            "dev/.kratix/default-team-b.yaml": ledger_text(["dev/shared.yaml", "dev/team-b.yaml"]).encode(),
        },
    )
    apply_change(tree, StoreChange(message="a gone", remove=[slot("team-a")]), NO_ARTIFACTS)
    assert (tmp_path / "dev/shared.yaml").is_file() and not (tmp_path / "dev/team-a.yaml").exists()
    apply_change(tree, StoreChange(message="b gone", remove=[slot("team-b")]), NO_ARTIFACTS)
    assert not (tmp_path / "dev/shared.yaml").exists() and not (tmp_path / "dev/team-b.yaml").exists()


@pytest.mark.parametrize(
    "rel", [".kratix/default-team-b.yaml", "x/.ktx/aggregated/a.index", "kratix-canary-namespace.yaml"]
)
def test_an_output_kept_from_before_the_rule_is_refused_by_the_writer(rel: str) -> None:
    """Outputs already in a workflow's state when pipelines started being refused such paths are re-delivered on a
    re-sync: the write is refused (an error in status) instead of landing on bookkeeping."""
    with pytest.raises(UnsafePath, match="may not write"):
        check_paths(StoreChange(message="m", replace=[GroupWrite(slot=slot("team-a"), files=[rel])]))
