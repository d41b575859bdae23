"""100 concurrent Kubernetes watches on one API process: `.venv/bin/python bench/watchers.py [WATCHERS] [CHANGES]`.

On a fresh embedded stack (`ktx up`), a Promise without pipelines and one request of its API; then:
- the API process's CPU (seconds of CPU per second of wall time, from /proc) idle with no watch, idle with WATCHERS
  watches open, and while CHANGES label changes stream to them;
- each change's latency to each watcher: from the label change's response (the workflow has applied it) to the
  MODIFIED event arriving, median and p95, with 1 watcher and with WATCHERS;
- the floor for that latency, measured in the same run: from the same kind of change to a bare visibility query
  (`KtxResourceVersion > before`, asked in a tight loop by this process) first showing it. No design that reads
  visibility can beat it; the feed adds about half its poll interval on top, so the second floor is that half plus
  one bare visibility query.
Prints one line per figure and, last, one JSON object. The load average is printed too: the machine is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import percentile, running_stack  # noqa: E402
from service.change_feed import POLL_INTERVAL_S  # noqa: E402
from temporalio.client import Client  # noqa: E402
from tests.kratix_documents import GROUP, promise, resource  # noqa: E402
from tests.waiting import eventually  # noqa: E402

KIND, PLURAL = "Probe", "probes"
WATCH = f"/apis/{GROUP}/v1/namespaces/default/{PLURAL}"
IDLE_S = 10.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def cpu_rate(pid: int, seconds: float) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)  # the measured window itself, not a synchronisation
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


class Watcher:
    """One streaming watch; records when each MODIFIED event for the probe arrives, by the label value it carries."""

    def __init__(self, http: httpx.AsyncClient, since: str):
        self.http, self.since = http, since
        self.arrived: dict[str, float] = {}
        self.open = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        params = {"watch": "true", "resourceVersion": self.since, "allowWatchBookmarks": "true"}
        async with self.http.stream("GET", WATCH, params=params) as response:
            response.raise_for_status()
            self.open.set()
            async for line in response.aiter_lines():
                event = json.loads(line)
                if event["type"] == "MODIFIED":
                    step = (event["object"]["metadata"].get("labels") or {}).get("step")
                    if step and step not in self.arrived:
                        self.arrived[step] = time.monotonic()

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def label(http: httpx.AsyncClient, step: str) -> float:
    response = await http.post(
        f"/objects/{KIND.lower()}/probe/labels", params={"namespace": "default"}, json={"set": {"step": step}}
    )
    response.raise_for_status()
    return time.monotonic()


async def current_version(http: httpx.AsyncClient) -> str:
    response = await http.get(f"{WATCH}/probe")
    response.raise_for_status()
    return response.json()["metadata"]["resourceVersion"]


async def latencies(http: httpx.AsyncClient, watchers: list[Watcher], changes: int, prefix: str) -> list[float]:
    found = []
    for i in range(changes):
        step = f"{prefix}-{i}"
        made = await label(http, step)
        await eventually(
            lambda: all(step in w.arrived for w in watchers), timeout=60, what=f"{step} at every watcher", interval=0.01
        )
        found += [w.arrived[step] - made for w in watchers]
    return found


async def visibility_floor(client: Client, http: httpx.AsyncClient, changes: int) -> list[float]:
    """From a change's response to a bare visibility query first showing the probe's new version."""
    found = []
    for i in range(changes):
        before = int(await current_version(http))
        made = await label(http, f"floor-{i}")
        query = f'KtxResourceVersion > {before} AND KtxKind = "{KIND}"'
        await eventually(lambda: client.count_workflows(query), lambda c: c.count > 0, timeout=60, interval=0.005)
        found.append(time.monotonic() - made)
    return found


async def bare_query(client: Client, times: int) -> list[float]:
    found = []
    for _ in range(times):
        started = time.monotonic()
        [w async for w in client.list_workflows("KtxResourceVersion > 0")]
        found.append(time.monotonic() - started)
    return found


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(percentile(values, 0.95) * 1000, 1),
    }


async def bench(url: str, temporal: str, api_pid: int, watchers_n: int, changes: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=watchers_n + 10, max_keepalive_connections=watchers_n + 10)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, read=None), limits=limits) as http:
        for doc in (promise("probes", KIND), resource(KIND, "probe")):
            (await http.post("/apply", content=yaml.safe_dump(doc))).raise_for_status()
        await eventually(
            lambda: current_version(http),
            lambda v: v != "0",
            what="the probe published",
            ignoring=(httpx.HTTPStatusError,),
        )
        client = await Client.connect(temporal)
        floor_query = summary(await bare_query(client, 20))
        floor_visible = summary(await visibility_floor(client, http, changes))
        idle = await cpu_rate(api_pid, IDLE_S)

        one = Watcher(http, await current_version(http))
        await asyncio.wait_for(one.open.wait(), 30)
        single = summary(await latencies(http, [one], changes, "one"))
        await one.close()

        since = await current_version(http)
        watchers = [Watcher(http, since) for _ in range(watchers_n)]
        await asyncio.wait_for(asyncio.gather(*[w.open.wait() for w in watchers]), 60)
        idle_watching = await cpu_rate(api_pid, IDLE_S)
        before, started = cpu_seconds(api_pid), time.monotonic()
        many = summary(await latencies(http, watchers, changes, "many"))
        streaming = (cpu_seconds(api_pid) - before) / (time.monotonic() - started)
        for w in watchers:
            await w.close()
    return {
        "watchers": watchers_n,
        "changes": changes,
        "api_cpu_idle": round(idle, 4),
        "api_cpu_idle_with_watchers": round(idle_watching, 4),
        "api_cpu_streaming_changes": round(streaming, 4),
        "latency_1_watcher": single,
        f"latency_{watchers_n}_watchers": many,
        "floor_visibility_lag": floor_visible,
        "floor_bare_query": floor_query,
        # What polling visibility costs by design: half the feed's interval, on average, plus one query.
        "floor_polling_ms": round(POLL_INTERVAL_S / 2 * 1000 + floor_query["median_ms"], 1),
        "ratio_latency_vs_polling_floor": round(
            many["median_ms"] / (POLL_INTERVAL_S / 2 * 1000 + floor_query["median_ms"]), 2
        ),
        "ratio_latency_vs_visibility_floor": round(many["median_ms"] / max(floor_visible["median_ms"], 0.1), 2),
        "ratio_many_vs_one_watcher": round(many["median_ms"] / max(single["median_ms"], 0.1), 2),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def main() -> None:
    watchers_n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    changes = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with running_stack() as stack:
        temporal = f"127.0.0.1:{stack.env['KTX_TEMPORAL_PORT']}"
        result = asyncio.run(bench(stack.api_url, temporal, stack.pids["api"], watchers_n, changes))
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
