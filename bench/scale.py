"""Scale, one command: `.venv/bin/python bench/scale.py [--n 2000] [--runs 1] [--repeat 5]`.

A stack holding N resources: they are applied in multi-document batches through the HTTP API (several batches at
once) against a Promise whose one pipeline is the cheapest possible step (the stand-in runtime of bench/overhead.py),
and awaited until every one is Reconciled. Then, each timed `--repeat` times (median):

- headline, `ktx get <kind>` of all N: the CLI as a user runs it (a new Python process, the HTTP call, the table).
  Beside it the raw API call (`GET /objects/<kind>`, JSON of all N) without the CLI.
- creating one more resource, from apply until its status says Reconciled (polled every 20 ms).
- the worker's resident memory: peak (VmHWM) and current (VmRSS), and the API's.

Floors, measured in the same run on the same dev server:
- for `get`: one Temporal visibility list of the same N workflows with the raw client, in-process, each memo decoded
  (the data `get` shows lives in the memos, so any implementation reading Temporal must fetch and decode them).
- for create-one-more: the same create when the stack held no other resource (measured on this stack, after a warm-up
  create, before the N are applied), so the ratio is what N existing resources cost a new one.
One run is one fresh stack; the N resources are set up once per run. Prints one line per run and, last, one JSON
object with the medians.
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
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import (
    Stack,
    install_promise,
    ktx,
    medians,
    names,
    peak_rss_mb,
    running_stack,  # noqa: E402
    stub_runtime,
)
from tests.kratix_documents import condition, pipeline, promise, resource  # noqa: E402
from tests.waiting import eventually, eventually_blocking  # noqa: E402
from worker.settings import Settings, connect_client  # noqa: E402
from activities.platform.search_attributes import KIND as KIND_ATTR  # noqa: E402
from activities.platform.search_attributes import PHASE  # noqa: E402

PROMISE, KIND, PIPELINE = "bench", "Bench", "step"
QUERY = f'{KIND_ATTR.name} = "{KIND}" AND ExecutionStatus = "Running"'


def median_time(repeat: int, action: Any) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def create_all(url: str, n: int, batch: int, parallel: int) -> None:
    """Multi-document applies of `batch` resources each, `parallel` requests at a time."""
    chunks = [names(n)[i : i + batch] for i in range(0, n, batch)]
    gate = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one(chunk: list[str]) -> None:
            async with gate:
                body = yaml.safe_dump_all([resource(KIND, name) for name in chunk])
                response = await client.post("/apply", content=body, headers={"content-type": "application/yaml"})
                response.raise_for_status()

        await asyncio.gather(*[one(chunk) for chunk in chunks])


async def wait_reconciled(address: str, n: int, timeout: float) -> None:
    client = await connect_client(Settings(temporal_address=address))

    async def reconciled() -> int:
        return (await client.count_workflows(f'{QUERY} AND {PHASE.name} = "Reconciled"')).count

    # Once a second: a visibility count is not free, and the figure here is minutes long.
    await eventually(
        reconciled,
        lambda done: done >= n,
        timeout=timeout,
        what=f"{n} resources Reconciled (count so far)",
        interval=1,
        max_interval=1,
    )


async def visibility_list(address: str) -> tuple[float, int]:
    """The floor for `get`: the same workflows listed with the raw client, memos decoded (connecting is not timed)."""
    client = await connect_client(Settings(temporal_address=address))
    started = time.perf_counter()
    memos = [await w.memo() async for w in client.list_workflows(QUERY)]
    return time.perf_counter() - started, len(memos)


def create_one(url: str, name: str) -> float:
    """Apply one resource and poll its status until Reconciled."""
    with httpx.Client(base_url=url, timeout=60) as client:
        started = time.perf_counter()
        client.post(
            "/apply", content=yaml.safe_dump(resource(KIND, name)), headers={"content-type": "application/yaml"}
        ).raise_for_status()
        # Every 20 ms without backoff: the poll interval is part of the figure, so it stays small and fixed.
        eventually_blocking(
            lambda: client.get(f"/objects/{KIND.lower()}/{name}", params={"namespace": "default"}),
            lambda r: r.status_code == 200 and condition(r.json(), "Reconciled").get("status") == "True",
            timeout=120,
            what=f"{name} Reconciled",
            interval=0.02,
            max_interval=0.02,
        )
        return time.perf_counter() - started


def get_cli(stack: Stack, n: int) -> None:
    rows = ktx(stack.env, "get", KIND.lower()).splitlines()
    assert len(rows) == n + 1, f"ktx get printed {len(rows) - 1} rows, expected {n}"  # header + one per resource


def get_api(stack: Stack, n: int) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=300) as client:
        items = client.get(f"/objects/{KIND.lower()}", params={"namespace": "default"}).raise_for_status().json()
    assert len(items) == n, f"the API listed {len(items)}, expected {n}"


def one_run(n: int, repeat: int, batch: int, parallel: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="ktx-bench-stub-") as stub_dir,
        running_stack(KTX_CONTAINER_RUNTIME=str(stub_runtime(Path(stub_dir)))) as stack,
    ):
        address = json.loads((stack.home / "stack.json").read_text())["temporal_address"]
        install_promise(stack, promise(PROMISE, KIND, configure=[pipeline(PIPELINE)]))
        create_one(stack.api_url, "warm-up")  # the worker's first resource workflow loads its modules
        create_empty_s = create_one(stack.api_url, "on-empty")
        started = time.perf_counter()
        asyncio.run(create_all(stack.api_url, n, batch, parallel))
        applied_s = time.perf_counter() - started
        asyncio.run(wait_reconciled(address, n + 2, timeout=600 + n))
        reconciled_s = time.perf_counter() - started
        total = n + 2  # with the warm-up and on-empty ones
        get_s = median_time(repeat, lambda: get_cli(stack, total))
        api_s = median_time(repeat, lambda: get_api(stack, total))
        floors = [asyncio.run(visibility_list(address)) for _ in range(repeat)]
        assert all(count == total for _, count in floors), floors
        floor_s = statistics.median(seconds for seconds, _ in floors)
        create_more_s = statistics.median(create_one(stack.api_url, f"more-{i}") for i in range(repeat))
        worker = stack.pids["worker"]
        return {
            "wall_s": get_s,
            "floor_s": floor_s,
            "ratio": get_s / floor_s,
            "api_get_s": api_s,
            "create_one_s": create_more_s,
            "create_one_floor_s": create_empty_s,
            "create_one_ratio": create_more_s / create_empty_s,
            "create_all_applied_s": applied_s,
            "create_all_reconciled_s": reconciled_s,
            "rss_mb": peak_rss_mb(worker),
            "rss_now_mb": peak_rss_mb(worker, "VmRSS"),
            "api_rss_mb": peak_rss_mb(stack.pids["api"]),
            "temporal_rss_mb": peak_rss_mb(stack.pids["temporal"]),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="timings of get and create-one-more per run (median)")
    parser.add_argument("--batch", type=int, default=100, help="resources per multi-document apply")
    parser.add_argument("--parallel", type=int, default=4, help="applies in flight at once")
    args = parser.parse_args()
    runs = []
    for run in range(args.runs):
        result = one_run(args.n, args.repeat, args.batch, args.parallel)
        runs.append(result)
        print(
            f"run {run + 1}: {args.n} resources applied in {result['create_all_applied_s']:.1f}s, all Reconciled in "
            f"{result['create_all_reconciled_s']:.1f}s; ktx get {result['wall_s']:.2f}s "
            f"(API {result['api_get_s']:.2f}s, "
            f"floor {result['floor_s']:.2f}s, ratio {result['ratio']:.2f}x); one more {result['create_one_s']:.2f}s "
            f"(on an empty stack {result['create_one_floor_s']:.2f}s); worker RSS peak {result['rss_mb']} MB, "
            f"now {result['rss_now_mb']} MB",
            flush=True,
        )
    med = medians(runs)
    print(
        json.dumps(
            {
                "name": "scale",
                "n": args.n,
                "runs": args.runs,
                "repeat": args.repeat,
                "wall_s": round(med["wall_s"], 3),
                "floor_s": round(med["floor_s"], 3),
                "ratio": round(med["ratio"], 2),
                "measured": (
                    "ktx get of all N (CLI process) vs a raw visibility list of the same workflows, memos decoded"
                ),
                "rss_mb": med["rss_mb"],
                "rss_now_mb": med["rss_now_mb"],
                "api_rss_mb": med["api_rss_mb"],
                "temporal_rss_mb": med["temporal_rss_mb"],
                "api_get_s": round(med["api_get_s"], 3),
                "create_one_s": round(med["create_one_s"], 3),
                "create_one_floor_s": round(med["create_one_floor_s"], 3),
                "create_one_ratio": round(med["create_one_ratio"], 2),
                "create_all_applied_s": round(med["create_all_applied_s"], 1),
                "create_all_reconciled_s": round(med["create_all_reconciled_s"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
