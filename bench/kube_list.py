"""`kubectl get <kind> -A` of N resources, one command: `.venv/bin/python bench/kube_list.py [--n 2000] [--repeat 5]`.

A fresh stack (`ktx up`) holding N resources of a Promise with an API and no workflows (nothing runs per resource,
so creating them is cheap and the stack is idle while lists are timed), created in multi-document applies. Then,
each timed `--repeat` times (median), in the same run:

- headline: real kubectl (`.venv/bin/kubectl get <plural> -A`, the server-side Table kubectl asks for), a new
  process each time, as a user runs it;
- the Kubernetes list route without kubectl: `GET /apis/<group>/<version>/<plural>` as JSON, and as the Table;
- the floor: the ktx REST list of the same N, `GET /objects/<kind>` (JSON), the route `ktx get` uses;
- its own floor: one visibility list of the same N running workflows with the raw client, in-process, memos decoded
  (bench/scale.py's), so what the REST list adds over reading Temporal (its continue-as-new runs, its memo
  decoding) is a ratio of this run;
- `kubectl describe` of one of them (its Events are selected from every object's by field selector).

Prints one line per figure, the load average before and after, and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import KIND, PROMISE, create_all, median_floor, running_of  # noqa: E402
from bench.stack import (  # noqa: E402
    KUBECTL,
    install_promise,
    interleaved_medians,
    kubeconfig,
    kubectl_get,
    load_average,
    names,
    running_stack,
)
from tests.kratix_documents import GROUP, promise, resource  # noqa: E402
from tests.waiting import eventually_blocking  # noqa: E402

PLURAL = KIND.lower() + "s"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def kubectl_describe(config: Path, cache: Path) -> None:
    """One resource's describe: its get, then its Events by field selector (involvedObject name, kind, uid)."""
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(config), "--cache-dir", str(cache), "describe", KIND.lower(), "r00000"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    assert "Events:" in out, out


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
        asyncio.run(create_all(url, [resource(KIND, name) for name in names(n)], batch, parallel))
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
        kubectl_get(config, cache, [PLURAL], n)  # discovery cached once, as on a user's machine after the first command
        load_before = load_average()
        kube_path = f"/apis/{GROUP}/v1/{PLURAL}"
        figures = interleaved_medians(
            repeat,
            {
                "kubectl_get_s": lambda: kubectl_get(config, cache, [PLURAL], n),
                "kube_list_json_s": lambda: http_get(url, kube_path, n),
                "kube_list_table_s": lambda: http_get(url, kube_path, n, TABLE, "rows"),
                "rest_list_s": lambda: http_get(url, f"/objects/{KIND.lower()}", n),
                "kubectl_describe_s": lambda: kubectl_describe(config, cache),
            },
        )
        address = json.loads((stack.home / "stack.json").read_text())["temporal_address"]
        floor_s = median_floor(repeat, address, running_of(KIND), n)
        load_after = load_average()
        return {
            "n": n,
            "created_s": round(created_s, 1),
            **{k: round(v, 3) for k, v in figures.items()},
            "kubectl_vs_rest": round(figures["kubectl_get_s"] / figures["rest_list_s"], 2),
            "kube_json_vs_rest": round(figures["kube_list_json_s"] / figures["rest_list_s"], 2),
            "visibility_list_s": round(floor_s, 3),
            "rest_vs_visibility": round(figures["rest_list_s"] / floor_s, 2),
            "load_before": load_before,
            "load_after": load_after,
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
        f"Table {result['kube_list_table_s']:.2f}s, ktx REST list {result['rest_list_s']:.2f}s, "
        f"kubectl describe {result['kubectl_describe_s']:.2f}s, raw visibility list {result['visibility_list_s']:.2f}s "
        f"(kubectl/REST {result['kubectl_vs_rest']}x, REST/visibility {result['rest_vs_visibility']}x); "
        f"load average {result['load_before']} -> "
        f"{result['load_after']}",
        flush=True,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
