"""`ktx diff` of a one-field change to a compound request: `.venv/bin/python bench/compound_diff.py [--runs 5]`.

On a fresh stack with a platform Destination and tests/integration/test_compound_dry_run.py's three Promises
(golden-path asks for a Database, which asks for a Backup), the `shop` request Reconciled and its Database component
with it: `ktx diff -f` of the request with `spec.size` changed (a CLI process each time, exit code 1: three DryRuns
in a tree, each running its pipeline), median of `--runs`, against a floor measured in the same run: `ktx test
pipeline` of golden-path on the same changed request (its one pipeline through the same runner, with no stack).
Prints one line per figure and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.diff import timed  # noqa: E402
from bench.stack import ROOT, ktx, percentile, running_stack  # noqa: E402
from tests.integration.test_compound_dry_run import compound_promises  # noqa: E402
from tests.kratix_documents import resource  # noqa: E402


def destination(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict:
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Destination",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"path": name, "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="ktx-bench-compound-diff-"))
    setup = work / "setup.yaml"
    promises = compound_promises()
    setup.write_text(
        yaml.safe_dump_all(
            [
                destination("worker-1", {"environment": "dev"}, {}),
                destination("platform", {"environment": "platform"}, {"ktx.io/platform-destination": "true"}),
                *promises,
            ]
        )
    )
    (work / "golden-path.yaml").write_text(yaml.safe_dump(promises[-1]))
    (work / "shop.yaml").write_text(yaml.safe_dump(resource("GoldenPath", "shop", {"size": "small"})))
    changed = work / "shop-large.yaml"
    changed.write_text(yaml.safe_dump(resource("GoldenPath", "shop", {"size": "large"})))
    with running_stack() as stack:
        ktx(stack.env, "apply", "-f", str(setup))
        ktx(stack.env, "wait", "promise", "golden-path", "--for=condition=Available", "--timeout=120s")
        ktx(stack.env, "apply", "-f", str(work / "shop.yaml"))
        ktx(stack.env, "wait", "goldenpath", "shop", "--for=condition=Reconciled", "--timeout=120s")
        ktx(stack.env, "wait", "database", "shop-db", "--for=condition=Reconciled", "--timeout=120s")
        shown = subprocess.run(
            [sys.executable, "-m", "cli", "diff", "-f", str(changed)], env=stack.env, capture_output=True, text=True
        ).stdout
        print(shown)  # the compound diff itself, components included, once
        diffs, floors = [], []
        for _ in range(args.runs):
            diffs.append(timed(stack.env, "diff", "-f", str(changed), expect=1))
            test = ("test", "pipeline", str(work / "golden-path.yaml"), "--input", str(changed))
            floors.append(timed(stack.env, *test, expect=0))
    diff, floor = statistics.median(diffs), statistics.median(floors)
    load = os.getloadavg()[0]
    print(f"ktx diff (compound, one field) median {diff:6.3f} s   runs {[round(t, 3) for t in diffs]}")
    print(f"floor: ktx test pipeline       median {floor:6.3f} s   runs {[round(t, 3) for t in floors]}")
    print(f"ratio diff / floor             {diff / floor:6.2f}x   load average {load:.1f}")
    print(
        json.dumps(
            {
                "name": "compound_diff",
                "n": 3,
                "runs": args.runs,
                "wall_s": round(diff, 3),
                "floor_s": round(floor, 3),
                "ratio": round(diff / floor, 2),
                "p50_s": round(diff, 3),
                "p95_s": round(percentile(diffs, 0.95), 3),
                "load_1m": round(load, 1),
                "latency": "ktx diff process, start to exit",
            }
        )
    )


if __name__ == "__main__":
    main()
