"""Records the histories tests/unit/test_replay_recorded_histories.py replays. Run it from a checkout of the code
*before* a change to a workflow's commands (a `git worktree` of the previous commit, with this venv):

    cd ../old-checkout && /path/to/.venv/bin/python /path/to/tests/histories/record.py SUFFIX OUT_DIR

On a throw-away dev server it installs the example Promise, requests two resources, changes both specs and deletes
one, then writes the Promise's, both resources', the Destination's and the state store's histories as
`<what>-SUFFIX.json` into OUT_DIR. A checkout that serves PromiseReleases also installs a Promise through one
(served from a local HTTP server), deletes that Promise so the release installs it again, and deletes the release.
A checkout that serves DryRuns also previews a change to a request onto a dry-run Destination, then deletes it.
The checkout's own code runs (its directory comes first on sys.path), so the recording is what that version of the
workflows did.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

CHECKOUT = Path.cwd()
sys.path.insert(0, str(CHECKOUT))

from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from tests.conftest import TEST_CONFIG, temporal_cli  # noqa: E402
from worker.main import build_worker, ensure_search_attributes  # noqa: E402
from worker.settings import Settings  # noqa: E402

# Modules moved by the layout of issue 21 (activities/ by concern, the service out of api/): a recording is made from
# a checkout on either side of the move.
try:
    from activities.platform.search_attributes import ALL as SEARCH_ATTRIBUTES  # noqa: E402
    from activities.stores.secrets import secret_store_for  # noqa: E402
    from service.platform import Platform  # noqa: E402
except ImportError:
    from activities.secret_store import secret_store_for  # type: ignore[no-redef]  # noqa: E402
    from api.platform import Platform  # type: ignore[no-redef]  # noqa: E402
    from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES  # type: ignore[no-redef]  # noqa: E402

EXAMPLE = CHECKOUT / "examples" / "promises" / "app-config"
TIMEOUT_S = 180


def _bootstrap(remote: Path) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "GitStateStore",
            "metadata": {"name": "default"},
            "spec": {"url": str(remote), "branch": "main"},
        },
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Destination",
            "metadata": {"name": "dev", "labels": {"environment": "dev"}},
            "spec": {"path": "dev", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
        },
    ]


def _bare_repo(where: Path) -> Path:
    remote = where / "state.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    seed = where / "seed"
    subprocess.run(["git", "clone", "-q", str(remote), str(seed)], check=True, capture_output=True)
    (seed / "README.md").write_text("state store\n")
    git = ["git", "-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["add", "."], ["commit", "-q", "-m", "init"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run([*git, *args], check=True)
    return remote


async def _reconciled(platform: Platform, name: str, generation: int) -> dict[str, Any]:
    # Polled to a deadline; tests/waiting.py is not in every checkout this records from.
    for _ in range(int(TIMEOUT_S / 0.2)):
        obj = await platform.get("appconfig", name)
        status = obj.get("status") or {}
        done = any(c.get("type") == "Reconciled" and c.get("status") == "True" for c in status.get("conditions", []))
        if done and status.get("observedGeneration") == generation:
            return obj
        await asyncio.sleep(0.2)
    raise TimeoutError(f"appconfig/{name} did not reach Reconciled at generation {generation} in {TIMEOUT_S}s")


RELEASED = yaml.safe_dump(
    {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "released", "labels": {"kratix.io/promise-version": "v1.0.0"}},
        "spec": {},
    }
).encode()


class _PromiseHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(RELEASED)))
        self.end_headers()
        self.wfile.write(RELEASED)

    def log_message(self, *args: object) -> None:
        pass


async def _until(read: Any, what: str) -> Any:
    for _ in range(int(TIMEOUT_S / 0.2)):
        try:
            found = await read()
        except Exception:  # noqa: BLE001 - not there yet (NotFound), looked at again until the deadline
            found = None
        if found:
            return found
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what} not reached in {TIMEOUT_S}s")


async def _record_release(platform: Platform) -> str | None:
    """A release's whole life: version adopted, Promise installed, deleted and installed again, release deleted."""
    try:
        import workflows.promise_release  # noqa: F401 - only to know this checkout has it
    except ImportError:
        return None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PromiseHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/promise.yaml"
        await platform.apply(
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "PromiseRelease",
                "metadata": {"name": "rel"},
                "spec": {"sourceRef": {"type": "http", "url": url}},
            }
        )

        async def installed_uid() -> str | None:
            release = await platform.get("promiserelease", "rel")
            done = any(c.get("status") == "True" for c in (release.get("status") or {}).get("conditions", []))
            promise = await platform.get("promise", "released")
            meta = promise.get("metadata") or {}
            return meta.get("uid") if done and "deletionTimestamp" not in meta else None

        first = await _until(installed_uid, "release installed")
        await platform.delete("promise", "released")
        await _until(lambda: _other_uid(installed_uid, first), "promise installed again")
        workflow_id = await platform.delete("promiserelease", "rel")
        assert await platform.wait_deleted(workflow_id, TIMEOUT_S)
        return workflow_id
    finally:
        server.shutdown()
        server.server_close()


