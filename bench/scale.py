"""Scale, one command: `.venv/bin/python bench/scale.py [--n 10000] [--promises 10] [--runs 1] [--repeat 5]`.

A stack holding N resources spread evenly over `--promises` Promises, each with one pipeline that is the cheapest
possible step (the stand-in runtime of bench/overhead.py). They are applied in multi-document batches through the
HTTP API (several batches at once) and awaited until every one is Reconciled. Reported, each figure beside a floor
measured in the same run on the same dev server:

- apply of all N and all N Reconciled; per request, that over N, against a bare Temporal workflow with one trivial
  activity (bench/bare.py) started min(N, 1,000) times at once on the same dev server once it holds the N: what the
  server itself costs a workflow at that size.
- headline, `kubectl get <plural>,... -A` of all N (real kubectl, a process each time, the server-side Table), against
  one Temporal visibility list of the same N workflows with the raw client, in-process, each memo decoded (the data a
  list shows lives in the memos, so any implementation reading Temporal must fetch and decode them).
- `ktx get <kind>` of one Promise's share (N / promises rows; the CLI as a user runs it: a new Python process, the
  HTTP call, the table), the raw API call beside it, and the ten `ktx get`s of all N; the floor is the visibility
  list of that one kind.
- one more resource, apply until its status says Reconciled (polled every 20 ms), against the same create when the
  stack held no other resource (measured on this stack before the N are applied, after a warm-up create).
- a Promise change (one pipeline env var) re-running that Promise's share: wall time until every one of them has
  run once more and is Reconciled, with the stand-in step held `--hold` seconds so the pipeline slots fill; the
  stand-in logs each step, so the peak number running at once is observed, not assumed. Floor: the steps packed
  perfectly into the worker's slots (steps x hold / limit).
- worker, API and dev server peak RSS; the dev server's SQLite database (with its WAL) per 1,000 requests; one
  resource workflow's history growth per label change and per reconcile; the namespace's retention.
`--repeat` timings are interleaved and their median taken. `--runs` fresh stacks (default 5 for N <= 100, else 1);
the medians over the runs go to bench/results/scale-<N>.json (scripts/bench_table.py builds the docs' tables from it).
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
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare import bare_runs  # noqa: E402
from bench.stack import (  # noqa: E402
    Stack,
    apply_documents,
    interleaved_medians,
    ktx,
    kubeconfig,
    kubectl_get,
    load_average,
    names,
    peak_rss_mb,
    peak_steps,
    report,
    running_stack,
    stub_runtime,
    summary,
)
from tests.kratix_documents import condition, pipeline, promise, resource, runs  # noqa: E402
from tests.waiting import eventually, eventually_blocking  # noqa: E402
from worker.settings import Settings, connect_client  # noqa: E402
from activities.platform.search_attributes import KIND as KIND_ATTR  # noqa: E402
from activities.platform.search_attributes import PHASE  # noqa: E402
from domain.naming import resource_workflow_id  # noqa: E402
from domain.visibility import equals  # noqa: E402

PROMISE, KIND, PIPELINE = "bench", "Bench", "step"
LIMIT = Settings.model_fields["pipeline_concurrency"].default  # the stack's worker runs with the default
BARE_MAX = 1000  # the per-request floor's workflows: enough to be throughput-bound, few enough to stay minutes short


def kinds(promises: int) -> list[tuple[str, str]]:
    """(Promise name, kind) of each Promise; one Promise keeps the plain names bench/kube_list.py uses."""
    return [(PROMISE, KIND)] if promises == 1 else [(f"{PROMISE}{i}", f"{KIND}{i}") for i in range(promises)]


def running_of(*of_kinds: str) -> str:
    """The running workflows of these kinds, as a visibility query (values quoted by domain/visibility.py)."""
    either = " OR ".join(equals(KIND_ATTR.name, kind) for kind in of_kinds)
    return f'({either}) AND ExecutionStatus = "Running"'


async def create_all(url: str, documents: list[dict[str, Any]], batch: int, parallel: int) -> None:
    """Multi-document applies of `batch` documents each, `parallel` requests at a time."""
    chunks = [documents[i : i + batch] for i in range(0, len(documents), batch)]
    gate = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def one(chunk: list[dict[str, Any]]) -> None:
            async with gate:
                body = yaml.safe_dump_all(chunk)
                response = await client.post("/apply", content=body, headers={"content-type": "application/yaml"})
                response.raise_for_status()

        await asyncio.gather(*[one(chunk) for chunk in chunks])


async def wait_reconciled(address: str, query: str, n: int, timeout: float) -> None:
    client = await connect_client(Settings(temporal_address=address))

    async def reconciled() -> int:
        return (await client.count_workflows(f'{query} AND {PHASE.name} = "Reconciled"')).count

    # Once a second: a visibility count is not free, and the figure here is minutes long.
    await eventually(
        reconciled,
        lambda done: done >= n,
        timeout=timeout,
        what=f"{n} resources Reconciled (count so far)",
        interval=1,
        max_interval=1,
    )


async def visibility_list(address: str, query: str) -> tuple[float, int]:
    """The floor for a list: the same workflows listed with the raw client, memos decoded (connecting is not timed)."""
    client = await connect_client(Settings(temporal_address=address))
    started = time.perf_counter()
    memos = [await w.memo() async for w in client.list_workflows(query)]
    return time.perf_counter() - started, len(memos)


def median_floor(repeat: int, address: str, query: str, n: int) -> float:
    floors = [asyncio.run(visibility_list(address, query)) for _ in range(repeat)]
    assert all(count == n for _, count in floors), floors
    return statistics.median(seconds for seconds, _ in floors)


def read(client: httpx.Client, kind: str, name: str) -> httpx.Response:
    return client.get(f"/objects/{kind.lower()}/{name}", params={"namespace": "default"})


def install_promises(stack: Stack, documents: list[dict[str, Any]]) -> None:
    """One apply of them all, then each awaited Available through the API (not a `ktx wait` process per Promise)."""
    apply_documents(stack.env, documents)
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        for document in documents:
            name = document["metadata"]["name"]
            eventually_blocking(
                lambda: client.get(f"/objects/promise/{name}").json(),
                lambda o: condition(o, "Available").get("status") == "True",
                timeout=120,
                what=f"Promise {name} Available",
            )


def create_one(url: str, kind: str, name: str) -> float:
    """Apply one resource and poll its status until Reconciled."""
    with httpx.Client(base_url=url, timeout=60) as client:
        started = time.perf_counter()
        client.post(
            "/apply", content=yaml.safe_dump(resource(kind, name)), headers={"content-type": "application/yaml"}
        ).raise_for_status()
        # Every 20 ms without backoff: the poll interval is part of the figure, so it stays small and fixed.
        eventually_blocking(
            lambda: read(client, kind, name),
            lambda r: r.status_code == 200 and condition(r.json(), "Reconciled").get("status") == "True",
            timeout=120,
            what=f"{name} Reconciled",
            interval=0.02,
            max_interval=0.02,
        )
        return time.perf_counter() - started


def get_cli(stack: Stack, kind: str, n: int) -> None:
    rows = ktx(stack.env, "get", kind.lower()).splitlines()
    assert len(rows) == n + 1, f"ktx get printed {len(rows) - 1} rows, expected {n}"  # header + one per resource


def get_api(stack: Stack, kind: str, n: int) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=300) as client:
        items = client.get(f"/objects/{kind.lower()}", params={"namespace": "default"}).raise_for_status().json()
    assert len(items) == n, f"the API listed {len(items)}, expected {n}"


def database_mb(stack: Stack) -> float:
    """The dev server's SQLite database as it stands on disk: the file and its write-ahead log."""
    files = [stack.home / f"temporal.db{suffix}" for suffix in ("", "-wal", "-shm")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


async def history(address: str, workflow_id: str) -> tuple[int, int]:
    """A workflow's current run's history: events, and bytes as stored (the events' encoded size)."""
    client = await connect_client(Settings(temporal_address=address))
    events = (await client.get_workflow_handle(workflow_id).fetch_history()).events
    return len(events), sum(e.ByteSize() for e in events)


async def retention_s(address: str) -> float:
    client = await connect_client(Settings(temporal_address=address))
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    return described.config.workflow_execution_retention_ttl.ToTimedelta().total_seconds()


def history_growth(stack: Stack, address: str, promise_name: str, kind: str, name: str) -> dict[str, float]:
    """Events and bytes one label change and one reconcile (kratix.io/manual-reconciliation) add to a resource's
    history: what a long-lived resource workflow accumulates until it continues as new."""
    workflow_id = resource_workflow_id(promise_name, "default", name)
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        events0, bytes0 = asyncio.run(history(address, workflow_id))
        ktx(stack.env, "label", kind.lower(), name, "team=bench")
        eventually_blocking(
            lambda: read(client, kind, name).json()["metadata"].get("labels", {}),
            lambda labels: labels.get("team") == "bench",
            timeout=60,
            what=f"{name}'s label",
        )
        events1, bytes1 = asyncio.run(history(address, workflow_id))
        before = runs(read(client, kind, name).json(), PIPELINE)
        ktx(stack.env, "label", kind.lower(), name, "kratix.io/manual-reconciliation=true")
        eventually_blocking(
            lambda: read(client, kind, name).json(),
            lambda o: runs(o, PIPELINE) == before + 1 and condition(o, "Reconciled").get("status") == "True",
            timeout=60,
            what=f"{name} reconciled again",
        )
        events2, bytes2 = asyncio.run(history(address, workflow_id))
    return {
        "history_events": events0,
        "history_kb": bytes0 / 1024,
        "history_events_per_label": events1 - events0,
        "history_kb_per_label": (bytes1 - bytes0) / 1024,
        "history_events_per_reconcile": events2 - events1,
        "history_kb_per_reconcile": (bytes2 - bytes1) / 1024,
    }


def promise_change(stack: Stack, stub_dir: Path, promise_name: str, kind: str, count: int, hold: float) -> dict:
    """The Promise's pipeline gets a new env var, so every one of its `count` resources re-runs; each step held
    `hold` s. Done when all of them have run once more and are Reconciled."""
    (stub_dir / "hold").write_text(str(hold))
    with httpx.Client(base_url=stack.api_url, timeout=300) as client:

        def listed() -> dict[str, dict[str, Any]]:
            items = client.get(f"/objects/{kind.lower()}", params={"namespace": "default"}).raise_for_status().json()
            return {o["metadata"]["name"]: o for o in items}

        before = {name: runs(o, PIPELINE) for name, o in listed().items()}  # one of them was reconciled once more

        def rerun() -> int:
            return sum(
                runs(o, PIPELINE) > before[name] and condition(o, "Reconciled").get("status") == "True"
                for name, o in listed().items()
            )

        started = time.perf_counter()
        apply_documents(stack.env, [promise(promise_name, kind, configure=[pipeline(PIPELINE, CHANGED="1")])])
        eventually_blocking(
            rerun,
            lambda done: done == count,
            timeout=120 + count * hold,
            what=f"{count} resources re-run (count so far)",
            interval=0.5,
            max_interval=1,
        )
        wall = time.perf_counter() - started
    (stub_dir / "hold").unlink()
    steps, peak = peak_steps(stub_dir / "steps.log")
    assert steps == count, f"{steps} steps ran for {count} resources"
    assert peak <= LIMIT, f"{peak} pipeline steps ran at once, above the limit of {LIMIT}"
    floor = count * hold / LIMIT
    return {"rerun_s": wall, "rerun_floor_s": floor, "rerun_ratio": wall / floor, "rerun_peak": peak}


def one_run(n: int, promises: int, repeat: int, batch: int, parallel: int, hold: float) -> dict[str, float]:
    pairs = kinds(promises)
    share = n // promises
    (first_promise, first), all_kinds = pairs[0], [kind for _, kind in pairs]
    with (
        tempfile.TemporaryDirectory(prefix="ktx-bench-stub-") as stub_dir,
        running_stack(KTX_CONTAINER_RUNTIME=str(stub_runtime(Path(stub_dir)))) as stack,
    ):
        address = json.loads((stack.home / "stack.json").read_text())["temporal_address"]
        install_promises(stack, [promise(name, kind, configure=[pipeline(PIPELINE)]) for name, kind in pairs])
        create_one(stack.api_url, first, "warm-up")  # the worker's first resource workflow loads its modules
        empty = [create_one(stack.api_url, first, f"on-empty-{i}") for i in range(repeat)]
        database_before = database_mb(stack)
        documents = [resource(kind, name) for _, kind in pairs for name in names(share)]
        started = time.perf_counter()
        asyncio.run(create_all(stack.api_url, documents, batch, parallel))
        applied_s = time.perf_counter() - started
        total = len(documents) + 1 + repeat  # with the warm-up and on-empty ones
        asyncio.run(wait_reconciled(address, running_of(*all_kinds), total, timeout=600 + n))
        reconciled_s = time.perf_counter() - started
        database_after = database_mb(stack)
        bare_n = min(n, BARE_MAX)
        bare_s, _ = asyncio.run(bare_runs(address, names(bare_n)))
        load_before = load_average()

        in_first = share + 1 + repeat
        with tempfile.TemporaryDirectory(prefix="ktx-bench-kube-") as scratch:
            config, cache = kubeconfig(Path(scratch), stack.api_url), Path(scratch) / "cache"
            plurals = [kind.lower() + "s" for kind in all_kinds]
            kubectl_get(config, cache, plurals, total)  # discovery cached once, as on a user's machine
            lists = interleaved_medians(
                repeat,
                {
                    "kubectl_get_all_s": lambda: kubectl_get(config, cache, plurals, total),
                    "ktx_get_s": lambda: get_cli(stack, first, in_first),
                    "api_get_s": lambda: get_api(stack, first, in_first),
                },
            )
        # Once a run, not `repeat` times: it is `promises` CLI processes, and the runs give the median.
        lists |= interleaved_medians(
            1, {"ktx_get_all_s": lambda: [get_cli(stack, k, in_first if k == first else share) for k in all_kinds]}
        )
        floor_all = median_floor(repeat, address, running_of(*all_kinds), total)
        floor_one = median_floor(repeat, address, running_of(first), in_first)
        more = [create_one(stack.api_url, first, f"more-{i}") for i in range(repeat)]
        growth = history_growth(stack, address, first_promise, first, names(share)[0])
        rerun = promise_change(stack, Path(stub_dir), first_promise, first, in_first + repeat, hold)
        load_after = load_average()
        worker = stack.pids["worker"]
        return {
            "wall_s": lists["kubectl_get_all_s"],
            "floor_s": floor_all,
            "ratio": lists["kubectl_get_all_s"] / floor_all,
            "ktx_get_s": lists["ktx_get_s"],
            "ktx_get_floor_s": floor_one,
            "ktx_get_ratio": lists["ktx_get_s"] / floor_one,
            "api_get_s": lists["api_get_s"],
            "ktx_get_all_s": lists["ktx_get_all_s"],
            "create_one_s": statistics.median(more),
            "create_one_floor_s": statistics.median(empty),
            "create_one_ratio": statistics.median(more) / statistics.median(empty),
            "create_all_applied_s": applied_s,
            "create_all_reconciled_s": reconciled_s,
            "per_request_s": reconciled_s / len(documents),
            "per_request_floor_s": bare_s / bare_n,
            "per_request_ratio": (reconciled_s / len(documents)) / (bare_s / bare_n),
            **rerun,
            **growth,
            "database_empty_mb": database_before,
            "database_mb": database_after,
            "database_mb_per_1000": (database_after - database_before) * 1000 / len(documents),
            "retention_h": asyncio.run(retention_s(address)) / 3600,
            "rss_mb": peak_rss_mb(worker),
            "rss_now_mb": peak_rss_mb(worker, "VmRSS"),
            "api_rss_mb": peak_rss_mb(stack.pids["api"]),
            "temporal_rss_mb": peak_rss_mb(stack.pids["temporal"]),
            "load_1m_before": load_before[0],
            "load_1m_after": load_after[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10000, help="resources in all, spread evenly over the Promises")
    parser.add_argument("--promises", type=int, default=10)
    parser.add_argument("--runs", type=int, help="fresh stacks, median reported (default 5 for N <= 100, else 1)")
    parser.add_argument("--repeat", type=int, default=5, help="timings of each list and create per run (median)")
    parser.add_argument("--batch", type=int, default=100, help="resources per multi-document apply")
    parser.add_argument("--parallel", type=int, default=4, help="applies in flight at once")
    parser.add_argument("--hold", type=float, default=0.1, help="seconds each step lasts during the Promise change")
    args = parser.parse_args()
    if args.n % args.promises:
        parser.error("--n must be a multiple of --promises")
    results = []
    for run in range(args.runs or (5 if args.n <= 100 else 1)):
        r = one_run(args.n, args.promises, args.repeat, args.batch, args.parallel, args.hold)
        results.append(r)
        print(
            f"run {run + 1}: {args.n} resources applied in {r['create_all_applied_s']:.1f}s, all Reconciled in "
            f"{r['create_all_reconciled_s']:.1f}s ({r['per_request_s'] * 1000:.1f} ms each vs a bare workflow's "
            f"{r['per_request_floor_s'] * 1000:.1f} ms); kubectl get -A {r['wall_s']:.2f}s (floor {r['floor_s']:.2f}s, "
            f"{r['ratio']:.2f}x); ktx get of one kind {r['ktx_get_s']:.2f}s (API {r['api_get_s']:.2f}s, floor "
            f"{r['ktx_get_floor_s']:.2f}s), of all {r['ktx_get_all_s']:.2f}s; one more {r['create_one_s']:.2f}s "
            f"vs {r['create_one_floor_s']:.2f}s on empty ({r['create_one_ratio']:.2f}x); Promise change re-ran "
            f"in {r['rerun_s']:.1f}s vs {r['rerun_floor_s']:.1f}s, peak {r['rerun_peak']} of {LIMIT} slots; RSS "
            f"worker {r['rss_mb']} MB, API {r['api_rss_mb']} MB; database {r['database_mb']:.1f} MB "
            f"({r['database_mb_per_1000']:.1f} MB per 1,000); load {r['load_1m_before']} -> {r['load_1m_after']}",
            flush=True,
        )
        # After every run, the medians so far: a run cut short by the report's deadline keeps the ones before it.
        report(
            summary(
                "scale",
                results,
                n=args.n,
                promises=args.promises,
                repeat=args.repeat,
                hold_s=args.hold,
                pipeline_limit=LIMIT,
                bare_n=min(args.n, BARE_MAX),
                measured="kubectl get -A of all N vs a raw visibility list of the same workflows, memos decoded",
            ),
            f"scale-{args.n}",
        )


if __name__ == "__main__":
    main()
