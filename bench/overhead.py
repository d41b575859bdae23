"""Orchestration overhead, one command: `.venv/bin/python bench/overhead.py [--n 100] [--runs 5] [--profile DIR]`.

The end-to-end benchmark without the container: N resource requests, all applied at once through the HTTP API, of a
Promise whose one configure pipeline is the cheapest possible step. (A Promise without a resource pipeline commits
nothing per request, so there would be nothing to time.) The step is a stand-in container runtime
(KTX_CONTAINER_RUNTIME, `stub_runtime` in bench/stack.py): a shell script that writes the request's one ConfigMap into
the output mount and starts no container. Everything else is the platform's ordinary path: API, workflow start,
Promise snapshot and catalog reads, the pipeline activity (workspace, object.yaml, output as an artifact), placement,
the state-store write and push, status. Each request is done when its file is on `main` (stamped by a post-receive
hook in the remote, as in e2e.py). Each run has a fresh stack.

Floor, measured in the same run on the same Temporal dev server, just after the platform's requests: a bare workflow
running one trivial activity (bench/bare.py; its own task queue, an in-process worker, the pydantic data converter),
started N times at once, each timed from start to result. `floor_git_s`, one plain commit and push of the same N
files, is reported beside it: the least the state-store write adds, which the bare floor leaves out.

CPU, beside the wall time: `ratio_cpu` is the CPU seconds the platform's processes (dev server, worker and its git
children, API) used for the N requests over what the dev server and this process (the bare worker) used for the
floor's N. On a shared machine the wall-clock ratio follows whoever else is running; the CPU ratio much less so.

`--profile DIR` samples the worker and the API with py-spy during the platform part and writes collapsed stacks
(flamegraph input) and a summary of the hottest project frames there.
Prints one line per run and, last, one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare import bare_runs  # noqa: E402
from bench.stack import (
    apply_all,
    breakdown,
    cpu_s,
    cpu_used,
    git_commit_push,
    install_promise,
    landed,
    load_average,
    medians,  # noqa: E402
    names,
    output_path,
    peak_rss_mb,
    percentile,
    report,
    running_stack,
    stamp_pushes,
    stub_runtime,
    summary,
)
from tests.kratix_documents import pipeline, promise, resource  # noqa: E402
from tests.servers.git_servers import bare_repo  # noqa: E402

PROMISE, KIND, PIPELINE, DESTINATION = "bench", "Bench", "step", "local"
UNDER = f"{DESTINATION}/resources/default/{PROMISE}/"


def wanted(n: int) -> dict[str, str]:
    return {output_path(DESTINATION, PROMISE, name, PIPELINE, "cm.yaml"): name for name in names(n)}


def start_profiles(pids: dict[str, int], out: Path | None) -> list[subprocess.Popen]:  # type: ignore[type-arg]
    if out is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    # --gil: only the thread holding the GIL, so the profile says where the Python CPU goes (one event loop runs every
    # workflow task and activity), not where threads wait.
    return [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pids[p]),
                "--rate",
                "200",
                "--format",
                "raw",
                "--gil",
                "--output",
                str(out / f"{p}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ("worker", "api")
    ]


def stop_profiles(profilers: list[subprocess.Popen]) -> None:  # type: ignore[type-arg]
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for profiler in profilers:
        profiler.wait(timeout=60)


def summarise_profile(path: Path, top: int = 25) -> str:
    """Self and inclusive sample shares of project frames (and of the whole process), from py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # a frame name with a line break in it (sandbox-compiled code) splits a stack over lines
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{path.name}: {total} samples"]
    lines += ["inclusive:"] + [
        f"  {100 * c / total:5.1f}%  {f}"
        for f, c in inclusive.most_common(top * 4)
        if any(f"({d}/" in f for d in ("activities", "workflows", "domain", "api", "worker"))
    ][:top]
    lines += ["self:"] + [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    return "\n".join(lines)


def platform_run(n: int, profile: Path | None) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="ktx-bench-stub-") as stub_dir,
        running_stack(KTX_CONTAINER_RUNTIME=str(stub_runtime(Path(stub_dir)))) as stack,
    ):
        stamp_pushes(stack.remote)
        install_promise(stack, promise(PROMISE, KIND, configure=[pipeline(PIPELINE)]))
        rss_before = peak_rss_mb(stack.pids["worker"])
        cpu_before = {name: cpu_s(pid) for name, pid in stack.pids.items()}
        profilers = start_profiles(stack.pids, profile)
        started, accepted = asyncio.run(apply_all(stack.api_url, {name: resource(KIND, name) for name in names(n)}))
        done, pushes = landed(stack.remote, wanted(n), UNDER, min(started.values()), timeout=120 + 2 * n)
        cpu = cpu_used(stack.pids, cpu_before)
        stop_profiles(profilers)
        latencies = [done[name] - started[name] for name in names(n)]
        result = breakdown(stack.api_url, KIND, started, done) | {
            "wall_s": max(done.values()) - min(started.values()),
            "p50_s": percentile(latencies, 0.5),
            "p95_s": percentile(latencies, 0.95),
            "apply_p95_s": percentile(accepted, 0.95),
            "pushes": pushes,
            "rss_mb": peak_rss_mb(stack.pids["worker"]),
            "rss_idle_mb": rss_before,
            "api_rss_mb": peak_rss_mb(stack.pids["api"]),
            **{f"cpu_{name}_s": seconds for name, seconds in cpu.items()},
        }
        # The floor on the same dev server, with the platform's worker still polling (idle) as it would be.
        floor_before, bench_before = cpu_s(stack.pids["temporal"]), time.process_time()
        floor_wall, floor_latencies = asyncio.run(
            bare_runs(json.loads((stack.home / "stack.json").read_text())["temporal_address"], names(n))
        )
        floor_cpu = cpu_s(stack.pids["temporal"])["own"] - floor_before["own"] + time.process_time() - bench_before
        return result | {
            "platform_cpu_s": sum(cpu.values()),
            "floor_cpu_s": floor_cpu,
            "ratio_cpu": sum(cpu.values()) / floor_cpu,
            "floor_s": floor_wall,
            "floor_p50_s": percentile(floor_latencies, 0.5),
            "floor_p95_s": percentile(floor_latencies, 0.95),
        }


