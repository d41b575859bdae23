"""domain/console.py: the rows, counts, failures, events and links the web console shows, from objects shaped as
Platform.get gives them."""

from __future__ import annotations

from typing import Any

import pytest

from domain import console
from domain.kube.changes import Change
from domain.kube.selectors import parse_label_selector
from domain.visibility import QueryValueRefused, equals


def request(
    name: str,
    namespace: str = "default",
    promise: str = "app-config",
    reconciled: tuple[str, str] | None = ("True", "Reconciled"),
    labels: dict[str, str] | None = None,
    **ktx: Any,
) -> dict[str, Any]:
    conditions = []
    if reconciled:
        conditions.append({"type": "Reconciled", "status": reconciled[0], "reason": reconciled[1]})
    return {
        "apiVersion": "example.ktx.io/v1alpha1",
        "kind": "AppConfig",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "status": {"conditions": conditions, "message": "Resource requested"},
        "_ktx": {"workflowId": f"resource/{promise}/{namespace}/{name}", "resourceVersion": "7", **ktx},
    }


def test_a_row_says_what_where_and_how_it_is_doing() -> None:
    obj = request(
        "checkout",
        labels={"kratix.io/component-of-resource-name": "shop", "kratix.io/component-of-promise-name": "stack"},
        placements=[{"destination": "b"}, {"destination": "a"}, {"destination": "a"}],
    )
    row = console.request_row(obj)
    assert (row["promise"], row["namespace"], row["name"], row["phase"]) == (
        "app-config",
        "default",
        "checkout",
        "Reconciled",
    )
    assert row["destinations"] == ["a", "b"]
    assert row["parent"] == {"promise": "stack", "namespace": "", "name": "shop"}
    assert console.request_row(request("x"))["parent"] is None


@pytest.mark.parametrize(
    "reconciled, deleting, phase",
    [
        (None, False, "Pending"),
        (("Unknown", "WorkflowPending"), False, "Running"),
        (("Unknown", "PausedReconciliation"), False, "Paused"),
        (("Unknown", "WorkflowSuspended"), False, "Suspended"),
        (("False", "ConfigureWorkflowFailed"), False, "Failed"),
        (("True", "Reconciled"), True, "Deleting"),
    ],
)
def test_the_phase_is_the_one_visibility_filters_by(reconciled, deleting, phase) -> None:
    obj = request("x", reconciled=reconciled)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    assert console.phase_of(obj) == phase
    assert phase in console.PHASES


def test_labels_filter_as_kubectl_selectors_do() -> None:
    rows = [
        console.request_row(request("a", labels={"team": "pay"})),
        console.request_row(request("b", labels={"team": "ops"})),
        console.request_row(request("c", promise="db")),
    ]
    assert [r["name"] for r in console.filter_rows(rows, parse_label_selector("team"))] == ["a", "b"]
    assert [r["name"] for r in console.filter_rows(rows, parse_label_selector("team!=pay"))] == ["b", "c"]
    assert [r["name"] for r in console.filter_rows(rows, parse_label_selector("team in (ops),!tier"))] == ["b"]


def test_of_recent_changes_each_live_objects_newest_first() -> None:
    changes = [
        Change("ADDED", {"v": 1}, 1, "a"),
        Change("ADDED", {"v": 2}, 2, "b"),
        Change("MODIFIED", {"v": 3}, 3, "a"),
        Change("ADDED", {"v": 4}, 4, "c"),
        Change("DELETED", {"v": 5}, 5, "c"),
    ]
    assert [c.object["v"] for c in console.latest_changes(changes)] == [3, 2]


