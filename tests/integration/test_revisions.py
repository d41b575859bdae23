"""Kratix's PromiseRevisions and ResourceBindings (its system tests 1.10 and 1.11) on a real Temporal server, podman
pipelines and a Git state store: requests pinned to a version stay exactly as they are while floating ones follow
the Promise; editing a binding upgrades its request; a failed version waits for the manual-reconciliation label."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio import workflow
from temporalio.worker import Worker

from domain.errors import Conflict, InvalidDocument, NotFound
from domain.naming import resource_workflow_id
from domain.revisions import binding_name, revision_name
from service.platform import Platform
from tests.conftest import read_remote, remote_files
from tests.integration.test_gitops_manifests_api import api, run_cli  # noqa: F401  (api: the fixture)
from tests.integration.test_resource_lifecycle import example, store_and_destination
from tests.kratix_documents import condition
from tests.waiting import eventually
from workflows.upgrade_records import REBIND_SIGNAL, UPGRADE_OUTCOME_SIGNAL, RebindRequest, UpgradeOutcome

PROMISE = "app-config"


def promise_at(version: str, log_level: str = "info", extra_required: str | None = None) -> dict[str, Any]:
    promise = example("promise.yaml")
    promise["metadata"]["labels"]["kratix.io/promise-version"] = version
    container = promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]
    container["env"] = [{"name": "DEFAULT_LOG_LEVEL", "value": log_level}]
    if extra_required:
        spec = promise["spec"]["api"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["required"] = [*spec["required"], extra_required]
        spec["properties"][extra_required] = {"type": "string"}
    return promise


def request(name: str) -> dict[str, Any]:
    document = example("resource-request.yaml")
    document["metadata"]["name"] = name
    return document


def configmap_path(name: str) -> str:
    return f"local/resources/default/{PROMISE}/{name}/render/5058f/configmap.yaml"


def files_of(remote: Path, name: str) -> dict[str, str]:
    prefix = f"local/resources/default/{PROMISE}/{name}/"
    return {f: read_remote(remote, f) for f in remote_files(remote) if f.startswith(prefix)}


async def binding_of(platform: Platform, name: str) -> dict[str, Any]:
    return await platform.get("resourcebinding", binding_name(PROMISE, name), "default")


async def edit_binding(platform: Platform, name: str, version: str, labels: dict[str, str] | None = None) -> str:
    binding = copy.deepcopy(await binding_of(platform, name))
    binding["spec"]["version"] = version
    if labels:
        binding["metadata"]["labels"].update(labels)
    return (await platform.apply(binding)).action


async def at_version(platform: Platform, name: str, version: str) -> dict[str, Any]:
    return await eventually(
        lambda: platform.get("appconfig", name, "default"),
        lambda o: o["status"].get("promiseVersion") == version and condition(o, "Reconciled").get("status") == "True",
        timeout=120,
        what=f"{name} reconciled at {version}",
    )


async def install(platform: Platform, remote: Path, promise: dict[str, Any]) -> None:
    for doc in store_and_destination(remote):
        await platform.apply(doc)
    await platform.apply(promise)
    await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=120)


async def test_pinned_requests_stay_while_floating_ones_follow_and_a_binding_edit_upgrades(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise_at("v1"))
    for name in ("floating", "pinned"):
        await platform.apply(request(name))
        await at_version(platform, name, "v1")

    # One revision, latest; one binding per request, floating on `latest` (the default strategy).
    revisions = await platform.list("promiserevisions")
    assert [(r["metadata"]["name"], r["spec"]["version"], r["status"]) for r in revisions] == [
        (revision_name(PROMISE, "v1"), "v1", {"latest": True})
    ]
    assert revisions[0]["metadata"]["labels"]["kratix.io/latest-revision"] == "true"
    assert revisions[0]["spec"]["promiseSpec"]["api"]["spec"]["names"]["kind"] == "AppConfig"
    binding = await binding_of(platform, "pinned")
    assert binding["spec"] == {
        "version": "latest",
        "promiseRef": {"name": PROMISE},
        "resourceRef": {"name": "pinned", "namespace": "default"},
    }
    assert binding["status"]["lastAppliedVersion"] == "v1"
    assert "conditions" not in binding["status"]  # a fresh request records no upgrade

    assert await edit_binding(platform, "pinned", "v1") == "configured"
    pinned_files = files_of(git_remote, "pinned")
    assert pinned_files

    # v2 changes what the pipeline writes: the floating request follows, the pinned one keeps its files byte for byte.
    await platform.apply(promise_at("v2", log_level="debug"))
    floating = await at_version(platform, "floating", "v2")
    assert floating["status"]["resourceBindingVersion"] == "latest"
    assert yaml.safe_load(read_remote(git_remote, configmap_path("floating")))["data"]["logLevel"] == "debug"
    pinned = await platform.get("appconfig", "pinned", "default")
    assert (pinned["status"]["promiseVersion"], pinned["status"]["resourceBindingVersion"]) == ("v1", "v1")
    assert files_of(git_remote, "pinned") == pinned_files
    revisions = {r["spec"]["version"]: r for r in await platform.list("promiserevisions")}
    assert {v: r["status"].get("latest", False) for v, r in revisions.items()} == {"v1": False, "v2": True}
    # The old revision keeps the spec it had.
    old_env = revisions["v1"]["spec"]["promiseSpec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"]
    assert old_env[0]["env"] == [{"name": "DEFAULT_LOG_LEVEL", "value": "info"}]

    # Editing the binding's version upgrades the request on that revision.
    assert await edit_binding(platform, "pinned", "v2") == "configured"
    upgraded = await at_version(platform, "pinned", "v2")
    assert upgraded["status"]["resourceBindingVersion"] == "v2"
    assert yaml.safe_load(read_remote(git_remote, configmap_path("pinned")))["data"]["logLevel"] == "debug"
    binding = await eventually(
        lambda: binding_of(platform, "pinned"),
        lambda b: condition(b, "UpgradeSucceeded").get("reason") == "UpgradeComplete",
        timeout=60,
        what="the binding's upgrade complete",
    )
    assert binding["status"]["lastAppliedVersion"] == "v2"
    assert condition(binding, "UpgradeSucceeded")["message"] == "Resource is at version v2"
    reasons = [e["reason"] for e in upgraded["_ktx"]["events"]]
    assert "ResourceBindingVersionUpdated" in reasons

    # The latest revision cannot be deleted; an older one can, and takes the requests pinned to it along.
    with pytest.raises(Conflict, match="latest"):
        await platform.delete("promiserevision", revision_name(PROMISE, "v2"))
    with pytest.raises(NotFound):
        await platform.delete("promiserevision", "no-such-revision")


async def test_a_binding_to_a_version_the_request_does_not_fit_is_refused_naming_the_field(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise_at("v1"))
    await platform.apply(request("checkout"))
    await at_version(platform, "checkout", "v1")
    await edit_binding(platform, "checkout", "v1")
    await platform.apply(promise_at("v2", extra_required="region"))
    before = await binding_of(platform, "checkout")
    with pytest.raises(InvalidDocument) as refused:
        await edit_binding(platform, "checkout", "v2")
    assert "request default/checkout does not validate under version v2: spec.region" in str(refused.value)
    assert (await binding_of(platform, "checkout"))["spec"] == before["spec"]
    with pytest.raises(InvalidDocument, match="no PromiseRevision for version 'v9'"):
        await edit_binding(platform, "checkout", "v9")


async def test_a_failed_upgrade_is_not_retried_until_the_manual_reconciliation_label(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise_at("v1"))
    await platform.apply(request("checkout"))
    await at_version(platform, "checkout", "v1")
    await edit_binding(platform, "checkout", "v1")
    broken = promise_at("v2")
    container = broken["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]
    container["command"] = ["python3", "-c", "raise SystemExit(3)"]
    await platform.apply(broken)
    await edit_binding(platform, "checkout", "v2")
    binding = await eventually(
        lambda: binding_of(platform, "checkout"),
        lambda b: condition(b, "UpgradeSucceeded").get("reason") == "UpgradeFailed",
        timeout=120,
        what="the binding's upgrade failed",
    )
    assert binding["status"]["failedVersion"] == "v2"
    assert binding["status"]["lastAppliedVersion"] == "v1"
    assert condition(binding, "UpgradeSucceeded")["message"] == "A Configure Pipeline has failed: render"
    request_status = (await platform.get("appconfig", "checkout", "default"))["status"]
    assert request_status["promiseVersion"] == "v1"

    def runs(obj: dict[str, Any]) -> int:
        return obj["_ktx"]["runCounts"]["configure/render"]

    failed_runs = runs(await platform.get("appconfig", "checkout", "default"))
    # Setting the same version again does not retry it; the manual-reconciliation label does.
    assert await edit_binding(platform, "checkout", "v2", {"team": "x"}) == "configured"
    assert runs(await platform.get("appconfig", "checkout", "default")) == failed_runs
    await edit_binding(platform, "checkout", "v2", {"kratix.io/manual-reconciliation": "true"})
    await eventually(
        lambda: platform.get("appconfig", "checkout", "default"),
        lambda o: runs(o) > failed_runs,
        timeout=120,
        what="the failed version retried",
    )
    binding = await binding_of(platform, "checkout")
    assert "kratix.io/manual-reconciliation" not in binding["metadata"]["labels"]


async def test_pinned_strategy_binds_new_requests_to_the_latest_version_and_a_deleted_binding_comes_back(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    # Kratix's system test 1.11: resourceBindingVersionStrategy decides what a new request's binding gets.
    platform = await platform_factory(resource_binding_version_strategy="pinned")
    await install(platform, git_remote, promise_at("v1"))
    await platform.apply(request("checkout"))
    await at_version(platform, "checkout", "v1")
    binding = await binding_of(platform, "checkout")
    assert binding["spec"]["version"] == "v1"
    await platform.apply(promise_at("v2", log_level="debug"))
    await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=120)
    # A Promise change leaves the pinned request alone; a request created now is pinned to v2.
    await platform.apply(request("later"))
    await at_version(platform, "later", "v2")
    assert (await binding_of(platform, "later"))["spec"]["version"] == "v2"
    assert (await platform.get("appconfig", "checkout", "default"))["status"]["promiseVersion"] == "v1"

    await platform.delete("resourcebinding", binding_name(PROMISE, "checkout"), "default")
    recreated = await binding_of(platform, "checkout")
    assert recreated["spec"]["version"] == "v1"
    assert recreated["metadata"]["creationTimestamp"] >= binding["metadata"]["creationTimestamp"]

    # Deleting the pinned revision deletes the requests pinned to it.
    await platform.delete("promiserevision", revision_name(PROMISE, "v1"))
    await eventually(
        lambda: platform.list("appconfigs", namespace="default"),
        lambda found: [o["metadata"]["name"] for o in found] == ["later"],
        timeout=120,
        what="the request pinned to v1 deleted with its revision",
    )
    assert [r["spec"]["version"] for r in await platform.list("promiserevisions")] == ["v2"]


async def test_the_cli_lists_revisions_and_bindings_with_kratix_columns_and_describes_the_bound_version(
    platform: Platform,
    api: Any,  # noqa: F811  (the fixture)
    git_remote: Path,
    pipeline_images,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await install(platform, git_remote, promise_at("v1"))
    await platform.apply(request("checkout"))
    await at_version(platform, "checkout", "v1")
    await platform.apply(promise_at("v2", log_level="debug"))
    await at_version(platform, "checkout", "v2")

    code, out, _ = await run_cli(capsys, "get", "promiserevisions")
    rows = [line.split() for line in out.splitlines()]
    assert code == 0 and rows[0] == ["NAME", "PROMISE", "VERSION", "LATEST"]
    assert sorted(rows[1:]) == sorted(
        [[revision_name(PROMISE, "v1"), PROMISE, "v1"], [revision_name(PROMISE, "v2"), PROMISE, "v2", "true"]]
    )
    name = binding_name(PROMISE, "checkout")
    code, out, _ = await run_cli(capsys, "get", "resourcebindings", "-n", "default")
    rows = [line.split() for line in out.splitlines()]
    assert rows == [["NAME", "RESOURCE", "PROMISE", "DESIRED", "APPLIED"], [name, "checkout", PROMISE, "latest", "v2"]]

    # Pin it to v1 from a file, as a team would keep it in Git.
    binding = await binding_of(platform, "checkout")
    binding["spec"]["version"] = "v1"
    pin = tmp_path / "binding.yaml"
    pin.write_text(yaml.safe_dump(binding))
    code, out, _ = await run_cli(capsys, "apply", "-f", str(pin))
    assert code == 0 and out.strip() == f"resourcebinding/{name} configured"
    await at_version(platform, "checkout", "v1")
    await eventually(
        lambda: binding_of(platform, "checkout"),
        lambda b: b["status"].get("lastAppliedVersion") == "v1",
        timeout=60,
        what="the binding applied at v1",
    )
    code, out, _ = await run_cli(capsys, "describe", "appconfig", "checkout", "-n", "default")
    assert f"Binding:      {name}" in out
    assert "  Version:        v1\n  Last applied:   v1\n  Failed version: <none>" in out
    assert "  Upgrade:        UpgradeComplete: Resource is at version v1" in out

    code, out, _ = await run_cli(
        capsys, "label", "resourcebinding", name, "-n", "default", "kratix.io/manual-reconciliation=true"
    )
    assert code == 0 and out.strip() == f"resourcebinding/{name} labeled"
    code, _, err = await run_cli(capsys, "delete", "promiserevision", revision_name(PROMISE, "v2"))
    assert code != 0 and "latest revision" in err


@workflow.defn(sandboxed=False)
class OutcomeReceiver:
    """Stands in for a rollout plan: waits for the outcomes of the re-binds it asked for."""

    def __init__(self) -> None:
        self.outcomes: list[UpgradeOutcome] = []

    @workflow.run
    async def run(self, count: int) -> list[UpgradeOutcome]:
        await workflow.wait_condition(lambda: len(self.outcomes) >= count)
        return self.outcomes

    @workflow.signal(name=UPGRADE_OUTCOME_SIGNAL)
    def outcome(self, outcome: UpgradeOutcome) -> None:
        self.outcomes.append(outcome)


async def test_a_rebind_signal_is_a_binding_edit_and_its_outcome_is_signalled_back(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise_at("v1"))
    await platform.apply(request("checkout"))
    await at_version(platform, "checkout", "v1")
    await edit_binding(platform, "checkout", "v1")
    await platform.apply(promise_at("v2", log_level="debug"))
    await platform.apply(promise_at("v3", extra_required="region"))
    handle = platform.client.get_workflow_handle(resource_workflow_id(PROMISE, "default", "checkout"))
    queue = f"{platform.task_queue}-rollout"
    async with Worker(platform.client, task_queue=queue, workflows=[OutcomeReceiver]):
        receiver = await platform.client.start_workflow(OutcomeReceiver.run, 3, id="rollout-test", task_queue=queue)
        await handle.signal(REBIND_SIGNAL, RebindRequest(version="v2", reply_to="rollout-test", plan="plan-a"))
        upgraded = await at_version(platform, "checkout", "v2")
        runs = upgraded["_ktx"]["runCounts"]["configure/render"]
        # Asked again (a rollout resumed after a restart): already there, so answered at once and not run twice.
        await handle.signal(REBIND_SIGNAL, RebindRequest(version="v2", reply_to="rollout-test"))
        # A version the request does not validate under: refused, the binding left at v2, the field named.
        await handle.signal(REBIND_SIGNAL, RebindRequest(version="v3", reply_to="rollout-test"))
        outcomes = await asyncio.wait_for(receiver.result(), timeout=120)
    # Two answers sent in one workflow task are separate signals, which Temporal may deliver in either order.
    outcomes.sort(key=lambda o: o.version)
    assert [(o.version, o.succeeded) for o in outcomes] == [("v2", True), ("v2", True), ("v3", False)]
    assert (outcomes[0].promise, outcomes[0].namespace, outcomes[0].name) == (PROMISE, "default", "checkout")
    assert "does not validate under version v3: spec.region" in outcomes[2].message
    after = await platform.get("appconfig", "checkout", "default")
    assert after["_ktx"]["runCounts"]["configure/render"] == runs
    assert after["status"]["promiseVersion"] == "v2"
    binding = await binding_of(platform, "checkout")
    assert binding["spec"]["version"] == "v2"
    assert (binding["status"]["failedVersion"], condition(binding, "UpgradeSucceeded")["reason"]) == (
        "v3",
        "UpgradeFailed",
    )
    assert any("by rollout plan-a" in e["message"] for e in after["_ktx"]["events"])


async def test_a_binding_made_before_its_request_is_adopted_and_pins_its_first_run(
    platform: Platform, git_remote: Path, pipeline_images
) -> None:
    await install(platform, git_remote, promise_at("v1"))
    await platform.apply(promise_at("v2", log_level="debug"))
    await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=120)
    pin = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "ResourceBinding",
        "metadata": {"name": "checkout-pin", "namespace": "default", "labels": {"team": "payments"}},
        "spec": {
            "version": "v1",
            "promiseRef": {"name": PROMISE},
            "resourceRef": {"name": "checkout", "namespace": "default"},
        },
    }
    assert (await platform.apply(pin)).action == "created"
    held = await platform.get("resourcebinding", "checkout-pin", "default")
    assert held["spec"]["version"] == "v1" and held["metadata"]["labels"]["team"] == "payments"
    bad = copy.deepcopy(pin)
    bad["spec"]["version"] = "v9"
    with pytest.raises(InvalidDocument, match="no PromiseRevision for version 'v9'"):
        await platform.apply(bad)

    await platform.apply(request("checkout"))
    checkout = await at_version(platform, "checkout", "v1")
    assert checkout["status"]["resourceBindingVersion"] == "v1"
    assert yaml.safe_load(read_remote(git_remote, configmap_path("checkout")))["data"]["logLevel"] == "info"
    adopted = await platform.get("resourcebinding", "checkout-pin", "default")
    assert adopted["spec"]["version"] == "v1" and adopted["status"]["lastAppliedVersion"] == "v1"
    # Adopted, not copied: the request's binding is the only one left.
    assert [b["metadata"]["name"] for b in await platform.list("resourcebindings", namespace="default")] == [
        "checkout-pin"
    ]
    assert "BindingAdopted" in [e["reason"] for e in checkout["_ktx"]["events"]]


async def test_a_rebind_sent_again_while_its_run_is_on_restarts_nothing(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    from tests.integration.test_rollouts import KIND as DB_KIND, PROMISE as DB, fleet, on_version, writer

    platform = await platform_factory(resource_binding_version_strategy="pinned")
    await fleet(platform, git_remote, {"team-a": ["r0"]}, writer("write-v2", SLEEP="3"))
    handle = platform.client.get_workflow_handle(resource_workflow_id(DB, "team-a", "r0"))
    rebind = RebindRequest(version="v2", reply_to="rollout-test", plan="db-v2")
    started = "Configure Pipeline started: write-v2"

    def v2_starts(obj: dict[str, Any]) -> int:
        return sum(e["count"] for e in obj["_ktx"]["events"] if e["message"] == started)

    queue = f"{platform.task_queue}-rollout"
    async with Worker(platform.client, task_queue=queue, workflows=[OutcomeReceiver]):
        receiver = await platform.client.start_workflow(OutcomeReceiver.run, 2, id="rollout-test", task_queue=queue)
        await handle.signal(REBIND_SIGNAL, rebind)
        await eventually(
            lambda: platform.get(DB_KIND, "r0", "team-a"), lambda o: v2_starts(o) == 1, what="the run on v2 under way"
        )
        # The plan's batch sent again (a retried activity) after the request continued as new, so that Temporal no
        # longer knows the signal's request ID: the same plan, the same version, while the run on it goes on.
        await handle.signal(REBIND_SIGNAL, rebind)
        await on_version(platform, "team-a", "r0", "v2")
        # Once there, asked again: answered at once. The receiver has both answers only once each was sent.
        await handle.signal(REBIND_SIGNAL, rebind)
        outcomes = await asyncio.wait_for(receiver.result(), timeout=120)
    assert [(o.version, o.succeeded) for o in outcomes] == [("v2", True), ("v2", True)]
    obj = await platform.get(DB_KIND, "r0", "team-a")
    assert (obj["_ktx"]["runCounts"]["configure/write-v2"], v2_starts(obj)) == (1, 1), obj["_ktx"]["events"]


async def test_more_requests_reading_a_revision_at_once_than_the_worker_has_workflow_task_slots_all_upgrade(
    platform_factory, git_remote: Path, pipeline_images
) -> None:
    # A revision is asked of its Promise's workflow, which answers in one of the worker's workflow task slots. Reads
    # that held the slots they waited in (local activities) left none to answer in: every request waited for good
    # (bench/rollout.py --n 100 stalled at 92 of 100 with 8 slots).
    platform = await platform_factory(settings={"worker_workflow_tasks": 2}, resource_binding_version_strategy="pinned")
    await install(platform, git_remote, promise_at("v1"))
    names = [f"slots-{i}" for i in range(6)]
    await asyncio.gather(*(platform.apply(request(name)) for name in names))
    for name in names:
        await at_version(platform, name, "v1")
    await platform.apply(promise_at("v2", log_level="debug"))
    await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=120)
    # Each edit is an update the request's workflow answers in a slot: before, these hung with the slots taken.
    edits = await asyncio.wait_for(asyncio.gather(*(edit_binding(platform, name, "v2") for name in names)), 120)
    assert edits == ["configured"] * len(names)
    for name in names:
        upgraded = await at_version(platform, name, "v2")
        assert upgraded["status"]["resourceBindingVersion"] == "v2"
