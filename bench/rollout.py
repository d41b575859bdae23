"""A rollout against the same re-runs started all at once: `.venv/bin/python bench/rollout.py [--n 1000] [--podman]`.

N requests in 4 namespaces, pinned (resourceBindingVersionStrategy: pinned), of a Promise installed at v1, v2 and v3.
Floor, in the same run on the same stack: one plan moving all N from v1 to v2 in a single group with
`maxConcurrent: 100%`, so every re-bind is signalled at once and only the pipeline slots pace them. Then the measured
plan moves them from v2 to v3 in 4 groups (one per namespace) with `maxConcurrent: 25%`: the same work per request,
paced by the plan. Each is timed from its creation to its Succeeded phase, read from the plan's status.

Peak concurrency is read afterwards from what the platform recorded: each request's run of the target pipeline,
with its start and end; the peak is the most runs overlapping at any instant, per group for the plan (it may not
exceed the group's limit; tests/integration/test_rollouts.py asserts it, this only reports it).

By default the pipeline step is the stand-in runtime bench/overhead.py uses (a shell script writing one ConfigMap,
no container), since 3 x 1,000 container runs do not fit a shared 2-core machine; `--podman` runs real containers
(the tests' behave image), for a smaller `--n`.
Prints one JSON object and keeps it as bench/results/rollout-<n>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack, apply_all, install_promise, load_average, report, running_stack, stub_runtime  # noqa: E402
from tests.kratix_documents import pipeline, promise, resource  # noqa: E402
from tests.waiting import eventually_blocking  # noqa: E402

PROMISE, KIND, GROUPS = "bench", "Bench", 4
NAMESPACES = [f"group-{i}" for i in range(GROUPS)]


def versioned(version: str) -> dict[str, Any]:
    writes = {"cm.yaml": {"kind": "ConfigMap", "metadata": {"name": "{name}"}}}
    document = promise(PROMISE, KIND, configure=[pipeline(f"step-{version}", FILES=writes)])
    document["metadata"]["labels"]["kratix.io/promise-version"] = version
    return document


def requests(n: int) -> dict[str, dict[str, Any]]:
    return {
        f"{NAMESPACES[i % GROUPS]}/r{i:05d}": resource(KIND, f"r{i:05d}", namespace=NAMESPACES[i % GROUPS])
        for i in range(n)
    }


def listed(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get(f"/objects/{KIND}")
    response.raise_for_status()
    return response.json()


def all_on(client: httpx.Client, n: int, version: str, timeout: float) -> list[dict[str, Any]]:
    return eventually_blocking(
        lambda: listed(client),
        lambda found: len(found) == n and all((o.get("status") or {}).get("promiseVersion") == version for o in found),
        timeout=timeout,
        what=f"{n} requests on {version}",
        max_interval=2,
    )


def plan(name: str, source: str, target: str, groups: list[dict[str, Any]], limit: str) -> dict[str, Any]:
    return {
        "apiVersion": "platform.ktx.dev/v1alpha1",
        "kind": "RolloutPlan",
        "metadata": {"name": name},
        "spec": {
            "promiseRef": {"name": PROMISE},
            "fromVersion": source,
            "toVersion": target,
            "groups": groups,
            "maxConcurrent": limit,
        },
    }


def roll(client: httpx.Client, document: dict[str, Any], timeout: float) -> float:
    started = time.monotonic()
    client.post("/rollouts", content=yaml.safe_dump(document)).raise_for_status()
    name = document["metadata"]["name"]
    eventually_blocking(
        lambda: client.get(f"/rollouts/{name}").json(),
        lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Halted"),
        timeout=timeout,
        what=f"rollout {name} done",
        max_interval=1,
    )
    elapsed = time.monotonic() - started
    status = client.get(f"/rollouts/{name}").json()["status"]
    if status["phase"] != "Succeeded":
        raise RuntimeError(f"rollout {name} ended {status['phase']}: {status.get('failed')}")
    return elapsed


def peak(objects: list[dict[str, Any]], step: str) -> int:
    edges: list[tuple[datetime, int]] = []
    for obj in objects:
        for run in obj["_ktx"]["runs"]:
            if run["pipeline"] == step and run["action"] == "configure" and run["started_at"] and run["finished_at"]:
                edges += [
                    (datetime.fromisoformat(run["started_at"]), 1),
                    (datetime.fromisoformat(run["finished_at"]), -1),
                ]
    running = best = 0
    for _, change in sorted(edges):
        running += change
        best = max(best, running)
    return best


def run(n: int, podman: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ktx-bench-stub-") as stub_dir:
        runtime = {} if podman else {"KTX_CONTAINER_RUNTIME": str(stub_runtime(Path(stub_dir)))}
        # Every request's workflow stays in the worker's sticky cache while the plans run: past its size (1,000 by
        # default) each task replays its whole history, which is not what a rollout costs on a worker sized for it.
        cache = {"KTX_WORKER_CACHED_WORKFLOWS": str(max(1000, n + 200))}
        with running_stack(KTX_RESOURCE_BINDING_VERSION_STRATEGY="pinned", **runtime, **cache) as stack:
            return measure(stack, n)


def measure(stack: Stack, n: int) -> dict[str, Any]:
    timeout = 300 + 3 * n
    install_promise(stack, versioned("v1"))
    asyncio.run(apply_all(stack.api_url, requests(n)))
    with httpx.Client(base_url=stack.api_url, timeout=120) as client:
        all_on(client, n, "v1", timeout)
        install_promise(stack, versioned("v2"))
        install_promise(stack, versioned("v3"))
        everyone = [{"name": "all", "namespaces": NAMESPACES}]
        floor_s = roll(client, plan("all-at-once", "v1", "v2", everyone, "100%"), timeout)
        floor_peak = peak(all_on(client, n, "v2", timeout), "step-v2")
        groups = [{"name": ns, "namespaces": [ns]} for ns in NAMESPACES]
        wall_s = roll(client, plan("in-groups", "v2", "v3", groups, "25%"), timeout)
        objects = all_on(client, n, "v3", timeout)
        limits = {g["name"]: g["limit"] for g in client.get("/rollouts/in-groups").json()["status"]["groups"]}
        peaks = {ns: peak([o for o in objects if o["metadata"]["namespace"] == ns], "step-v3") for ns in NAMESPACES}
    return {
        "name": "rollout",
        "n": n,
        "runs": 1,
        "measured": "a plan in 4 groups at maxConcurrent 25%, creation → Succeeded",
        "groups": GROUPS,
        "max_concurrent": "25%",
        "wall_s": round(wall_s, 2),
        "floor_s": round(floor_s, 2),
        "ratio": round(wall_s / floor_s, 2),
        "limit_per_group": limits,
        "peak_per_group": peaks,
        "floor_peak": floor_peak,
        "floor": "the same N re-runs, one plan, one group, maxConcurrent 100% (all signalled at once)",
        "load": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--podman", action="store_true", help="real containers (the behave image), not the stand-in")
    args = parser.parse_args()
    result = run(args.n, args.podman) | {"runtime": "podman" if args.podman else "stand-in"}
    report(result, f"rollout-{args.n}{'-podman' if args.podman else ''}")


if __name__ == "__main__":
    main()
