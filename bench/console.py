"""The web console with N requests, one command: `.venv/bin/python bench/console.py [--n 2000] [--repeat 5]`.

A stack holding N resources (applied as bench/scale.py does, on the stand-in runtime; measured once all N are listed
by visibility, whether or not the worker has reconciled them yet: the console's reads do not wait for it), then, each
timed `--repeat` times (median), in real headless Chromium (tests/console_browser.py), from navigation until the
view is usable (its data shown):

- the requests list's first page (`#/requests`: its pager says "1–50 of N"), floor: the raw JSON call it makes
  (`GET /ui/api/requests`, the same page of the same N, from Python);
- the overview (`#/`: its counts by phase are shown), floor: the raw `GET /ui/api/overview`.

The ratio is page load over floor: what the browser, the static files, the login check and rendering add to the
data itself. A fresh browser context's navigation costs something before any of the console's own work, so each
repeat also loads an empty page the same way (`empty_page_s`: one static file of the same API, the console's
stylesheet, until it has loaded), and `*_floors_ratio` is a page load over that plus its JSON call: 1.0 would be a
console adding nothing to the browser's and the data's own cost. Prints one JSON object with the medians and keeps it
as bench/results/console-<N>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import KIND, PIPELINE, PROMISE, create_all, running_of  # noqa: E402
from bench.stack import install_promise, load_average, names, report, running_stack, stub_runtime  # noqa: E402
from tests.console_browser import chromium, console_page  # noqa: E402
from tests.kratix_documents import pipeline, promise, resource  # noqa: E402
from tests.waiting import eventually  # noqa: E402
from worker.settings import Settings, connect_client  # noqa: E402


def raw_call(url: str, path: str, params: dict[str, Any], check: Any) -> float:
    with httpx.Client(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        response = client.get(path, params=params).raise_for_status()
        elapsed = time.perf_counter() - started
    assert check(response.json()), response.text[:500]
    return elapsed


async def page_loads(url: str, n: int, repeat: int) -> dict[str, list[float]]:
    """Each view loaded `repeat` times in a fresh browser context (nothing cached between loads), and the empty page
    as often, in turn with them, so that the machine's load weighs on all three alike."""
    times: dict[str, list[float]] = {"empty": [], "requests": [], "overview": []}
    async with chromium() as browser:
        for _ in range(repeat):
            for view, path, shown in (
                ("empty", "static/console.css", None),
                ("requests", "#/requests", f"document.getElementById('page-info')?.textContent === '1–50 of {n}'"),
                ("overview", "#/", f"[...document.querySelectorAll('th a')].some(a => a.textContent === '{PROMISE}')"),
            ):
                async with console_page(browser) as page:
                    started = time.perf_counter()
                    await page.goto(f"{url}/ui/{path}")
                    if shown is not None:
                        # Checked on every frame: a locator's wait backs off to a check every 500 ms, which is
                        # the bench's, not the page's, time.
                        await page.wait_for_function(f"() => {shown}", polling="raf", timeout=120_000)
                    times[view].append(time.perf_counter() - started)
    return times


def one_run(n: int, repeat: int, batch: int, parallel: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="ktx-bench-stub-") as stub_dir,
        running_stack(KTX_CONTAINER_RUNTIME=str(stub_runtime(Path(stub_dir)))) as stack,
    ):
        address = json.loads((stack.home / "stack.json").read_text())["temporal_address"]
        install_promise(stack, promise(PROMISE, KIND, configure=[pipeline(PIPELINE)]))
        started = time.perf_counter()
        asyncio.run(create_all(stack.api_url, [resource(KIND, name) for name in names(n)], batch, parallel))
        asyncio.run(wait_listed(address, n))
        setup_s = time.perf_counter() - started
        load_before = load_average()[0]
        figures = measure(stack.api_url, n, repeat)
        # The requests list is the headline (wall, floor, ratio), as bench/scale.py's list is; the overview follows.
        return {
            "name": "console",
            "n": n,
            "measured": "the requests list in Chromium until its first page is shown vs its JSON call",
            "runs": repeat,
            "wall_s": figures["requests_page_s"],
            "floor_s": figures["requests_json_floor_s"],
            "ratio": figures["requests_ratio"],
            **figures,
            "setup_s": round(setup_s, 1),
            "load_1m_before": load_before,
            "load_1m_after": load_average()[0],
        }


async def wait_listed(address: str, n: int) -> None:
    client = await connect_client(Settings(temporal_address=address))
    await eventually(
        lambda: client.count_workflows(running_of(KIND)),
        lambda counted: counted.count >= n,
        timeout=600,
        what=f"{n} resources listed by visibility",
        interval=1,
        max_interval=1,
    )


def measure(url: str, n: int, repeat: int) -> dict[str, float]:
    """The floors and page loads against an API serving N requests of the bench Promise."""
    list_floor = statistics.median(
        raw_call(url, "/ui/api/requests", {"limit": 50}, lambda page: page["total"] == n) for _ in range(repeat)
    )
    overview_floor = statistics.median(
        # Its row, as the page waits for: not its sum, as the 7 counts of a row are taken one after another while the
        # worker still moves requests from phase to phase (one moving between two counts is counted 0 or 2 times).
        raw_call(url, "/ui/api/overview", {}, lambda data: PROMISE in data["counts"])
        for _ in range(repeat)
    )
    loads = asyncio.run(page_loads(url, n, repeat))
    empty_s = statistics.median(loads["empty"])
    requests_s = statistics.median(loads["requests"])
    overview_s = statistics.median(loads["overview"])
    return {
        "empty_page_s": round(empty_s, 3),
        "requests_page_s": round(requests_s, 3),
        "requests_json_floor_s": round(list_floor, 3),
        "requests_ratio": round(requests_s / list_floor, 2),
        "requests_floors_ratio": round(requests_s / (empty_s + list_floor), 2),
        "overview_page_s": round(overview_s, 3),
        "overview_json_floor_s": round(overview_floor, 3),
        "overview_ratio": round(overview_s / overview_floor, 2),
        "overview_floors_ratio": round(overview_s / (empty_s + overview_floor), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="page loads and floor calls per view (median)")
    parser.add_argument("--batch", type=int, default=100, help="resources per multi-document apply")
    parser.add_argument("--parallel", type=int, default=4, help="applies in flight at once")
    args = parser.parse_args()
    report(one_run(args.n, args.repeat, args.batch, args.parallel), f"console-{args.n}")


if __name__ == "__main__":
    main()
