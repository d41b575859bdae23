"""What the benchmarks share: the embedded stack (`ktx up` under a throw-away KTX_HOME on free ports), the CLI, applying
requests through the API, timing pushes to the state store, a stand-in container runtime, podman floors and figures."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import yaml

from cli.stack import free_port
from domain.layout import nested_dir, resource_nested_root
from tests.waiting import eventually_blocking

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"


def ktx(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ktx {' '.join(args)} exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def stack_env(home: Path, **extra: str) -> dict[str, str]:
    """Free ports, so a benchmark never meets a developer's own `ktx up` (or another benchmark's)."""
    return {
        **os.environ,
        "KTX_HOME": str(home),
        "KTX_API_PORT": str(free_port()),
        "KTX_TEMPORAL_PORT": str(free_port()),
        "KTX_UI_PORT": str(free_port()),
        **extra,
    }


@dataclass
class Stack:
    env: dict[str, str]
    home: Path
    api_url: str
    remote: Path
    pids: dict[str, int]


@contextmanager
def running_stack(**extra_env: str) -> Iterator[Stack]:
    """A fresh stack (own Temporal database, worker, API, state store), stopped and removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="ktx-bench-"))
    env = stack_env(home, **extra_env)
    try:
        ktx(env, "up")
        try:
            state = json.loads((home / "stack.json").read_text())
            yield Stack(env, home, state["api_url"], Path(state["state_store"]), state["pids"])
        finally:
            ktx(env, "down")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """VmHWM: the process's peak resident set so far (ru_maxrss only covers this process and waited-for children);
    `field="VmRSS"` for the current one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} for pid {pid}")


def cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds so far of a process (all its threads) and of its waited-for children (git, containers, ...)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {"own": (int(fields[11]) + int(fields[12])) / tick, "children": (int(fields[13]) + int(fields[14])) / tick}


def cpu_used(pids: dict[str, int], before: dict[str, dict[str, float]]) -> dict[str, float]:
    """CPU seconds each stack process (and, as `<name>_children`, its children) used since `before` = {name: cpu_s}."""
    used: dict[str, float] = {}
    for name, pid in pids.items():
        now = cpu_s(pid)
        used[name] = round(now["own"] - before[name]["own"], 2)
        used[f"{name}_children"] = round(now["children"] - before[name]["children"], 2)
    return used


def apply_documents(env: dict[str, str], documents: list[dict[str, Any]]) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli", "apply", "-f", "-"],
        input=yaml.safe_dump_all(documents),
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )


def install_promise(stack: Stack, document: dict[str, Any]) -> None:
    apply_documents(stack.env, [document])
    ktx(stack.env, "wait", "promise", document["metadata"]["name"], "--for=condition=Available", "--timeout=120s")


def names(n: int) -> list[str]:
    return [f"r{i:05d}" for i in range(n)]


def output_path(destination: str, promise: str, name: str, pipeline: str, file: str, namespace: str = "default") -> str:
    """Where a resource's pipeline output file lands in the state store (Kratix's nestedByMetadata layout)."""
    return f"{nested_dir(destination, resource_nested_root(namespace, promise, name, pipeline), '.')}/{file}"


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: a value that was really observed, not an interpolation between two."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


RESULTS = ROOT / "bench" / "results"


def summary(name: str, runs: list[dict[str, float]], **fields: Any) -> dict[str, Any]:
    """The JSON object a benchmark ends with: its name, the number of runs, the median over the runs of every figure
    they all carry (ratios to 0.01, everything else to 0.001), then `fields` (its size, labels, derived figures)."""
    med = medians(runs)
    return {
        "name": name,
        "runs": len(runs),
        **{key: round(value, 2 if "ratio" in key else 3) for key, value in med.items()},
        **fields,
    }


def report(result: dict[str, Any], stem: str | None = None) -> None:
    """Prints the result as the last line and keeps it as bench/results/<stem>.json (default: its name), the file
    scripts/bench_table.py builds the README's and docs' tables from."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem or result['name']}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, as every result states them (the machine is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


