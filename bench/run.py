"""Benchmarks for the first slice, one command: `.venv/bin/python bench/run.py`.

- `ktx up` wall time (fresh KTX_HOME), median of 3.
- One resource request from apply to its commit in the state store, median of 5, against a floor measured in the
  same run: the same container run by hand with podman plus one plain `git commit` + `git push` of its output.
Prints one line per figure and, last, one JSON object (the request's figures as wall/floor, `ktx up` beside them).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import ROOT, git_commit_push, ktx, peak_rss_mb, percentile, running_stack, stack_env  # noqa: E402
from tests.waiting import eventually_blocking  # noqa: E402

EXAMPLE = ROOT / "examples" / "promises" / "app-config"
IMAGE = "localhost/ktx-examples/app-config-pipeline:v0.1.0"


def bench_up() -> list[float]:
    times = []
    for _ in range(3):
        home = Path(tempfile.mkdtemp(prefix="ktx-bench-"))
        env = stack_env(home)
        started = time.perf_counter()
        ktx(env, "up")
        times.append(time.perf_counter() - started)
        ktx(env, "down")
        shutil.rmtree(home, ignore_errors=True)
    return times


def head(remote: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), "rev-parse", "main"], check=True, capture_output=True, text=True
    ).stdout.strip()


def bench_requests(env: dict[str, str], remote: Path) -> list[float]:
    ktx(env, "apply", "-f", str(EXAMPLE / "promise.yaml"))
    ktx(env, "wait", "promise", "app-config", "--for=condition=Available", "--timeout=120s")
    request = yaml.safe_load((EXAMPLE / "resource-request.yaml").read_text())
    times = []
    for i in range(5):
        request["metadata"]["name"] = f"bench-{i}"
        path = f"local/resources/default/app-config/bench-{i}/render/5058f/configmap.yaml"
        before = head(remote)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cli", "apply", "-f", "-"],
            input=yaml.safe_dump(request),
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        # Poll the remote itself: the number is "until the commit is there", not "until status says so". Polled every
        # 10 ms without backoff (a backoff would be measured), and bounded so a regression fails instead of hanging.
        eventually_blocking(
            lambda: (
                head(remote) != before
                and subprocess.run(
                    ["git", "--git-dir", str(remote), "cat-file", "-e", f"main:{path}"], capture_output=True
                ).returncode
                == 0
            ),
            timeout=120,
            what=f"{path} on main",
            interval=0.01,
            max_interval=0.01,
        )
        times.append(time.perf_counter() - started)
    return times


def floor_once(work: Path, remote: Path, i: int) -> float:
    """The least any orchestrator must do: run the container once, commit and push its output."""
    for d in ("input", "output", "metadata"):
        (work / d).mkdir(parents=True, exist_ok=True)
    obj = yaml.safe_load((EXAMPLE / "resource-request.yaml").read_text())
    obj["metadata"]["name"] = f"floor-{i}"
    (work / "input" / "object.yaml").write_text(yaml.safe_dump(obj))
    started = time.perf_counter()
    subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "-v",
            f"{work}/input:/kratix/input:ro",
            "-v",
            f"{work}/output:/kratix/output",
            "-v",
            f"{work}/metadata:/kratix/metadata",
            "-e",
            "KRATIX_WORKFLOW_ACTION=configure",
            "-e",
            "KRATIX_WORKFLOW_TYPE=resource",
            "--entrypoint",
            '["python3", "/pipeline/pipeline.py"]',
            IMAGE,
        ],
        check=True,
        capture_output=True,
    )
    clone = work / "clone"
    if not clone.exists():
        subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
    target = clone / f"floor/{i}"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "output" / "configmap.yaml", target / "configmap.yaml")
    git_commit_push(clone)
    return time.perf_counter() - started


def main() -> None:
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)
    up_times = bench_up()
    with running_stack() as stack:
        request_times = bench_requests(stack.env, stack.remote)
        floor_times = [floor_once(stack.home / "floor", stack.remote, i) for i in range(5)]
        rss = peak_rss_mb(stack.pids["worker"])
    up, req, floor = statistics.median(up_times), statistics.median(request_times), statistics.median(floor_times)
    print(f"ktx up (fresh home)            median {up:6.2f} s   runs {[round(t, 2) for t in up_times]}")
    print(f"resource apply -> commit       median {req:6.3f} s   runs {[round(t, 3) for t in request_times]}")
    print(f"floor: podman run + git push   median {floor:6.3f} s   runs {[round(t, 3) for t in floor_times]}")
    print(f"ratio apply->commit / floor    {req / floor:6.2f}x")
    print(
        json.dumps(
            {
                "name": "run",
                "n": 1,
                "runs": len(request_times),
                "wall_s": round(req, 3),
                "floor_s": round(floor, 3),
                "ratio": round(req / floor, 2),
                "p50_s": round(req, 3),
                "p95_s": round(percentile(request_times, 0.95), 3),
                "rss_mb": rss,
                "latency": "apply -> commit on the state store's main",
                "up_s": round(up, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
