"""The changes a watch of ResourceBindings or PromiseRevisions derives from the changes of the objects holding them."""

from __future__ import annotations

import asyncio
from typing import Any

from domain.kube.changes import Change
from service.derived_watches import BindingWatch, RevisionWatch

BINDING = {
    "apiVersion": "platform.kratix.io/v1alpha1",
    "kind": "ResourceBinding",
    "metadata": {"name": "a0-db-1a2b3", "namespace": "team-a", "resourceVersion": "10"},
    "spec": {"version": "v1", "promiseRef": {"name": "db"}, "resourceRef": {"name": "a0", "namespace": "team-a"}},
}


def request_change(type_: str, version: int, binding: dict[str, Any] | None, promise: str = "db") -> Change:
    ktx = {"binding": binding} if binding is not None else {}
    obj = {"metadata": {"name": "a0", "namespace": "team-a"}, "_ktx": ktx}
    return Change(type_, obj, version, "resource/db/team-a/a0", "Db", promise)  # type: ignore[arg-type]


def at(version: str) -> dict[str, Any]:
    return {**BINDING, "spec": {**BINDING["spec"], "version": version}}


def test_a_binding_changes_only_when_it_does() -> None:
    watch = BindingWatch([BINDING])
    assert asyncio.run(watch.changes(request_change("MODIFIED", 11, at("v1")))) == []  # the request's status, only
    [moved] = asyncio.run(watch.changes(request_change("MODIFIED", 12, at("v2"))))
    assert (moved.type, moved.kind, moved.resource_version) == ("MODIFIED", "ResourceBinding", 12)
    assert moved.object["metadata"]["resourceVersion"] == "12" and moved.object["spec"]["version"] == "v2"
    [gone] = asyncio.run(watch.changes(request_change("DELETED", 13, at("v2"))))
    assert gone.type == "DELETED"


def test_a_new_requests_binding_is_added_and_other_changes_are_nothing() -> None:
    watch = BindingWatch([])
    [added] = asyncio.run(watch.changes(request_change("MODIFIED", 5, BINDING)))
    assert added.type == "ADDED" and added.workflow_id == "team-a/a0-db-1a2b3"
    assert asyncio.run(watch.changes(request_change("MODIFIED", 6, None))) == []  # no binding yet
    assert asyncio.run(watch.changes(request_change("MODIFIED", 7, BINDING, promise=""))) == []  # not a request


def revision(promise: str, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"promiseRef": {"name": promise}}, "status": {"latest": True}}


def test_a_promise_deleted_deletes_its_revisions_without_asking_it() -> None:
    watch = RevisionWatch(platform=None, current=[revision("db", "db-aaaaa"), revision("other", "other-bbbbb")])  # type: ignore[arg-type]
    promise = {"metadata": {"name": "db"}, "_ktx": {"revisions": [{"version": "v1", "latest": True}]}}
    found = asyncio.run(watch.changes(Change("DELETED", promise, 20, "promise/db", "Promise")))
    assert [(c.type, c.object["metadata"]["name"], c.kind) for c in found] == [
        ("DELETED", "db-aaaaa", "PromiseRevision")
    ]
    # A Promise from before revisions were published says nothing of them.
    assert (
        asyncio.run(watch.changes(Change("MODIFIED", {"metadata": {"name": "x"}, "_ktx": {}}, 21, "", "Promise"))) == []
    )
