"""Big output, one command: `.venv/bin/python bench/big_output.py [--n 2000] [--size 10240] [--runs 5]`.

One resource request whose pipeline (the `behave` image, GENERATE=NxSIZE) writes N ConfigMaps of about SIZE bytes
each: 20 MB in 2,000 files by default, as tests/integration/test_large_output.py does. Timed from apply through the
HTTP API until all N files are on the state store's `main` (stamped by a post-receive hook in the remote, as in
e2e.py), with the worker's peak resident memory (VmHWM) over the run: the output must stream through the worker
(artifact store, state-store clone), never be held whole or pass through Temporal. Each run has a fresh stack.

Floor, measured in the same run on the same machine with the stack down: the same `podman run` of the same image
with the same env and mounts, plus one plain `git add/commit/push` of the N files it wrote into a clone of a bare
repository. Prints one line per run and, last, one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import (
    ROOT,
    breakdown,
    cpu_s,
    cpu_used,
    git_commit_push,
    install_promise,
    kratix_env,
    landed,  # noqa: E402
    medians,
    output_path,
    peak_rss_mb,
    podman_run,
    running_stack,
    stamp_pushes,
)
from tests.kratix_documents import BEHAVE, pipeline, promise, resource  # noqa: E402
from tests.servers.git_servers import bare_repo  # noqa: E402

PROMISE, KIND, PIPELINE, DESTINATION, NAME = "bulk", "Bulk", "generate", "local", "big"


def files(n: int) -> list[str]:
    """The paths the pipeline writes under /kratix/output (behave's GENERATE)."""
    return [f"generated/cm-{i:05d}.yaml" for i in range(n)]


def platform_run(n: int, size: int) -> dict[str, float]:
    with running_stack() as stack:
        stamp_pushes(stack.remote)
        install_promise(stack, promise(PROMISE, KIND, configure=[pipeline(PIPELINE, GENERATE=f"{n}x{size}")]))
        worker = stack.pids["worker"]
        rss_before = peak_rss_mb(worker)
        cpu_before = {name: cpu_s(pid) for name, pid in stack.pids.items()}
        wanted = {output_path(DESTINATION, PROMISE, NAME, PIPELINE, f): NAME for f in files(n)}
        started = time.time()
        httpx.post(
            f"{stack.api_url}/apply",
            content=yaml.safe_dump(resource(KIND, NAME)),
            headers={"content-type": "application/yaml"},
            timeout=60,
        ).raise_for_status()
        done, pushes = landed(stack.remote, wanted, f"{DESTINATION}/resources/default/{PROMISE}/", started, timeout=600)
        cpu = cpu_used(stack.pids, cpu_before)
        return breakdown(stack.api_url, KIND, {NAME: started}, done) | {
            "wall_s": done[NAME] - started,
            "pushes": pushes,
            "rss_mb": peak_rss_mb(worker),
            "rss_idle_mb": rss_before,
            "rss_now_mb": peak_rss_mb(worker, "VmRSS"),
            "api_rss_mb": peak_rss_mb(stack.pids["api"]),
            "cpu_worker_s": cpu["worker"],
            "cpu_worker_children_s": cpu["worker_children"],
            "cpu_temporal_s": cpu["temporal"],
        }


def floor_run(n: int, size: int, work: Path) -> dict[str, float]:
    remote = bare_repo(work, "floor.git")
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
    env = kratix_env(PROMISE, PIPELINE, NAME) | {"GENERATE": f"{n}x{size}"}
    started = time.perf_counter()
    output = podman_run(work / "run", BEHAVE, env, resource(KIND, NAME), f"ktx-floor-{work.name}")
    container = time.perf_counter() - started
    target = clone / output_path(DESTINATION, PROMISE, NAME, PIPELINE, ".")
    shutil.copytree(output, target)
    git_commit_push(clone)
    total = time.perf_counter() - started
    return {"floor_s": total, "floor_container_s": container, "floor_git_s": total - container}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="files the pipeline writes")
    parser.add_argument("--size", type=int, default=10 * 1024, help="bytes per file (about)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)
    runs = []
    for run in range(args.runs):
        result = platform_run(args.n, args.size)
        with tempfile.TemporaryDirectory(prefix="ktx-bench-floor-") as tmp:
            result |= floor_run(args.n, args.size, Path(tmp))
        result["ratio"] = result["wall_s"] / result["floor_s"]
        runs.append(result)
        print(
            f"run {run + 1}: {args.n} files of {args.size} bytes on main in {result['wall_s']:.2f}s (container "
            f"{result['container_s']:.2f}s, {result['pushes']} pushes, worker peak RSS {result['rss_mb']} MB, idle "
            f"{result['rss_idle_mb']} MB); floor {result['floor_s']:.2f}s "
            f"(container {result['floor_container_s']:.2f}s "
            f"+ git {result['floor_git_s']:.2f}s); ratio {result['ratio']:.2f}x",
            flush=True,
        )
    med = medians(runs)
    print(
        json.dumps(
            {
                "name": "big_output",
                "n": 1,
                "files": args.n,
                "bytes": args.n * args.size,
                "runs": args.runs,
                "wall_s": round(med["wall_s"], 3),
                "floor_s": round(med["floor_s"], 3),
                "ratio": round(med["ratio"], 2),
                "rss_mb": round(med["rss_mb"], 1),
                "rss_idle_mb": round(med["rss_idle_mb"], 1),
                "rss_growth_mb": round(med["rss_mb"] - med["rss_idle_mb"], 1),
                "rss_now_mb": round(med["rss_now_mb"], 1),
                "api_rss_mb": round(med["api_rss_mb"], 1),
                "latency": "apply -> all files on the state store's main",
                "floor_container_s": round(med["floor_container_s"], 3),
                "floor_git_s": round(med["floor_git_s"], 3),
                "pushes": med["pushes"],
                "split_median": {k: round(med[k], 3) for k in ("to_container_s", "container_s", "to_commit_s")},
                "cpu_s": {
                    "worker": round(med["cpu_worker_s"], 2),
                    "worker_children": round(med["cpu_worker_children_s"], 2),
                    "temporal": round(med["cpu_temporal_s"], 2),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