async def apply_all(url: str, documents: dict[str, dict[str, Any]]) -> tuple[dict[str, float], list[float]]:
    """Every document POSTed at once, one request each (as that many `kubectl apply`s would arrive): each one's start
    (wall clock) and how long the API took to accept it."""
    started: dict[str, float] = {}
    accepted: list[float] = []
    n = len(documents)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def one(name: str, document: dict[str, Any]) -> None:
            body = yaml.safe_dump(document)
            started[name] = time.time()
            response = await client.post("/apply", content=body, headers={"content-type": "application/yaml"})
            response.raise_for_status()
            accepted.append(time.time() - started[name])

        await asyncio.gather(*[one(name, document) for name, document in documents.items()])
    return started, accepted


def breakdown(url: str, kind: str, started: dict[str, float], done: dict[str, float]) -> dict[str, float]:
    """Medians of where each request's time went, from the container timings the platform records: apply -> its
    container starting (API, workflow start, pipeline queue), the container (including the runner's `podman rm` of a
    leftover), container exit -> file on main (output to artifacts, activity result, state-store write and push)."""
    before, inside, after = [], [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        for name in started:
            # The file reaches main before the run record reaches the memo (it is published after the write).
            runs = eventually_blocking(
                lambda: (
                    client.get(f"/objects/{kind.lower()}/{name}", params={"namespace": "default"})
                    .raise_for_status()
                    .json()["_ktx"]["runs"]
                ),
                timeout=60,
                what=f"{name}'s run record",
            )
            container = runs[-1]["containers"][0]
            end = container["started_at"] + container["duration_seconds"]
            before.append(container["started_at"] - started[name])
            inside.append(container["duration_seconds"])
            after.append(done[name] - end)
    return {
        "to_container_s": statistics.median(before),
        "container_s": statistics.median(inside),
        "to_commit_s": statistics.median(after),
    }


# `date +%s.%N` is the same wall clock as time.time() here; one append per ref update keeps lines whole.
POST_RECEIVE = """#!/bin/sh
while read old new ref; do echo "$(date +%s.%N) $new $ref" >> "$GIT_DIR/pushes.log"; done
"""


def stamp_pushes(remote: Path) -> None:
    """A post-receive hook in the state store logs every push as the remote takes it, so a figure is "a GitOps agent
    could now see it", not "status says so"."""
    hook = remote / "hooks" / "post-receive"
    hook.write_text(POST_RECEIVE)
    hook.chmod(0o755)


def landed(
    remote: Path, wanted: dict[str, str], under: str, since: float, timeout: float
) -> tuple[dict[str, float], int]:
    """When each key of `wanted` (path -> key; a key is done once all its paths are on main) first reached main, from
    the hook's log, and how many pushes after `since` that took. `under` bounds each `ls-tree` to the benchmark's
    files."""
    missing: dict[str, set[str]] = {}
    for path, key in wanted.items():
        missing.setdefault(key, set()).add(path)
    log = remote / "pushes.log"
    seen: dict[str, float] = {}
    read, pushes = 0, 0

    def scan() -> int:
        """Reads the pushes logged since the last scan; how many keys have reached main so far."""
        nonlocal read, pushes
        text = log.read_text() if log.exists() else ""
        complete = text[: text.rfind("\n") + 1]
        for line in complete[read:].splitlines():
            stamp, rev, ref = line.split()
            if ref != "refs/heads/main":
                continue
            pushes += float(stamp) >= since
            tree = set(
                subprocess.run(
                    ["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only", rev, "--", under],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
            )
            for key, paths in missing.items():
                if key not in seen and paths <= tree:
                    seen[key] = float(stamp)
        read = len(complete)
        return len(seen)

    # The times come from the hook's log, not from when a scan saw them, so the poll's pace does not skew them.
    eventually_blocking(
        scan,
        lambda done: done == len(missing),
        timeout=timeout,
        what=f"all {len(missing)} keys on main (count reached so far)",
        interval=0.02,
        max_interval=0.2,
    )
    return seen, pushes


def stub_runtime(directory: Path) -> Path:
    """The cheapest possible pipeline step: a stand-in for `podman` (KTX_CONTAINER_RUNTIME) that starts no container
    and writes one ConfigMap for the object into the output mount, so what is left is the orchestration around it.
    It reads the runner's arguments as the runner writes them: every option glued to its value, `--` before the
    image. While a file `hold` (seconds) is in `directory`, each step lasts that long and logs its start and end to
    `directory/steps.log` (see `peak_steps`), so the pipeline slots fill up and how many ran at once is observed."""
    path = directory / "stub-runtime"
    path.write_text("""#!/bin/sh
[ "$1" = run ] || exit 0  # `rm -f --ignore` of a leftover: there never is one
out= name=
while [ $# -gt 0 ]; do
  case "$1" in
    --volume=*:/kratix/output) out=${1#--volume=}; out=${out%:/kratix/output};;
    --env=KRATIX_OBJECT_NAME=*) name=${1#--env=KRATIX_OBJECT_NAME=};;
    --) break;;  # the image and its arguments: nothing of the runner's after this
  esac
  shift
done
dir=$(dirname "$0")
if [ -f "$dir/hold" ]; then  # one append per line keeps lines whole
  echo "$(date +%s.%N) 1 $name" >> "$dir/steps.log"; sleep "$(cat "$dir/hold")"
  echo "$(date +%s.%N) -1 $name" >> "$dir/steps.log"
fi
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: default\ndata:\n  owner: %s\n' \\
  "$name" "$name" > "$out/cm.yaml"
""")
    path.chmod(0o755)
    return path


def peak_steps(log: Path) -> tuple[int, int]:
    """From the stand-in runtime's steps.log: how many steps ran, and the most that were running at one moment."""
    events = sorted(
        (float(stamp), int(delta)) for stamp, delta, _ in (line.split() for line in log.read_text().splitlines())
    )
    running = peak = 0
    for _, delta in events:  # at one instant an end sorts before a start (-1 < 1): touching steps do not overlap
        running += delta
        peak = max(peak, running)
    return sum(1 for _, delta in events if delta == 1), peak


def podman_run(root: Path, image: str, env: dict[str, str], document: dict[str, Any], name: str) -> Path:
    """One container run as the podman runner starts it (same mounts, the Kratix env plus `env`); returns its output
    directory. For floors."""
    for d in ("input", "output", "metadata"):
        (root / d).mkdir(parents=True)
    (root / "input" / "object.yaml").write_text(yaml.safe_dump(document))
    args = [
        "podman",
        "run",
        "--rm",
        "--name",
        name,
        "-v",
        f"{root}/input:/kratix/input:ro",
        "-v",
        f"{root}/output:/kratix/output",
        "-v",
        f"{root}/metadata:/kratix/metadata",
    ]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    subprocess.run([*args, image], check=True, capture_output=True)
    return root / "output"


def kratix_env(promise: str, pipeline: str, name: str, namespace: str = "default") -> dict[str, str]:
    return {
        "KRATIX_WORKFLOW_ACTION": "configure",
        "KRATIX_WORKFLOW_TYPE": "resource",
        "KRATIX_PROMISE_NAME": promise,
        "KRATIX_PIPELINE_NAME": pipeline,
        "KRATIX_OBJECT_NAME": name,
        "KRATIX_OBJECT_NAMESPACE": namespace,
    }


def git_commit_push(clone: Path) -> None:
    """What any GitOps writer must do at least: one plain add, commit and push."""
    git = ["git", "-C", str(clone), "-c", "user.name=floor", "-c", "user.email=f@f"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "floor"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True, capture_output=True)


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


def kubectl_get(config: Path, cache: Path, plurals: list[str], n: int) -> None:
    """Real kubectl, `get <plural>[,<plural>...] -A` (the server-side Table), a new process as a user runs it."""
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(config), "--cache-dir", str(cache), "get", ",".join(plurals), "-A"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    # One header per kind listed, then one row per object.
    rows = [line for line in out.splitlines() if line and not line.startswith("NAMESPACE ")]
    assert len(rows) == n, f"kubectl printed {len(rows)} rows, expected {n}"


def interleaved_medians(repeat: int, actions: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Each action once per round, `repeat` rounds, median per action: a load that drifts during the run (the
    machine is shared) weighs on every figure alike instead of on whichever ran last."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}
