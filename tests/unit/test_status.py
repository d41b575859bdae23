import pytest

from domain import status as st
from domain.durations import parse_duration
from domain.errors import InvalidDocument


def test_top_level_keys_replace_and_conditions_merge_by_type():
    existing = {
        "iam": {"user": "a", "role": "r"},
        "conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}],
    }
    merged = st.merge_status_file(
        existing, {"iam": {"user": "b"}, "conditions": [{"type": "B", "status": "False"}]}, promise_workflow=False
    )
    assert merged["iam"] == {"user": "b"}
    assert {c["type"]: c["status"] for c in merged["conditions"]} == {"A": "True", "B": "False"}
    assert existing["iam"]["role"] == "r"


def test_kratix_key_is_refused():
    with pytest.raises(InvalidDocument, match="kratix"):
        st.merge_status_file({}, {"kratix": {}}, promise_workflow=False)


def test_promise_workflows_may_only_set_message():
    assert st.merge_status_file({}, {"message": "hi", "other": 1}, promise_workflow=True) == {"message": "hi"}


def test_pending_message_becomes_resource_requested():
    status: dict = {}
    st.mark_configure_started(status, ["a", "b"], "t0")
    assert status["message"] == "Pending"
    st.mark_configure_succeeded(status, "t1", promise_workflow=False)
    assert status["message"] == "Resource requested"
    assert status["kratix"]["workflows"]["lastSuccessfulConfigureWorkflowTime"] == "t1"
    custom = {"message": "Pending"}
    custom["message"] = "1Gi instance deployed"
    st.mark_configure_succeeded(custom, "t1", promise_workflow=True)
    assert custom["message"] == "1Gi instance deployed"


def test_transition_time_moves_only_on_status_change():
    status: dict = {}
    st.set_condition(status, "Reconciled", "True", "Reconciled", "Reconciled", "t0")
    st.set_condition(status, "Reconciled", "True", "Reconciled", "Reconciled", "t1")
    assert st.get_condition(status, "Reconciled")["lastTransitionTime"] == "t0"
    st.set_condition(status, "Reconciled", "False", "ConfigureWorkflowFailed", "Failing", "t2")
    assert st.get_condition(status, "Reconciled")["lastTransitionTime"] == "t2"
    assert st.summary_phase(status) == "Failed"


def test_go_durations():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("10s") == 10
    with pytest.raises(ValueError, match="whale"):
        parse_duration("whale")


def test_versions_are_kratix_promise_and_binding_versions_and_report_what_changed() -> None:
    status: dict = {}
    assert st.mark_versions(status, "not-set") == ["promiseVersion", "resourceBindingVersion"]
    assert (status["promiseVersion"], status["resourceBindingVersion"]) == ("not-set", "latest")
    assert st.mark_versions(status, "not-set") == []
    assert st.mark_versions(status, "v1.2.0") == ["promiseVersion"]
    assert status["promiseVersion"] == "v1.2.0"
