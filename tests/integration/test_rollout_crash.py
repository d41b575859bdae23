"""A worker killed mid-group (the way a node dies: SIGKILL, pipelines in flight) and replaced: the rollout carries on
from its history, re-binding every request exactly once, none skipped, never over its limit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from activities.stores.secrets import secret_store_for
from service.platform import Platform
from tests.conftest import fresh_namespace
from tests.integration.test_faults import WorkerProcess, namespace_client
from tests.integration.test_rollouts import KIND, fleet, on_version, peak, phase, plan, v2_runs, writer
from tests.kratix_documents import eventually, get
from workflows.upgrade_records import REBIND_SIGNAL
from worker.settings import Settings

PINNED = {"KTX_RESOURCE_BINDING_VERSION_STRATEGY": "pinned"}


async def test_a_worker_killed_mid_group_upgrades_each_request_once(
    temporal_env, tmp_path: Path, git_remote: Path, pipeline_images
) -> None:
    address = temporal_env.client.service_client.config.target_host
    namespace = await fresh_namespace(temporal_env.client)
    client = await namespace_client(address, namespace)
    platform = Platform(client, f"ktx-{namespace}", secret_store_for(Settings(home=tmp_path / "api")))
    first = await WorkerProcess(address, namespace, tmp_path / "first", **PINNED).start()
    second = WorkerProcess(address, namespace, tmp_path / "second", **PINNED)
    names = [f"r{i}" for i in range(6)]
    try:
        await fleet(platform, git_remote, {"team-a": names}, writer("write-v2", SLEEP="3"))
        await platform.create_rollout(plan(maxConcurrent=2, groups=[{"name": "all", "namespaces": ["team-a"]}]))
        # Mid-group: some done, some running, some still to start.
        await eventually(
            lambda: platform.rollout("db-v2"),
            lambda o: (
                (o["status"].get("groups") or [{}])[0].get("counts", {}).get("Succeeded", 0) >= 1
                and o["status"].get("running")
            ),
            timeout=180,
            what="the rollout mid-group",
        )
        first.kill()
        await second.start()
        # A write the dead worker had started is retried once its 5-minute start-to-close timeout passes (state-store
        # writes do not heartbeat), so the wait allows for that beside the pipelines' own 30 s heartbeat.
        done = await phase(platform, "db-v2", "Succeeded", timeout=600)
    finally:
        first.stop()
        second.stop()
    assert done["status"]["groups"][0]["counts"] == {"Succeeded": 6}
    # Counted where they land: the plan sends its re-binds by activity, which a dead worker's retry repeats, and
    # Temporal drops a repeat by its request ID.
    rebinds: Counter[str] = Counter()
    for name in names:
        history = await client.get_workflow_handle(f"resource/db/team-a/{name}").fetch_history()
        rebinds[name] = sum(
            1
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
            and e.workflow_execution_signaled_event_attributes.signal_name == REBIND_SIGNAL
        )
    assert rebinds == Counter({n: 1 for n in names})  # each once, none skipped
    runs = []
    for name in names:
        await on_version(platform, "team-a", name, "v2")
        obj = await get(platform, KIND, name, "team-a")
        assert len(v2_runs(obj)) == 1, obj["_ktx"]["runs"]
        runs += v2_runs(obj)
    assert peak(runs) <= 2