def git_floor(n: int) -> float:
    """One plain commit and push of the same N files: what the bare workflow leaves out and any GitOps writer pays."""
    with tempfile.TemporaryDirectory(prefix="ktx-bench-git-") as tmp:
        remote = bare_repo(Path(tmp), "floor.git")
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
        started = time.perf_counter()
        for name in names(n):
            target = clone / output_path(DESTINATION, PROMISE, name, PIPELINE, "cm.yaml")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n"
                f"data:\n  owner: {name}\n"
            )
        git_commit_push(clone)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--profile", type=Path, help="sample the worker and API with py-spy into this directory (first run)"
    )
    args = parser.parse_args()
    runs = []
    for run in range(args.runs):
        result = platform_run(args.n, args.profile if run == 0 else None)
        result["floor_git_s"] = git_floor(args.n)
        result["ratio"] = result["wall_s"] / result["floor_s"]
        result["load_average"] = os.getloadavg()[0]
        runs.append(result)
        print(
            f"run {run + 1}: {args.n} requests in {result['wall_s']:.2f}s (p50 {result['p50_s']:.2f}s, "
            f"p95 {result['p95_s']:.2f}s, {result['pushes']} pushes, worker peak RSS {result['rss_mb']} MB); "
            f"floor (bare workflow + activity) {result['floor_s']:.2f}s (p50 {result['floor_p50_s']:.2f}s); "
            f"ratio {result['ratio']:.2f}x; CPU {result['platform_cpu_s']:.1f}s vs {result['floor_cpu_s']:.1f}s, "
            f"ratio {result['ratio_cpu']:.2f}x (load average {result['load_average']})",
            flush=True,
        )
    if args.profile:
        for name in ("worker", "api"):
            hottest = summarise_profile(args.profile / f"{name}.txt")
            (args.profile / f"{name}-summary.txt").write_text(hottest + "\n")
            print(hottest, flush=True)
    med = medians(runs)
    report(
        summary(
            "overhead",
            runs,
            n=args.n,
            requests_per_s=round(args.n / med["wall_s"], 2),
            floor_requests_per_s=round(args.n / med["floor_s"], 2),
            latency="apply -> file on the state store's main",
            step="stand-in runtime writing one file, no container",
            load=load_average(),
        ),
        f"overhead-{args.n}",
    )


if __name__ == "__main__":
    main()
