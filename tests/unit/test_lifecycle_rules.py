"""Pure rules behind the lifecycle: workflow-control parsing, backoff, events, health aggregation, requirements,
status."""

from __future__ import annotations

import pytest

from domain import status as st
from domain.config import PlatformConfig
from domain.documents import Promise, RequiredPromise
from domain.errors import InvalidDocument
from domain.events import EVENTS_KEPT, record_event
from domain.health import HealthRecord, ResourceRef, health_status, read_health_record
from domain.promise_api import check_promise, reconciliation_interval
from domain.requirements import RequiredPromiseState, evaluate_requirements, required_by
from domain.workflow_control import parse_workflow_control


def test_workflow_control_follows_kratix() -> None:
    assert parse_workflow_control(None) is None
    control = parse_workflow_control({"retryAfter": "10m", "suspend": True, "maxAttempts": 3})
    assert control is not None and control.retry_after_s == 600 and control.suspends
    assert parse_workflow_control({"suspend": False}).suspends is False  # type: ignore[union-attr]
    with pytest.raises(InvalidDocument, match='failed to parse retry duration: "whale"'):
        parse_workflow_control({"retryAfter": "whale"})


def test_backoff_doubles_up_to_the_cap() -> None:
    config = PlatformConfig()
    assert [config.backoff(n) for n in (1, 2, 3, 6, 7)] == [10, 20, 40, 320, 360]
    assert config.backoff(3, base=1, cap=3) == 3


def test_repeated_events_are_counted_and_the_list_is_bounded() -> None:
    events = record_event([], "Normal", "PipelineStarted", "a", "t1")
    events = record_event(events, "Normal", "PipelineStarted", "a", "t2")
    assert (len(events), events[0].count, events[0].last_seen) == (1, 2, "t2")
    for i in range(EVENTS_KEPT + 5):
        events = record_event(events, "Warning", "X", str(i), "t")
    assert len(events) == EVENTS_KEPT and events[-1].message == str(EVENTS_KEPT + 4)


def _record(name: str, state: str) -> HealthRecord:
    return HealthRecord(name=name, namespace="default", promise="p", resource=ResourceRef(name="r"), state=state)


def test_health_is_the_worst_record_and_ready_without_records() -> None:
    assert health_status([])["state"] == "ready"
    assert (
        health_status([_record("a", "healthy"), _record("b", "degraded"), _record("c", "unknown")])["state"]
        == "degraded"
    )
    assert health_status([_record("a", "ready"), _record("b", "unhealthy")])["state"] == "unhealthy"
    with pytest.raises(InvalidDocument) as refused:
        read_health_record({"metadata": {"name": "x"}, "data": {"state": "fine"}})
    assert {e.field for e in refused.value.errors} == {"data.promiseRef.name", "data.resourceRef.name", "data.state"}


def test_requirements_table() -> None:
    required = [RequiredPromise(name="sub", version="v1")]
    assert evaluate_requirements(required, {}).entries[0]["state"] == "Requirement not installed"
    at_v2 = {"sub": RequiredPromiseState(name="sub", available=True, versions=["v2"])}
    assert (
        evaluate_requirements(required, at_v2).entries[0]["state"]
        == "Requirement not installed at the specified version"
    )
    unavailable = {"sub": RequiredPromiseState(name="sub", available=False, versions=["v1", "v2"])}
    verdict = evaluate_requirements(required, unavailable)
    assert (verdict.fulfilled, verdict.reason) == (False, "RequirementsNotAvailable")
    ok = evaluate_requirements(
        [RequiredPromise(name="sub")],
        unavailable | {"sub": RequiredPromiseState(name="sub", available=True, versions=["x"])},
    )
    assert (ok.fulfilled, ok.reason, ok.message) == (True, "RequirementsInstalled", "Requirements fulfilled")


def test_reconciliation_interval_precedence_and_minimum() -> None:
    doc = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "p", "annotations": {"kratix.io/reconciliation-interval": "2h"}},
        "spec": {"workflows": {"config": {"reconciliationInterval": "30m"}}},
    }
    assert reconciliation_interval(Promise.model_validate(doc)) == 7200
    doc["metadata"]["annotations"] = {}
    assert reconciliation_interval(Promise.model_validate(doc)) == 1800
    doc["metadata"]["annotations"] = {"kratix.io/reconciliation-interval": "30s"}
    with pytest.raises(InvalidDocument, match="at least 1m"):
        check_promise(Promise.model_validate(doc))


def test_suspend_records_attempts_and_success_clears_them() -> None:
    status: dict = {}
    st.mark_configure_started(status, ["a", "b"], "t0")
    st.mark_suspended(status, "b", "t1", "waiting", 3, "t9")
    st.mark_suspended(status, "b", "t2", "waiting", 3, "t10")
    entry = st.pipelines_status(status)[1]
    assert (entry["phase"], entry["attempts"], entry["nextRetryAt"], entry["message"]) == (
        "Suspended",
        2,
        "t10",
        "waiting",
    )
    assert status["kratix"]["workflows"]["suspendedGeneration"] == 3
    assert st.get_condition(status, st.RECONCILED)["reason"] == "WorkflowSuspended"  # type: ignore[index]
    st.set_pipeline_phase(status, "b", "Succeeded", "t3")
    assert entry == {"name": "b", "phase": "Succeeded", "lastTransitionTime": "t3"}
    assert (
        st.summary_phase(
            {"conditions": [{"type": "Reconciled", "status": "Unknown", "reason": "PausedReconciliation"}]}
        )
        == "Paused"
    )


def test_required_by_lists_each_dependent_once_in_name_order_and_drops_one_that_left() -> None:
    entries = required_by([], "web", "v2", "v1")
    entries = required_by(entries, "api", "not-set", "")
    entries = required_by(entries, "web", "v3", "v1")  # the dependent moved on: its entry is replaced, not doubled
    assert entries == [
        {"promise": {"name": "api", "version": "not-set"}, "requiredVersion": ""},
        {"promise": {"name": "web", "version": "v3"}, "requiredVersion": "v1"},
    ]
    assert required_by(entries, "api", "not-set", None) == entries[1:]
