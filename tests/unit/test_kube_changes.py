"""The change log behind watches (domain/kube/changes.py): deduplication over the visibility window, the bounded
ring and 410 Gone, and which event type a watch from a given version is owed."""

from __future__ import annotations

import pytest

from domain.kube.changes import ChangeLog, Gone, Observed, parse_resource_version


def seen(workflow_id: str, version: int, created: int, closed: bool = False) -> Observed:
    return Observed(workflow_id, version, closed, created, {"metadata": {"name": workflow_id}}, kind="AppConfig")


def test_what_the_window_brings_again_is_admitted_once() -> None:
    log = ChangeLog(capacity=10, window=100, floor=1000)
    assert len(log.admit([seen("a", 1010, 1010), seen("b", 1020, 1005)])) == 2
    # The next poll asks from below the newest, and sees both again, plus a new version of one.
    assert log.query_floor() == 1000
    again = log.admit([seen("a", 1010, 1010), seen("b", 1020, 1005), seen("b", 1200, 1005)])
    assert [(e.seen.workflow_id, e.seen.resource_version) for e in again] == [("b", 1200)]
    assert log.query_floor() == 1100
    assert log.newest == 1200


def test_an_older_version_seen_late_is_not_a_change() -> None:
    log = ChangeLog(capacity=10, window=100, floor=0)
    log.admit([seen("a", 50, 10)])
    assert log.admit([seen("a", 40, 10)]) == []


def test_changes_from_before_the_log_began_are_not_held() -> None:
    log = ChangeLog(capacity=10, window=100, floor=1000)
    assert log.admit([seen("a", 990, 900)]) == []
    assert log.since(1000) == []


def test_a_poll_is_admitted_in_version_order() -> None:
    log = ChangeLog(capacity=10, window=100, floor=0)
    log.admit([seen("b", 30, 30), seen("a", 20, 20), seen("c", 25, 1)])
    assert [c.resource_version for c in log.since(0)] == [20, 25, 30]


def test_event_types_depend_on_where_the_watch_starts() -> None:
    log = ChangeLog(capacity=10, window=100, floor=0)
    log.admit([seen("new", 100, 100)])
    log.admit([seen("new", 110, 100), seen("old", 120, 5)])
    log.admit([seen("new", 130, 100, closed=True)])
    from_start = [(c.workflow_id, c.type) for c in log.since(50)]
    assert from_start == [("new", "ADDED"), ("new", "MODIFIED"), ("old", "MODIFIED"), ("new", "DELETED")]
    # A watch from after the creation had the object already (its list showed it): no ADDED.
    assert [c.type for c in log.since(100)] == ["MODIFIED", "MODIFIED", "DELETED"]


def test_an_object_first_seen_after_several_changes_is_still_added() -> None:
    """Two changes between polls: the feed sees only the second, which a watch from before the creation gets as
    ADDED."""
    log = ChangeLog(capacity=10, window=100, floor=0)
    log.admit([seen("a", 105, 100)])
    assert [c.type for c in log.since(50)] == ["ADDED"]


def test_a_recreated_object_is_added_again() -> None:
    log = ChangeLog(capacity=10, window=1000, floor=0)
    log.admit([seen("a", 10, 10)])
    log.admit([seen("a", 20, 10, closed=True)])
    log.admit([seen("a", 30, 30)])
    assert [c.type for c in log.since(5)] == ["ADDED", "DELETED", "ADDED"]


def test_a_running_record_and_its_closed_record_at_one_version_are_two_changes() -> None:
    """The last publish of a deleted object and its workflow's end can be seen at one version."""
    log = ChangeLog(capacity=10, window=100, floor=0)
    log.admit([seen("a", 10, 1)])
    assert [e.seen.closed for e in log.admit([seen("a", 10, 1, closed=True), seen("a", 10, 1)])] == [True]


def test_the_ring_is_bounded_and_a_watch_from_what_it_forgot_is_gone() -> None:
    log = ChangeLog(capacity=3, window=100, floor=0)
    log.admit([seen(f"o{i}", 10 * i, 10 * i) for i in range(1, 6)])
    assert [c.resource_version for c in log.since(20)] == [30, 40, 50]
    assert log.floor == 20
    with pytest.raises(Gone) as gone:
        log.since(19)
    assert "too old resource version: 19 (20)" in str(gone.value)
    # Nothing older than the floor is taken back in.
    assert log.admit([seen("o1", 15, 10)]) == []


def test_the_per_object_index_shrinks_with_the_ring() -> None:
    log = ChangeLog(capacity=2, window=100, floor=0)
    log.admit([seen(f"o{i}", i + 1, i + 1) for i in range(100)])
    assert len(log._latest) == 2


def test_a_client_resource_version_is_digits_or_unset() -> None:
    assert parse_resource_version(None) is None
    assert parse_resource_version("0") is None
    assert parse_resource_version("") is None
    assert parse_resource_version("1764633600000000") == 1764633600000000
    for bad in ("-1", "1e9", "abc", "1" * 21, " 12"):
        with pytest.raises(ValueError):
            parse_resource_version(bad)


def test_a_log_needs_room() -> None:
    with pytest.raises(ValueError):
        ChangeLog(capacity=0, window=1, floor=0)
