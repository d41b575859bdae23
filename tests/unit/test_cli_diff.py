"""`ktx diff`'s text for a compound request: its own files, then each component's, headed by the requests that led
to it, recursively (the diffs themselves are made on real parts in tests/integration/test_compound_dry_run.py)."""

from __future__ import annotations

from cli.main import diff_text


def diff(kind: str, name: str, path: str, components: list | None = None) -> dict:
    request = {"kind": kind, "name": name, "namespace": "default", "promise": kind.lower()}
    file = {"pipeline": "p", "path": path, "change": "modified", "diff": "--- a\n+++ b\n", "destinations": ["d"]}
    return {"request": request, "files": [file], "wouldRun": [], "failed": None, "components": components or []}


def test_components_follow_their_parent_each_headed_by_its_path() -> None:
    text = diff_text(
        [diff("GoldenPath", "shop", "a.yaml", [diff("Database", "db", "b.yaml", [diff("Backup", "bk", "c.yaml")])])]
    )
    heads = [line for line in text.splitlines() if line.startswith("# ")]
    assert heads == [
        "# GoldenPath/default/shop: pipeline p, modified a.yaml (Destination d)",
        "# GoldenPath/default/shop > Database/default/db: pipeline p, modified b.yaml (Destination d)",
        "# GoldenPath/default/shop > Database/default/db > Backup/default/bk: pipeline p, modified c.yaml"
        " (Destination d)",
    ]
