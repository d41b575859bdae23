"""What a `ktx` command costs before the platform answers: `.venv/bin/python bench/cli_start.py [--runs 15]`.

`ktx get promises` against a local HTTP server that answers its one request with an empty list, so the time is the
CLI's own (interpreter, imports, argument parsing, one HTTP round trip, the table), not the platform's. The floor
is the least any Python client of that API pays: a fresh interpreter that imports httpx and makes the same GET. The
two alternate run by run, so neither always meets a warmer machine. Wall and CPU (user + system of the child) per
run; the result keeps the medians and the ratio of the CLI's to the floor's, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import load_average, report  # noqa: E402

FLOOR = "import sys, httpx; httpx.get(sys.argv[1] + '/objects/promises', params={'namespace': 'default'}).json()"


class _EmptyList(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"[]"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=60)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyList)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTX_")} | {"KTX_API_URL": url}
    commands = {
        "ktx": [sys.executable, "-m", "cli", "get", "promises"],
        "floor": [sys.executable, "-c", FLOOR, url],
    }
    load_before = load_average()[0]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for run in range(args.runs):
        order = list(commands) if run % 2 == 0 else list(reversed(commands))
        for name in order:
            samples[name].append(_timed(commands[name], env))
    server.shutdown()
    wall = {name: statistics.median(w for w, _ in s) for name, s in samples.items()}
    cpu = {name: statistics.median(c for _, c in s) for name, s in samples.items()}
    report(
        {
            "name": "cli_start",
            "n": 1,
            "measured": "`ktx get promises` (empty answer) vs a fresh python importing httpx for the same GET",
            "runs": args.runs,
            "wall_s": round(wall["ktx"], 4),
            "floor_s": round(wall["floor"], 4),
            "ratio": round(wall["ktx"] / wall["floor"], 2),
            "cpu_s": round(cpu["ktx"], 4),
            "floor_cpu_s": round(cpu["floor"], 4),
            "cpu_ratio": round(cpu["ktx"] / cpu["floor"], 2),
            "load_1m_before": load_before,
            "load_1m_after": load_average()[0],
        }
    )


if __name__ == "__main__":
    main()
