"""`kubectl get <kind> -A` of N resources, one command: `.venv/bin/python bench/kube_list.py [--n 2000] [--repeat 5]`.

A fresh stack (`ktx up`) holding N resources of a Promise with an API and no workflows (nothing runs per resource,
so creating them is cheap and the stack is idle while lists are timed), created in multi-document applies. Then,
each timed `--repeat` times (median), in the same run:

- headline: real kubectl (`.venv/bin/kubectl get <plural> -A`, the server-side Table kubectl asks for), a new
  process each time, as a user runs it;
- the Kubernetes list route without kubectl: `GET /apis/<group>/<version>/<plural>` as JSON, and as the Table;
- the floor: the ktx REST list of the same N, `GET /objects/<kind>` (JSON), the route `ktx get` uses.

Prints one line per figure, the load average before and after, and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import KIND, PROMISE, create_all  # noqa: E402
from bench.stack import ROOT, install_promise, running_stack  # noqa: E402
from tests.kratix_documents import GROUP, promise  # noqa: E402
from tests.waiting import eventually_blocking  # noqa: E402

KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
PLURAL = KIND.lower() + "s"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def kubeconfig(directory: Path, server: str) -> Path:
    """The loopback stack's API needs no token: a kubeconfig with the server alone."""
    path = directory / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ktx", "cluster": {"server": server}}],
        "users": [{"name": "ktx", "user": {}}],
        "contexts": [{"name": "ktx", "context": {"cluster": "ktx", "user": "ktx"}}],
        "current-context": "ktx",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def median_time(repeat: int, action: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def kubectl_get(config: Path, cache: Path, n: int) -> None:
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(config), "--cache-dir", str(cache), "get", PLURAL, "-A"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    rows = out.splitlines()
    assert len(rows) == n + 1, f"kubectl printed {len(rows) - 1} rows, expected {n}"


def http_get(url: str, path: str, n: int, accept: str = "application/json", count: str = "items") -> None:
    with httpx.Client(base_url=url, timeout=600) as client:
        body = client.get(path, headers={"Accept": accept}).raise_for_status().json()
    found = len(body) if isinstance(body, list) else len(body[count])
    assert found == n, f"{path} listed {found}, expected {n}"


def one_run(n: int, repeat: int, batch: int, parallel: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ktx-bench-kube-") as scratch, running_stack() as stack:
        url = stack.api_url
        install_promise(stack, promise(PROMISE, KIND))
        started = time.perf_counter()
        asyncio.run(create_all(url, n, batch, parallel))
        created_s = time.perf_counter() - started
        # Visibility lags the workflows a little: every resource listed before anything is timed.
        eventually_blocking(
            lambda: len(httpx.get(f"{url}/objects/{KIND.lower()}", timeout=600).json()),
            lambda listed: listed == n,
            timeout=300,
            what=f"{n} resources listed",
            interval=1,
            max_interval=2,
        )
        config, cache = kubeconfig(Path(scratch), url), Path(scratch) / "cache"
        kubectl_get(config, cache, n)  # discovery cached once, as on a user's machine after the first command
        load_before = os.getloadavg()
        kube_path = f"/apis/{GROUP}/v1/{PLURAL}"
        figures = {
            "kubectl_get_s": median_time(repeat, lambda: kubectl_get(config, cache, n)),
            "kube_list_json_s": median_time(repeat, lambda: http_get(url, kube_path, n)),
            "kube_list_table_s": median_time(repeat, lambda: http_get(url, kube_path, n, TABLE, "rows")),
            "rest_list_s": median_time(repeat, lambda: http_get(url, f"/objects/{KIND.lower()}", n)),
        }
        load_after = os.getloadavg()
        return {
            "n": n,
            "created_s": round(created_s, 1),
            **{k: round(v, 3) for k, v in figures.items()},
            "kubectl_vs_rest": round(figures["kubectl_get_s"] / figures["rest_list_s"], 2),
            "kube_json_vs_rest": round(figures["kube_list_json_s"] / figures["rest_list_s"], 2),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="resources per multi-document apply")
    parser.add_argument("--parallel", type=int, default=4, help="applies in flight at once")
    args = parser.parse_args()
    result = one_run(args.n, args.repeat, args.batch, args.parallel)
    print(
        f"{args.n} resources created in {result['created_s']}s; median of {args.repeat}: "
        f"kubectl get -A {result['kubectl_get_s']:.2f}s, Kubernetes list JSON {result['kube_list_json_s']:.2f}s, "
        f"Table {result['kube_list_table_s']:.2f}s, ktx REST list {result['rest_list_s']:.2f}s "
        f"(kubectl/REST {result['kubectl_vs_rest']}x); load average {result['load_before']} -> "
        f"{result['load_after']}",
        flush=True,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
