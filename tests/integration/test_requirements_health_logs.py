"""requiredPromises (Kratix's compound_promise_test.go), HealthRecords (healthchecks_test.go), events and logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.platform import NotFound, Platform
from domain.errors import InvalidDocument
from tests.kratix_documents import condition, eventually, get, git_store_and_destinations, pipeline, promise, resource

VERSION = "kratix.io/promise-version"


async def test_required_promises_gate_availability(platform: Platform, git_remote: Path, pipeline_images) -> None:
    for d in git_store_and_destinations(git_remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(d)
    compound = promise(
        "compound-promise",
        "Compound",
        configure=[pipeline("echo")],
        required=[{"name": "sub-promise", "version": "v1.0.0"}],
    )
    await platform.apply(compound)
    read = lambda: get(platform, "promise", "compound-promise")  # noqa: E731
    p = await eventually(read, lambda o: condition(o, "RequirementsFulfilled").get("status") == "False")
    assert p["status"]["status"] == "Unavailable"
    assert p["status"]["requiredPromises"] == [
        {"name": "sub-promise", "version": "v1.0.0", "state": "Requirement not installed"}
    ]

    await platform.apply(resource("Compound", "example-compound-rr"))
    rr = await eventually(
        lambda: get(platform, "compound", "example-compound-rr"),
        lambda o: condition(o, "PromiseAvailable").get("status") == "False",
    )
    assert rr["status"]["message"] == "Pending"

    # A Promise with only metadata and a version label satisfies the requirement.
    sub = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "sub-promise", "labels": {VERSION: "v1.0.0"}},
    }
    await platform.apply(sub)
    await platform.wait_condition("promise", "compound-promise", "default", "Available", timeout=60)
    # Kratix's back-reference on the required Promise: who requires it, at which of their versions, and at which of its.
    await eventually(
        lambda: get(platform, "promise", "sub-promise"),
        lambda o: (
            o["status"].get("requiredBy")
            == [{"promise": {"name": "compound-promise", "version": "not-set"}, "requiredVersion": "v1.0.0"}]
        ),
        what="sub-promise's status.requiredBy",
    )
    rr = await platform.wait_condition("compound", "example-compound-rr", "default", "Reconciled", timeout=60)
    assert rr["status"]["message"] == "Resource requested"
    assert condition(rr, "PromiseAvailable")["status"] == "True"

    # Upgrading the required Promise keeps v1.0.0 satisfied: installed versions persist like revisions.
    restarts = _count(await read(), "RequirementsChanged")
    sub["metadata"]["labels"][VERSION] = "v2.0.0"
    await platform.apply(sub)
    await eventually(lambda: get(platform, "promise", "sub-promise"), lambda o: o["status"].get("version") == "v2.0.0")
    # The compound's status from before the upgrade says Available too: wait for the run the upgrade caused (one more
    # RequirementsChanged restart, then a configure run completing, which it only does once the requirements were
    # re-read and met), so the assertions below are about the post-upgrade evaluation.
    p = await eventually(
        read,
        lambda o: (
            _count(o, "RequirementsChanged") > restarts
            and _after(o, "RequirementsChanged", "ConfigureWorkflowCompleted")
        ),
        what="the compound re-evaluated after the upgrade",
    )
    assert condition(p, "RequirementsFulfilled")["status"] == "True"
    assert condition(p, "Available")["status"] == "True"
    assert p["status"]["requiredPromises"] == [
        {"name": "sub-promise", "version": "v1.0.0", "state": "Requirement installed"}
    ]

    # Removing the required Promise makes the compound unavailable; deleting the compound keeps nothing else.
    assert await platform.wait_deleted(await platform.delete("promise", "sub-promise"), timeout=60)
    p = await eventually(
        read,
        lambda o: o["status"]["requiredPromises"][0]["state"] == "Requirement not installed",
        what="compound sees the requirement gone",
    )
    assert p["status"]["status"] == "Unavailable"
    assert condition(p, "Available")["status"] == "False"


def _count(obj: dict, reason: str) -> int:
    return sum(e["count"] for e in obj["_ktx"]["events"] if e["reason"] == reason)


def _after(obj: dict, first: str, then: str) -> bool:
    """Whether event `then` was recorded after the last event `first` (events are kept in order)."""
    reasons = [e["reason"] for e in obj["_ktx"]["events"]]
    return first in reasons and then in reasons[len(reasons) - reasons[::-1].index(first) :]


def record(name: str, state: str) -> dict:
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "HealthRecord",
        "metadata": {"name": name, "namespace": "default"},
        "data": {
            "promiseRef": {"name": "healthchecktest"},
            "resourceRef": {"name": "example", "namespace": "default"},
            "state": state,
            "lastRun": 1700000000,
            "details": {"checks": 3},
        },
    }


async def test_health_records_events_and_logs(platform: Platform, git_remote: Path, pipeline_images) -> None:
    for d in git_store_and_destinations(git_remote, {"worker-1": {"environment": "dev"}}):
        await platform.apply(d)
    await platform.apply(
        promise("healthchecktest", "HealthCheck", configure=[pipeline("probe", FILES={"a.yaml": {"a": 1}})])
    )
    await platform.wait_condition("promise", "healthchecktest", "default", "Available", timeout=60)
    await platform.apply(resource("HealthCheck", "example"))
    obj = await platform.wait_condition("healthcheck", "example", "default", "Reconciled", timeout=60)

    await platform.apply(record("healthy-example", "healthy"))
    await platform.apply(record("unhealthy-example", "unhealthy"))
    obj = await get(platform, "healthcheck", "example")
    health = obj["status"]["healthStatus"]
    assert health["state"] == "unhealthy"
    assert [(r["source"]["name"], r["state"]) for r in health["healthRecords"]] == [
        ("healthy-example", "healthy"),
        ("unhealthy-example", "unhealthy"),
    ]
    assert [r["data"]["state"] for r in await platform.list("healthrecords", namespace="default")] == [
        "healthy",
        "unhealthy",
    ]
    await platform.delete("healthrecord", "unhealthy-example")
    obj = await get(platform, "healthcheck", "example")
    assert obj["status"]["healthStatus"]["state"] == "healthy"
    reasons = [(e["type"], e["reason"], e["message"]) for e in obj["_ktx"]["events"]]
    assert ("Warning", "HealthRecord", "Health state is unhealthy") in reasons
    assert ("Normal", "PipelineStarted", "Configure Pipeline started: probe") in reasons
    assert ("Normal", "ReconcileSucceeded", "Successfully reconciled") in reasons

    with pytest.raises(InvalidDocument) as refused:
        await platform.apply({**record("bad", "sick")})
    assert "data.state" in {e.field for e in refused.value.errors}
    with pytest.raises(NotFound):
        await platform.apply(
            {**record("orphan", "healthy"), "data": {**record("x", "healthy")["data"], "resourceRef": {"name": "nope"}}}
        )

    logs = await platform.logs("healthcheck", "example", pipeline="probe")
    assert [(entry["container"], entry["exitCode"]) for entry in logs] == [("probe-c", 0)]
    assert "resource/configure probe for example" in logs[0]["log"]
