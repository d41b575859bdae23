"""The benchmark tables of README.md and docs/benchmarks.md, written from the benchmarks' own JSON output.

`.venv/bin/python scripts/bench_table.py [--check] [--results DIR] [PAGE ...]`: reads every bench/results/*.json (what
bench/stack.py's `report` keeps of a run), renders the tables and writes each between its markers in the pages
(default README.md and docs/benchmarks.md), so no figure there is typed by hand. `--check` writes nothing and exits 1
when a page's table differs from what the JSON gives.

- `<!-- bench:summary -->` ... `<!-- /bench:summary -->`: one row per result: what was timed, wall, floor, ratio,
  runs and the load average it ran under. `<!-- bench:headline -->`: the same, the largest N of each benchmark only.
- `<!-- bench:scale -->` ... `<!-- /bench:scale -->`: bench/scale.py's ladder, one row per N.
- `<!-- bench:rollout -->` ... `<!-- /bench:rollout -->`: bench/rollout.py, one row per N, with each group's limit and
  the peak of runs at once observed in it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _load(result: dict[str, Any]) -> str:
    """The 1-minute load average the result ran under (before -> after where both were taken)."""
    if "load" in result:
        return f"{result['load'][0]:.1f}"
    return f"{result['load_1m_before']:.1f} → {result['load_1m_after']:.1f}"


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary_table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| Benchmark | n | What is timed | Wall | Floor | Ratio | Runs | Load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        what = r.get("measured") or r.get("latency") or ""
        rows.append(
            f"| `bench/{r['name']}.py` | {r['n']:,} | {what} | {_s(r['wall_s'])} | {_s(r['floor_s'])} "
            f"| {r['ratio']:.2f}x | {r['runs']} | {_load(r)} |"
        )
    return "\n".join(rows)


def scale_table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| n | Apply → all Reconciled | Per request vs bare workflow | `kubectl get -A` of all vs visibility list "
        "| `ktx get` of one kind vs its list | One more vs on empty | Promise change re-run vs packed slots "
        "| Peak / limit | RSS worker / API | SQLite per 1,000 | History per reconcile | Runs | Load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['n']:,} | {_s(r['create_all_reconciled_s'])} "
            f"| {_ms(r['per_request_s'])} vs {_ms(r['per_request_floor_s'])} ({r['per_request_ratio']:.2f}x) "
            f"| {_s(r['wall_s'])} vs {_s(r['floor_s'])} ({r['ratio']:.2f}x) "
            f"| {_s(r['ktx_get_s'])} vs {_s(r['ktx_get_floor_s'])} ({r['ktx_get_ratio']:.2f}x) "
            f"| {_s(r['create_one_s'])} vs {_s(r['create_one_floor_s'])} ({r['create_one_ratio']:.2f}x) "
            f"| {_s(r['rerun_s'])} vs {_s(r['rerun_floor_s'])} ({r['rerun_ratio']:.2f}x) "
            f"| {r['rerun_peak']:.0f} / {r['pipeline_limit']} "
            f"| {r['rss_mb']:.0f} / {r['api_rss_mb']:.0f} MB | {r['database_mb_per_1000']:.1f} MB "
            f"| {r['history_events_per_reconcile']:.0f} events, {r['history_kb_per_reconcile']:.1f} KB "
            f"| {r['runs']} | {_load(r)} |"
        )
    return "\n".join(rows)


def rollout_table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| n | Runtime | Plan (4 groups, 25%) | All at once | Ratio | Peak / limit per group | Peak all at once "
        "| Runs | Load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        peaks = ", ".join(f"{r['peak_per_group'][g]} / {r['limit_per_group'][g]}" for g in sorted(r["limit_per_group"]))
        rows.append(
            f"| {r['n']:,} | {r['runtime']} | {_s(r['wall_s'])} | {_s(r['floor_s'])} | {r['ratio']:.2f}x | {peaks} "
            f"| {r['floor_peak']} | {r['runs']} | {_load(r)} |"
        )
    return "\n".join(rows)


def results(directory: Path) -> list[dict[str, Any]]:
    """Every result, by benchmark name and then size."""
    found = [json.loads(path.read_text()) for path in directory.glob("*.json")]
    return sorted(found, key=lambda r: (r["name"], r["n"]))


def tables(found: list[dict[str, Any]]) -> dict[str, str]:
    largest = {r["name"]: r for r in found}  # sorted by size within a name: the last one is the largest
    return {
        "headline": summary_table(list(largest.values())),
        "summary": summary_table(found),
        "scale": scale_table([r for r in found if r["name"] == "scale"]),
        "rollout": rollout_table([r for r in found if r["name"] == "rollout"]),
    }


def rewrite(text: str, rendered: dict[str, str]) -> str:
    """Each marked table replaced by its rendering; text without markers is returned unchanged."""
    for name, table in rendered.items():
        marked = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)", re.DOTALL)
        text = marked.sub(lambda m, table=table: f"{m.group(1)}{table}\n{m.group(2)}", text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("pages", nargs="*", type=Path, default=[ROOT / "README.md", ROOT / "docs" / "benchmarks.md"])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    args = parser.parse_args()
    rendered = tables(results(args.results))
    stale = []
    for page in args.pages:
        text = page.read_text()
        new = rewrite(text, rendered)
        if new != text:
            stale.append(str(page))
            if not args.check:
                page.write_text(new)
    if args.check and stale:
        print(f"out of date with {args.results}: {', '.join(stale)} (run scripts/bench_table.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
