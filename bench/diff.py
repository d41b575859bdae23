"""`ktx diff` of a one-field change to a request: `.venv/bin/python bench/diff.py [--runs 5]`.

On a fresh stack with the example Promise and its `checkout` request Reconciled, `ktx diff -f` of the request with
`spec.size` changed (a CLI process each time, exit code 1), median of `--runs`, against a floor measured in the same
run: `ktx test pipeline` of the same Promise and changed request (the same pipeline through the same runner, with no
stack, no DryRun and no diff). Prints one line per figure and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import ROOT, ktx, percentile, running_stack  # noqa: E402

EXAMPLE = ROOT / "examples" / "promises" / "app-config"


def timed(env: dict[str, str], *args: str, expect: int) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != expect:
        raise RuntimeError(f"ktx {' '.join(args)} exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)
    request = yaml.safe_load((EXAMPLE / "resource-request.yaml").read_text())
    request["spec"]["size"] = "large"
    changed = Path(tempfile.mkdtemp(prefix="ktx-bench-diff-")) / "checkout-large.yaml"
    changed.write_text(yaml.safe_dump(request))
    with running_stack() as stack:
        ktx(stack.env, "apply", "-f", str(EXAMPLE / "promise.yaml"))
        ktx(stack.env, "apply", "-f", str(EXAMPLE / "resource-request.yaml"))
        ktx(stack.env, "wait", "appconfig", "checkout", "--for=condition=Reconciled", "--timeout=120s")
        # Interleaved, so both see the same machine load.
        diffs, floors = [], []
        for _ in range(args.runs):
            diffs.append(timed(stack.env, "diff", "-f", str(changed), expect=1))
            floors.append(
                timed(stack.env, "test", "pipeline", str(EXAMPLE / "promise.yaml"), "--input", str(changed), expect=0)
            )
    diff, floor = statistics.median(diffs), statistics.median(floors)
    print(f"ktx diff (one-field change)    median {diff:6.3f} s   runs {[round(t, 3) for t in diffs]}")
    print(f"floor: ktx test pipeline       median {floor:6.3f} s   runs {[round(t, 3) for t in floors]}")
    print(f"ratio diff / floor             {diff / floor:6.2f}x")
    print(
        json.dumps(
            {
                "name": "diff",
                "n": 1,
                "runs": args.runs,
                "wall_s": round(diff, 3),
                "floor_s": round(floor, 3),
                "ratio": round(diff / floor, 2),
                "p50_s": round(diff, 3),
                "p95_s": round(percentile(diffs, 0.95), 3),
                "latency": "ktx diff process, start to exit",
            }
        )
    )


if __name__ == "__main__":
    main()
