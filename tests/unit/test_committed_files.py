"""A placement's files read from a real git clone in a cache directory, as the worker's git writer leaves it: found by
the store's URL and the commit, listed by name, text shown, binary and oversized files by their size only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from activities.stores import committed_files as cf
from activities.stores.committed_files import NotHeld, committed_files, find_clone

URL = "https://git.example.com/platform/state.git"


def run(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def clone_with(cache: Path, files: dict[str, bytes], url: str = URL) -> tuple[Path, str]:
    """A clone under `cache` with `files` committed, its origin `url`; returns it and its commit."""
    clone = cache / f"clone-{len(list(cache.iterdir())) if cache.exists() else 0}"
    clone.mkdir(parents=True)
    run(clone, "init", "-q", "-b", "main")
    run(clone, "remote", "add", "origin", url)
    for name, content in files.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_bytes(content)
    run(clone, "add", ".")
    run(clone, "commit", "-q", "-m", "placed")
    return clone, run(clone, "rev-parse", "HEAD")


def test_lists_a_placements_files_with_text_and_sizes(tmp_path: Path) -> None:
    cache = tmp_path / "git-cache"
    clone_with(cache, {"other/x.yaml": b"a: 1\n"}, url="https://git.example.com/other.git")
    clone, sha = clone_with(
        cache,
        {
            "dest/resources/ns/p/r/pipe/g/cm.yaml": b"kind: ConfigMap\n",
            "dest/resources/ns/p/r/pipe/g/sub/blob.bin": b"\x00\x01\x02",
            "dest/resources/ns/p/r/pipe/g/big.txt": b"x" * (cf.FILE_MAX_BYTES + 1),
            "dest/resources/ns/p/other/pipe/g/not-mine.yaml": b"b: 2\n",
        },
    )
    assert find_clone(cache, URL, sha) == clone
    found = committed_files(clone, sha, "dest/resources/ns/p/r/pipe/g")
    assert found.total == 3
    shown = {f.name: f for f in found.files}
    assert set(shown) == {
        "dest/resources/ns/p/r/pipe/g/cm.yaml",
        "dest/resources/ns/p/r/pipe/g/sub/blob.bin",
        "dest/resources/ns/p/r/pipe/g/big.txt",
    }
    assert shown["dest/resources/ns/p/r/pipe/g/cm.yaml"].text == "kind: ConfigMap\n"
    binary = shown["dest/resources/ns/p/r/pipe/g/sub/blob.bin"]
    assert (binary.text, binary.omitted, binary.bytes) == (None, "binary", 3)
    big = shown["dest/resources/ns/p/r/pipe/g/big.txt"]
    assert (big.text, big.omitted, big.bytes) == (None, "too large", cf.FILE_MAX_BYTES + 1)
    # One file placed on its own (a flat Destination's) is that file.
    (alone,) = committed_files(clone, sha, "dest/resources/ns/p/r/pipe/g/cm.yaml").files
    assert alone.text == "kind: ConfigMap\n"


def test_bounds_the_count_and_the_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clone, sha = clone_with(tmp_path / "cache", {f"d/{i:02}.yaml": b"0123456789" for i in range(6)})
    monkeypatch.setattr(cf, "FILES_MAX", 4)
    monkeypatch.setattr(cf, "CONTENTS_MAX_BYTES", 25)
    found = committed_files(clone, sha, "d")
    assert found.total == 6
    assert [f.name for f in found.files] == ["d/00.yaml", "d/01.yaml", "d/02.yaml", "d/03.yaml"]
    assert [f.text is not None for f in found.files] == [True, True, False, False]
    assert found.files[2].omitted == "over the answer's bound"


def test_refuses_what_the_cache_does_not_hold(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    clone, sha = clone_with(cache, {"d/a.yaml": b"a: 1\n"})
    (cache / "not-a-clone").mkdir()
    with pytest.raises(NotHeld, match="not in this host's git cache"):
        find_clone(cache, "https://git.example.com/elsewhere.git", sha)
    with pytest.raises(NotHeld, match="not in this host's git cache"):
        find_clone(cache, URL, "0" * 40)
    with pytest.raises(NotHeld, match="not a Git commit SHA"):
        find_clone(cache, URL, "--upload-pack=touch /tmp/x")
    with pytest.raises(NotHeld, match="not in this host's git cache"):
        find_clone(tmp_path / "no-cache", URL, sha)
    with pytest.raises(NotHeld, match="has no d/b.yaml"):
        committed_files(clone, sha, "d/b.yaml")
