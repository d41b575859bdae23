"""End to end, one command: `.venv/bin/python bench/e2e.py [--n 100] [--runs 5] [--concurrency 8]`.

N resource requests, all applied at once through the HTTP API (as N `kubectl apply`s would arrive), against a Promise
whose one pipeline is one `behave` container writing one file; each request is done when its file is on `main` in
the Git state store. Each run has a fresh stack (`ktx up` on a new KTX_HOME: its own Temporal database, worker and
state store), so runs share nothing.

Latency is apply -> file on the remote's main: a post-receive hook in the state store stamps every push as the remote
takes it, so the figure is "a GitOps agent could now see it", not "status says so" (Reconciled is set after the push
and would only add the memo update and our polling on top).

Floor, measured in the same run on the same machine: the same N `podman run`s of the same image with the same env and
mounts, at the worker's pipeline concurrency, plus one plain `git add/commit/push` of the N files they wrote.
Prints one line per run and, last, one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import (
    ROOT,
    apply_all,
    breakdown,
    git_commit_push,
    install_promise,
    kratix_env,
    landed,
    load_average,
    medians,  # noqa: E402
    names,
    output_path,
    peak_rss_mb,
    percentile,
    podman_run,
    report,
    running_stack,
    stamp_pushes,
    summary,
)
from tests.kratix_documents import BEHAVE, pipeline, promise, resource  # noqa: E402
from tests.servers.git_servers import bare_repo  # noqa: E402
from worker.settings import Settings  # noqa: E402

PROMISE, KIND, PIPELINE, DESTINATION = "bench", "Bench", "write", "local"
FILES = {
    "cm.yaml": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "{name}", "namespace": "{namespace}"},
        "data": {"owner": "{name}"},
    }
}
UNDER = f"{DESTINATION}/resources/default/{PROMISE}/"


def wanted(n: int) -> dict[str, str]:
    return {output_path(DESTINATION, PROMISE, name, PIPELINE, "cm.yaml"): name for name in names(n)}


def platform_run(n: int, concurrency: int) -> dict[str, float]:
    with running_stack(KTX_PIPELINE_CONCURRENCY=str(concurrency)) as stack:
        stamp_pushes(stack.remote)
        install_promise(stack, promise(PROMISE, KIND, configure=[pipeline(PIPELINE, FILES=FILES)]))
        rss_before = peak_rss_mb(stack.pids["worker"])
        started, accepted = asyncio.run(apply_all(stack.api_url, {name: resource(KIND, name) for name in names(n)}))
        done, pushes = landed(stack.remote, wanted(n), UNDER, min(started.values()), timeout=120 + 5 * n)
        latencies = [done[name] - started[name] for name in names(n)]
        return breakdown(stack.api_url, KIND, started, done) | {
            "wall_s": max(done.values()) - min(started.values()),
            "p50_s": percentile(latencies, 0.5),
            "p95_s": percentile(latencies, 0.95),
            "apply_p95_s": percentile(accepted, 0.95),
            "pushes": pushes,
            "rss_mb": peak_rss_mb(stack.pids["worker"]),
            "rss_idle_mb": rss_before,
            "api_rss_mb": peak_rss_mb(stack.pids["api"]),
        }


def run_container(work: Path, name: str) -> Path:
    """One `behave` run as the podman runner starts it (same mounts and env); returns its output directory."""
    env = kratix_env(PROMISE, PIPELINE, name) | {
        e["name"]: e["value"] for e in pipeline(PIPELINE, FILES=FILES)["spec"]["containers"][0]["env"]
    }
    return podman_run(work / name, BEHAVE, env, resource(KIND, name), f"ktx-floor-{work.name}-{name}")


def floor_run(n: int, concurrency: int, work: Path) -> dict[str, float]:
    remote = bare_repo(work, "floor.git")
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outputs = dict(zip(names(n), pool.map(lambda name: run_container(work / "runs", name), names(n))))
    containers = time.perf_counter() - started
    for name, output in outputs.items():
        target = clone / output_path(DESTINATION, PROMISE, name, PIPELINE, "cm.yaml")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(output / "cm.yaml", target)
    git_commit_push(clone)
    total = time.perf_counter() - started
    return {"floor_s": total, "floor_containers_s": containers, "floor_git_s": total - containers}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=Settings.model_fields["pipeline_concurrency"].default,
        help="the worker's KTX_PIPELINE_CONCURRENCY, and the floor's parallel podman runs",
    )
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)
    runs = []
    for run in range(args.runs):
        result = platform_run(args.n, args.concurrency)
        # The floor runs with the stack down, so it gets the whole machine: the ratio errs against ktx, not for it.
        with tempfile.TemporaryDirectory(prefix="ktx-bench-floor-") as tmp:
            result |= floor_run(args.n, args.concurrency, Path(tmp))
        result["ratio"] = result["wall_s"] / result["floor_s"]
        runs.append(result)
        print(
            f"run {run + 1}: {args.n} requests in {result['wall_s']:.2f}s (p50 {result['p50_s']:.2f}s, "
            f"p95 {result['p95_s']:.2f}s, {result['pushes']} pushes, worker peak RSS {result['rss_mb']} MB); "
            f"floor {result['floor_s']:.2f}s (containers {result['floor_containers_s']:.2f}s + git "
            f"{result['floor_git_s']:.2f}s); ratio {result['ratio']:.2f}x",
            flush=True,
        )
    report(
        summary(
            "e2e",
            runs,
            n=args.n,
            concurrency=args.concurrency,
            requests_per_s=round(args.n / medians(runs)["wall_s"], 2),
            latency="apply -> file on the state store's main",
            load=load_average(),
        ),
        f"e2e-{args.n}",
    )


if __name__ == "__main__":
    main()
