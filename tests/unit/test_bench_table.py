"""scripts/bench_table.py writes the benchmark tables from the benchmarks' JSON, and the committed pages are current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_table.py"

SCALE = {
    "name": "scale",
    "n": 10000,
    "runs": 1,
    "wall_s": 1.234,
    "floor_s": 0.617,
    "ratio": 2.0,
    "ktx_get_s": 0.512,
    "ktx_get_floor_s": 0.256,
    "ktx_get_ratio": 2.0,
    "create_one_s": 0.33,
    "create_one_floor_s": 0.3,
    "create_one_ratio": 1.1,
    "create_all_reconciled_s": 1500.4,
    "per_request_s": 0.15,
    "per_request_floor_s": 0.025,
    "per_request_ratio": 6.0,
    "rerun_s": 40.2,
    "rerun_floor_s": 12.5,
    "rerun_ratio": 3.22,
    "rerun_peak": 8,
    "pipeline_limit": 8,
    "rss_mb": 812.4,
    "api_rss_mb": 301.6,
    "database_mb_per_1000": 97.56,
    "history_events_per_reconcile": 31,
    "history_kb_per_reconcile": 20.7,
    "load_1m_before": 3.21,
    "load_1m_after": 4.56,
    "measured": "kubectl get -A",
}
E2E = {
    "name": "e2e",
    "n": 100,
    "runs": 5,
    "wall_s": 28.6,
    "floor_s": 16.4,
    "ratio": 1.74,
    "latency": "apply",
    "load": [2.5],
}
PAGE = """# Page

<!-- bench:headline -->
<!-- /bench:headline -->
<!-- bench:summary -->
old
<!-- /bench:summary -->

<!-- bench:scale -->
<!-- /bench:scale -->
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def cells(text: str, marker: str) -> list[list[str]]:
    body = text.split(f"<!-- bench:{marker} -->\n")[1].split(f"\n<!-- /bench:{marker} -->")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in body.splitlines()[2:]]


def test_tables_are_written_from_the_json_between_the_markers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "scale-10000.json").write_text(json.dumps(SCALE))
    (results / "e2e-100.json").write_text(json.dumps(E2E))
    (results / "scale-10.json").write_text(json.dumps(SCALE | {"n": 10, "wall_s": 0.3}))
    page, plain = tmp_path / "page.md", tmp_path / "plain.md"
    page.write_text(PAGE)
    plain.write_text("no markers\n")

    assert run("--check", "--results", str(results), str(page), str(plain)).returncode == 1
    assert page.read_text() == PAGE, "--check wrote"
    assert run("--results", str(results), str(page), str(plain)).returncode == 0
    assert run("--check", "--results", str(results), str(page), str(plain)).returncode == 0

    text = page.read_text()
    assert plain.read_text() == "no markers\n"
    assert text.startswith("# Page\n\n") and "old" not in text
    e2e = ["`bench/e2e.py`", "100", "apply", "28.60 s", "16.40 s", "1.74x", "5", "2.5"]
    scale = ["`bench/scale.py`", "10,000", "kubectl get -A", "1.23 s", "0.62 s", "2.00x", "1", "3.2 → 4.6"]
    small = ["`bench/scale.py`", "10", "kubectl get -A", "0.30 s", "0.62 s", "2.00x", "1", "3.2 → 4.6"]
    assert cells(text, "summary") == [e2e, small, scale]
    assert cells(text, "headline") == [e2e, scale]
    assert cells(text, "scale")[1:] == [
        [
            "10,000",
            "1500 s",
            "150.0 ms vs 25.0 ms (6.00x)",
            "1.23 s vs 0.62 s (2.00x)",
            "0.51 s vs 0.26 s (2.00x)",
            "0.33 s vs 0.30 s (1.10x)",
            "40.20 s vs 12.50 s (3.22x)",
            "8 / 8",
            "812 / 302 MB",
            "97.6 MB",
            "31 events, 20.7 KB",
            "1",
            "3.2 → 4.6",
        ]
    ]


def test_committed_pages_match_the_committed_results() -> None:
    done = run("--check")
    assert done.returncode == 0, done.stderr