async def _other_uid(read: Any, first: str) -> bool:
    uid = await read()
    return uid is not None and uid != first


async def _record_dry_run(platform: Platform, request: dict[str, Any]) -> str | None:
    """A DryRun's whole life: the preview diffed and written to a dry-run Destination, then deleted."""
    try:
        import workflows.dry_run  # noqa: F401 - only to know this checkout has it
    except ImportError:
        return None
    await platform.apply(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "Destination",
            "metadata": {"name": "preview", "labels": {"kratix.io/dry-run": "true"}},
            "spec": {"path": "preview", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
        }
    )
    await platform.apply(
        {
            "apiVersion": "platform.kratix.io/v1alpha1",
            "kind": "DryRun",
            "metadata": {"name": "preview", "namespace": "default"},
            "spec": {
                "promiseRef": {"name": "app-config"},
                "resourceRequestRef": {"name": "checkout"},
                "resource": {**request["spec"], "replicas": 5},
            },
        }
    )

    async def completed() -> bool:
        status = (await platform.get("dryrun", "preview")).get("status") or {}
        return any(c.get("type") == "Completed" and c.get("status") == "True" for c in status.get("conditions", []))

    await _until(completed, "dry run completed")
    workflow_id = await platform.delete("dryrun", "preview")
    assert await platform.wait_deleted(workflow_id, TIMEOUT_S)
    return workflow_id


async def record(suffix: str, out: Path) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
    )
    try:
        with tempfile.TemporaryDirectory() as scratch:
            client: Client = env.client
            await ensure_search_attributes(client)
            settings = Settings(home=Path(scratch) / "home", task_queue="record", platform=TEST_CONFIG)
            async with build_worker(client, settings):
                platform = Platform(client, settings.task_queue, secret_store_for(settings))
                for doc in _bootstrap(_bare_repo(Path(scratch))):
                    await platform.apply(doc)
                await platform.apply(yaml.safe_load((EXAMPLE / "promise.yaml").read_text()))
                await platform.wait_condition("promise", "app-config", "default", "Available", timeout=TIMEOUT_S)
                request = yaml.safe_load((EXAMPLE / "resource-request.yaml").read_text())
                for name in ("checkout", "gone"):
                    await platform.apply({**request, "metadata": {**request["metadata"], "name": name}})
                    await _reconciled(platform, name, 1)
                    changed = {
                        **request,
                        "metadata": {**request["metadata"], "name": name},
                        "spec": {**request["spec"], "replicas": 3},
                    }
                    await platform.apply(changed)
                    await _reconciled(platform, name, 2)
                ids = {
                    "promise": (await platform.get("promise", "app-config"))["_ktx"]["workflowId"],
                    "resource": (await platform.get("appconfig", "checkout"))["_ktx"]["workflowId"],
                    "deleted-resource": (await platform.get("appconfig", "gone"))["_ktx"]["workflowId"],
                    "destination": (await platform.get("destination", "dev"))["_ktx"]["workflowId"],
                    "state-store": (await platform.get("gitstatestore", "default"))["_ktx"]["workflowId"],
                }
                assert await platform.wait_deleted(await platform.delete("appconfig", "gone"), TIMEOUT_S)
                release = await _record_release(platform)
                if release is not None:
                    ids["promise-release"] = release
                dry_run = await _record_dry_run(platform, request)
                if dry_run is not None:
                    ids["dry-run"] = dry_run
                for what, workflow_id in ids.items():
                    history = await client.get_workflow_handle(workflow_id).fetch_history()
                    path = out / f"{what}-{suffix}.json"
                    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                    print(f"{path}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1], Path(sys.argv[2]).resolve()))
