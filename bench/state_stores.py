"""State-store write throughput, one command:
`.venv/bin/python bench/state_stores.py [--n 1000] [--runs 3] [--store git|s3|both]`.

N resources' outputs (one ConfigMap each, in Kratix's nestedByMetadata layout) are written concurrently through the
platform's state-store activity, as N resource workflows finishing together would; the writer batches them.
Floors, measured in the same run on the same server:
- Git: one plain `git add -A && git commit && git push` of the same files in a fresh clone of the same remote
  (served by `git daemon` on loopback).
- S3: plain boto3 PUTs of the same objects, 16 in parallel (the writer's own parallelism), on SeaweedFS.
Prints one line per store and, last, one JSON object: the first store's figures as the headline (Git with
`--store both`), every store's under `results`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.artifacts.store import ArtifactStore  # noqa: E402
from activities.stores.secrets import SecretStore  # noqa: E402
from activities.stores.state_stores import StateStoreActivities, StoreTarget, WriteStateStoreInput  # noqa: E402
from activities.stores.writes import GroupWrite  # noqa: E402
from domain.documents import BucketStateStoreSpec, GitStateStoreSpec, SecretRef  # noqa: E402
from domain.layout import Slot, nested_dir, resource_nested_root  # noqa: E402
from tests.servers.git_servers import GitDaemon, bare_repo  # noqa: E402
from tests.servers.s3_server import WRITER, SeaweedS3  # noqa: E402


def outputs(n: int, run: int) -> list[tuple[str, str]]:
    """(directory, content) of each resource's one file; `run` changes the content so every run really writes."""
    return [
        (
            nested_dir("dev", resource_nested_root("default", "bench", f"r{i:05d}", "write"), "."),
            f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r{i:05d}\ndata:\n  run: "{run}"\n',
        )
        for i in range(n)
    ]


async def platform_writes(stores: StateStoreActivities, target: StoreTarget, files: list[tuple[str, str]]) -> list[str]:
    requests = [
        WriteStateStoreInput(
            store=target,
            message=f"Update from: bench/{d}",
            replace=[GroupWrite(slot=Slot(path=d), inline={"cm.yaml": text})],
        )
        for d, text in files
    ]
    results = await asyncio.gather(*[stores.write_state_store(r) for r in requests])
    errors = [r.error for r in results if r.error]
    assert not errors, errors[:3]
    return [r.version_id for r in results]


def commits(remote: Path) -> int:
    return int(
        subprocess.run(
            ["git", "--git-dir", str(remote), "rev-list", "--count", "main"], check=True, capture_output=True, text=True
        ).stdout
    )


def git_floor(url: str, work: Path, files: list[tuple[str, str]]) -> float:
    subprocess.run(["git", "clone", "-q", "--depth=1", url, str(work)], check=True, capture_output=True)
    started = time.perf_counter()
    for directory, text in files:
        target = work / directory / "cm.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git = ["git", "-C", str(work), "-c", "user.name=floor", "-c", "user.email=f@f"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "floor"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True, capture_output=True)
    return time.perf_counter() - started


def bench_git(n: int, runs: int, tmp: Path) -> dict[str, object]:
    walls, floors, made = [], [], []
    tmp.mkdir(parents=True)
    with GitDaemon(tmp) as daemon:
        for run in range(runs):
            ours = bare_repo(tmp, f"ours-{run}.git")
            theirs = bare_repo(tmp, f"floor-{run}.git")
            stores = StateStoreActivities(
                ArtifactStore(tmp / "artifacts"), tmp / f"cache-{run}", SecretStore(tmp / "secrets")
            )
            target = StoreTarget(kind="GitStateStore", name="bench", git=GitStateStoreSpec(url=daemon.url(ours.name)))
            before = commits(ours)
            started = time.perf_counter()
            asyncio.run(platform_writes(stores, target, outputs(n, run)))
            walls.append(time.perf_counter() - started)
            made.append(commits(ours) - before)
            floors.append(git_floor(daemon.url(theirs.name), tmp / f"floor-work-{run}", outputs(n, run)))
    wall, floor = statistics.median(walls), statistics.median(floors)
    return {
        "name": "state_store_git",
        "n": n,
        "runs": runs,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "ratio": round(wall / floor, 2),
        "commits": int(statistics.median(made)),
        "kratix_commits": n,
        "writes_per_s": round(n / wall, 1),
    }


def s3_floor(client, bucket: str, files: list[tuple[str, str]]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(lambda f: client.put_object(Bucket=bucket, Key=f"floor/{f[0]}/cm.yaml", Body=f[1].encode()), files)
        )
    return time.perf_counter() - started


def bench_s3(n: int, runs: int, tmp: Path) -> dict[str, object]:
    server = SeaweedS3(tmp / "seaweedfs").start()
    try:
        secrets = SecretStore(tmp / "secrets")
        secrets.put("default", "s3", {"accessKeyID": WRITER[0].encode(), "secretAccessKey": WRITER[1].encode()})
        client = server.client()
        walls, floors, unchanged = [], [], []
        for run in range(runs):
            bucket = f"bench-{run}"
            client.create_bucket(Bucket=bucket)
            stores = StateStoreActivities(ArtifactStore(tmp / "artifacts"), tmp / f"cache-s3-{run}", secrets)
            spec = BucketStateStoreSpec(
                bucket_name=bucket,
                endpoint=server.endpoint,
                insecure=True,
                secret_ref=SecretRef(name="s3", namespace="default"),
            )
            target = StoreTarget(kind="BucketStateStore", name="bench", bucket=spec)
            started = time.perf_counter()
            asyncio.run(platform_writes(stores, target, outputs(n, run)))
            walls.append(time.perf_counter() - started)
            # The same outputs again (a drift re-sync with nothing drifted): nothing is uploaded.
            started = time.perf_counter()
            asyncio.run(platform_writes(stores, target, outputs(n, run)))
            unchanged.append(time.perf_counter() - started)
            floors.append(s3_floor(client, bucket, outputs(n, run)))
    finally:
        server.stop()
    wall, floor = statistics.median(walls), statistics.median(floors)
    return {
        "name": "state_store_s3",
        "n": n,
        "runs": runs,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "ratio": round(wall / floor, 2),
        "unchanged_rewrite_s": round(statistics.median(unchanged), 3),
        "writes_per_s": round(n / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=["git", "s3", "both"], default="both")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="ktx-bench-stores-") as tmp:
        if args.store in ("git", "both"):
            results.append(bench_git(args.n, args.runs, Path(tmp) / "git"))
            r = results[-1]
            print(
                f"git: {args.n} writes in {r['wall_s']}s with {r['commits']} commits (Kratix: {args.n}); "
                f"floor (one plain commit+push) {r['floor_s']}s; ratio {r['ratio']}x"
            )
        if args.store in ("s3", "both"):
            results.append(bench_s3(args.n, args.runs, Path(tmp) / "s3"))
            r = results[-1]
            print(
                f"s3: {args.n} writes in {r['wall_s']}s; floor (plain boto3 PUTs) {r['floor_s']}s; "
                f"ratio {r['ratio']}x; "
                f"unchanged re-write {r['unchanged_rewrite_s']}s"
            )
    headline = {k: results[0][k] for k in ("n", "runs", "wall_s", "floor_s", "ratio")}
    print(json.dumps({"name": "state_stores", **headline, "store": results[0]["name"], "results": results}))


if __name__ == "__main__":
    main()