def test_a_failure_names_the_failing_container_of_the_latest_failed_run() -> None:
    runs = [
        {
            "pipeline": "old",
            "action": "configure",
            "succeeded": False,
            "finished_at": "2026-12-01T00:00:00Z",
            "containers": [],
        },
        {
            "pipeline": "render",
            "action": "configure",
            "succeeded": False,
            "finished_at": "2026-12-02T00:00:00Z",
            "message": "exit 3",
            "containers": [
                {"name": "setup", "exit_code": 0, "log_tail": "fine"},
                {"name": "render", "exit_code": 3, "log_tail": "\n".join(f"line {i}" for i in range(50))},
            ],
        },
    ]
    failed = request("x", reconciled=("False", "ConfigureWorkflowFailed"), runs=runs)
    (failure,) = console.recent_failures([failed, request("fine", runs=runs)])
    assert (failure["name"], failure["pipeline"], failure["container"], failure["exitCode"]) == (
        "x",
        "render",
        "render",
        3,
    )
    assert failure["logTail"].splitlines() == [f"line {i}" for i in range(30, 50)]


def test_recent_events_are_newest_first_and_bounded() -> None:
    events = [
        {"type": "Normal", "reason": f"R{i}", "message": "m", "count": 1, "last_seen": f"2026-12-02T00:00:{i:02d}Z"}
        for i in range(30)
    ]
    found = console.recent_events([request("x", events=events)])
    assert len(found) == console.RECENT_MAX
    assert found[0]["reason"] == "R29" and found[0]["name"] == "x"


@pytest.mark.parametrize(
    "url, link",
    [
        ("https://github.com/acme/state.git", "https://github.com/acme/state/commit/{sha}"),
        ("https://gitlab.example.com/group/sub/state", "https://gitlab.example.com/group/sub/state/commit/{sha}"),
        ("git@github.com:acme/state.git", "https://github.com/acme/state/commit/{sha}"),
        ("ssh://git@bitbucket.org:acme/state.git", "https://bitbucket.org/acme/state/commits/{sha}"),
        ("file:///tmp/state.git", None),
        ("/tmp/state.git", None),
        ("git://127.0.0.1/state.git", None),
        ("https://github.com/acme/../evil", None),
        ('https://github.com/acme/state"><script>', None),
        ("javascript:alert(1)//github.com/a/b", None),
    ],
)
def test_a_commit_link_only_for_a_web_host_url(url: str, link: str | None) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert console.commit_link(url, sha) == (link.format(sha=sha) if link else None)
    assert console.commit_link(url, "not-a-sha") is None


def test_the_temporal_ui_link_quotes_the_workflow_id() -> None:
    assert (
        console.temporal_ui_link("http://127.0.0.1:8233/", "default", "resource/app/ns/a b")
        == "http://127.0.0.1:8233/namespaces/default/workflows/resource%2Fapp%2Fns%2Fa%20b"
    )
    assert console.temporal_ui_link(None, "default", "x") is None


def test_a_phase_reaches_a_visibility_query_only_as_a_phase() -> None:
    assert [equals("KtxPhase", p) for p in ("Failed", "Reconciled")] == [
        'KtxPhase = "Failed"',
        'KtxPhase = "Reconciled"',
    ]
    for hostile in ('Failed" OR KtxKind = "Promise', "failed", "", "Fail ed"):
        with pytest.raises(QueryValueRefused):
            equals("KtxPhase", hostile)


def test_revision_rows_are_newest_first_each_with_its_requests() -> None:
    def revision(version: str, created: str, latest: bool = False) -> dict[str, Any]:
        return {
            "metadata": {"name": f"app-config-{version}", "creationTimestamp": created},
            "spec": {"version": version},
            "status": {"latest": True} if latest else {},
        }

    rows = console.revision_rows(
        [revision("v1", "2026-01-01T00:00:00Z"), revision("v2", "2026-02-01T00:00:00Z", latest=True)],
        {"v2": 3},
    )
    assert [(r["version"], r["name"], r["latest"], r["requests"]) for r in rows] == [
        ("v2", "app-config-v2", True, 3),
        ("v1", "app-config-v1", False, 0),
    ]
