"""The Git writer against real repositories: batching, no-op writes, and recovery from outside commits."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from activities.artifacts import ArtifactStore
from activities.git_writer import ChangeSet, GitRepoWriter
from tests.conftest import push_by_hand, read_remote, remote_commits, remote_files


def writer(remote: Path, tmp: Path, name: str = "w") -> GitRepoWriter:
    return GitRepoWriter(str(remote), "main", "kratix", "k@x", tmp / name, ArtifactStore(tmp / "artifacts"))


async def test_concurrent_writes_are_batched_into_few_commits(git_remote: Path, tmp_path: Path) -> None:
    w = writer(git_remote, tmp_path)
    before = remote_commits(git_remote)
    changes = [ChangeSet(message=f"Update from: r{i}", replace_dirs={f"dest/r{i}": {"cm.yaml": f"n: {i}\n".encode()}}) for i in range(40)]
    outcomes = await asyncio.gather(*[w.write(c) for c in changes])
    made = remote_commits(git_remote) - before
    assert 1 <= made <= 3  # the first write goes alone, everything queued behind it shares a commit
    assert w.commits_made == made
    assert all(o.commit for o in outcomes)
    assert sum(f.startswith("dest/") for f in remote_files(git_remote)) == 40


async def test_unchanged_content_makes_no_commit(git_remote: Path, tmp_path: Path) -> None:
    w = writer(git_remote, tmp_path)
    change = ChangeSet(message="Update from: x", replace_dirs={"d/x": {"a.yaml": b"a: 1\n"}})
    first = await w.write(change)
    second = await w.write(change)
    assert first.changed and not second.changed
    assert first.commit == second.commit


async def test_outside_commit_is_merged_not_lost(git_remote: Path, tmp_path: Path) -> None:
    w = writer(git_remote, tmp_path)
    await w.write(ChangeSet(message="Update from: a", replace_dirs={"d/a": {"a.yaml": b"a: 1\n"}}))
    # Someone commits by hand, between our writes; our clone does not know yet.
    push_by_hand(git_remote, tmp_path / "other", "manual.yaml", "by: hand\n", "manual")
    outcome = await w.write(ChangeSet(message="Update from: b", replace_dirs={"d/b": {"b.yaml": b"b: 1\n"}}))
    assert outcome.changed
    assert read_remote(git_remote, "manual.yaml") == "by: hand\n"
    assert read_remote(git_remote, "d/b/b.yaml") == "b: 1\n"
    assert read_remote(git_remote, "d/a/a.yaml") == "a: 1\n"


async def test_first_write_to_an_empty_repository_creates_the_branch(tmp_path: Path) -> None:
    remote = tmp_path / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    outcome = await writer(remote, tmp_path).write(ChangeSet(message="Update from: c", files={"x/c.yaml": b"c: 1\n"}))
    assert outcome.changed
    assert read_remote(remote, "x/c.yaml") == "c: 1\n"
