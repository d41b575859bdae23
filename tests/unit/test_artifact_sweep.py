"""The artifact store's side of garbage collection on one worker's disk: what a sweep and a cache trim remove."""

from __future__ import annotations

import os
import time
from pathlib import Path

from activities.artifacts.store import ArtifactStore

DAY = 86400


def tree(tmp_path: Path, store: ArtifactStore, name: str, age_s: float) -> str:
    source = tmp_path / f"src-{name}"
    source.mkdir()
    (source / "app.yaml").write_text(f"name: {name}\n")
    digest, _ = store.put_tree(source)
    then = time.time() - age_s
    os.utime(store.root / digest, (then, then))
    return digest


def test_a_sweep_removes_only_old_trees_nobody_holds(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    held, old, young = (
        tree(tmp_path, store, n, age) for n, age in (("held", 3 * DAY), ("old", 2 * DAY), ("young", 60))
    )
    foreign = store.root / "notes"  # not a tree of ours: left alone however old
    foreign.mkdir()
    os.utime(foreign, (0, 0))
    swept = store.sweep({held}, older_than=time.time() - DAY)
    assert (swept.live, swept.young, swept.removed) == (1, 1, 1)
    assert sorted(p.name for p in store.root.iterdir()) == sorted([held, young, "notes"])


def test_storing_a_tree_again_makes_it_young_so_a_result_on_its_way_is_not_swept(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    digest = tree(tmp_path, store, "again", 2 * DAY)
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "app.yaml").write_text("name: again\n")
    assert store.put_tree(tmp_path / "copy")[0] == digest
    assert store.sweep(set(), older_than=time.time() - DAY).removed == 0
    assert (store.root / digest).is_dir()


def test_without_a_shared_bucket_trimming_removes_only_crash_leftovers(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    kept = tree(tmp_path, store, "kept", 2 * DAY)
    leftovers = [store.root / ".abc.123.tmp", store.root / ".abc.456.tar"]
    leftovers[0].mkdir()
    leftovers[1].write_bytes(b"partial")
    fresh = store.root / ".def.789.tmp"  # a store in progress right now
    fresh.mkdir()
    then = time.time() - 2 * DAY
    for path in leftovers:
        os.utime(path, (then, then))
    assert store.trim_cache(older_than=time.time() - DAY) == 2
    assert sorted(p.name for p in store.root.iterdir()) == sorted([kept, fresh.name])


def test_sweeping_or_trimming_an_empty_store_is_a_no_op(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "never-created")
    assert store.sweep(set(), older_than=time.time()).removed == 0
    assert store.trim_cache(older_than=time.time()) == 0
