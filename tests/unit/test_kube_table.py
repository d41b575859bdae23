"""The Table `kubectl get` prints, from printer columns, and the discovery and protobuf documents around it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api.kube.registry import BUILTIN, promise_resources
from domain.kube.crd import DEFAULT_COLUMNS
from domain.kube import discovery
from domain.kube.objects import RESOURCE_FINALIZERS, to_kube
from domain.kube.protobuf import MAGIC, SECRET, ProtobufError, decode_object
from domain.kube.table import ColumnPathError, age, compile_path, find, table
from domain.promise_api import read_promise_api

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def request(name: str, message: str, reconciled: str | None) -> dict:
    conditions = [{"type": "Reconciled", "status": "True", "message": reconciled}] if reconciled else []
    return {
        "metadata": {"name": name, "creationTimestamp": stamp(timedelta(minutes=5))},
        "status": {"message": message, "conditions": [{"type": "Other", "message": "no"}, *conditions]},
    }


def test_kratix_default_columns_read_status_and_the_reconciled_condition() -> None:
    doc = table([request("a", "ok", "Reconciled"), request("b", "pending", None)], "X", DEFAULT_COLUMNS, NOW)
    assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", "message", "status"]
    assert [r["cells"] for r in doc["rows"]] == [["a", "ok", "Reconciled"], ["b", "pending", None]]
    assert doc["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table([request("a", "", None)], "X", DEFAULT_COLUMNS, NOW, include_object="None")["rows"][0].keys() == {
        "cells"
    }


def test_no_columns_means_name_and_age_and_dates_read_as_ages() -> None:
    doc = table([request("a", "", None)], "X", (), NOW)
    assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", "Age"]
    assert doc["rows"][0]["cells"] == ["a", "5m"]
    assert [age(stamp(d), NOW) for d in (timedelta(seconds=30), timedelta(minutes=90), timedelta(days=3))] == [
        "30s",
        "90m",
        "3d",
    ]


def test_core_kinds_print_the_apiserver_columns() -> None:
    secret = {"metadata": {"name": "s", "creationTimestamp": stamp(timedelta(hours=2))}, "data": {"a": "", "b": ""}}
    doc = table([secret], "Secret", (), NOW)
    assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert doc["rows"][0]["cells"] == ["s", "Opaque", 2, "120m"]


def test_json_path_subset() -> None:
    obj = {"spec": {"items": [{"n": 1}, {"n": 2}], "a.b": "dotted"}, "status": {"conditions": [{"type": "R"}]}}
    assert find(obj, compile_path(".spec.items[*].n")) == [1, 2]
    assert find(obj, compile_path(".spec.items[-1].n")) == [2]
    assert find(obj, compile_path(".spec['a.b']")) == ["dotted"]
    assert find(obj, compile_path('{.status.conditions[?(@.type=="R")].type}')) == ["R"]
    assert find(obj, compile_path(".missing.deeper")) == []
    with pytest.raises(ColumnPathError):
        compile_path(".spec.items[?(@.n>1)]")


def test_discovery_documents() -> None:
    api = read_promise_api(
        "p",
        {
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Thing", "plural": "things", "shortNames": ["th"], "categories": ["all"]},
                "versions": [
                    {"name": "v1alpha1", "served": True, "storage": False},
                    {"name": "v1", "served": True, "storage": True},
                    {"name": "v0", "served": False, "storage": False},
                ],
            },
        },
    )
    resources = [*BUILTIN, *promise_resources(api)]
    assert [r.version for r in promise_resources(api)] == ["v1alpha1", "v1"]  # as the CRD lists them, unserved left out
    group = discovery.api_group("example.com", discovery.group_versions(resources, "example.com"))
    assert group["preferredVersion"] == {"groupVersion": "example.com/v1", "version": "v1"}
    listed = discovery.api_resource_list(resources, "example.com", "v1alpha1")["resources"]
    assert listed[0] | {"verbs": []} == {
        "name": "things",
        "singularName": "thing",
        "namespaced": True,
        "kind": "Thing",
        "verbs": [],
        "shortNames": ["th"],
        "categories": ["all"],
    }
    assert listed[1]["name"] == "things/status" and listed[1]["verbs"] == ["get", "patch", "update"]
    aggregated = discovery.aggregated(resources, core=False)
    names = [item["metadata"]["name"] for item in aggregated["items"]]
    assert "" not in names and {"example.com", "platform.kratix.io"} <= set(names)
    core = discovery.aggregated(resources, core=True)["items"]
    assert [item["metadata"]["name"] for item in core] == [""]
    secrets = next(r for r in core[0]["versions"][0]["resources"] if r["resource"] == "secrets")
    assert secrets["scope"] == "Namespaced" and secrets["responseKind"] == {
        "group": "",
        "version": "v1",
        "kind": "Secret",
    }
    assert discovery.wants_aggregated(
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    )
    assert not discovery.wants_aggregated("application/json")
    assert sorted(["v1alpha1", "v2", "v1beta1", "v1", "zeta"], key=discovery.version_priority) == [
        "v2",
        "v1",
        "v1beta1",
        "v1alpha1",
        "zeta",
    ]


def test_to_kube_serves_the_asked_version_with_kratix_finalizers() -> None:
    api = read_promise_api(
        "p",
        {
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Thing", "plural": "things"},
                "versions": [{"name": "v1", "storage": True}, {"name": "v2"}],
            },
        },
    )
    v2 = promise_resources(api)[1]
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "namespace": "dev"},
        "status": {},
        "_ktx": {
            "resourceVersion": 42,
            "events": [{"reason": "DeleteRequested", "first_seen": "2026-01-01T00:00:00Z"}],
        },
    }
    shown = to_kube(obj, v2)
    assert shown["apiVersion"] == "example.com/v2" and "_ktx" not in shown and "status" not in shown
    assert shown["metadata"]["resourceVersion"] == "42"
    assert shown["metadata"]["finalizers"] == list(RESOURCE_FINALIZERS)
    assert shown["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
    promise = next(r for r in BUILTIN if r.kind == "Promise")
    with_api = to_kube({"metadata": {"name": "p"}, "spec": {"api": {"kind": "CRD"}}}, promise)
    assert "kratix.io/api-crd-cleanup" in with_api["metadata"]["finalizers"]
    assert "kratix.io/delete-workflows" not in with_api["metadata"]["finalizers"]  # no Promise delete pipeline


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_a_protobuf_secret_reads_with_its_maps() -> None:
    metadata = _field(1, b"creds") + _field(3, b"dev") + _field(11, _field(1, b"app") + _field(2, b"web"))
    data = _field(2, _field(1, b"token") + _field(2, b"s3cr3t")) + _field(2, _field(1, b"user") + _field(2, b"me"))
    secret = _field(1, metadata) + data + _field(3, b"Opaque")
    body = MAGIC + _field(1, _field(1, b"v1") + _field(2, b"Secret")) + _field(2, secret)
    assert decode_object(body, SECRET) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "dev", "labels": {"app": "web"}},
        "data": {"token": b"s3cr3t", "user": b"me"},
        "type": "Opaque",
    }
    for bad in (b"{}", MAGIC + b"\x0a\xff"):
        with pytest.raises(ProtobufError):
            decode_object(bad, SECRET)


def test_a_crds_printer_columns_are_kept_only_when_printable() -> None:
    columns = [
        {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
        "not a column",
        {"name": "Bad", "type": "string"},  # no jsonPath
        {"name": "Odd", "type": "object", "jsonPath": ".spec"},
        {"name": "Prio", "type": "integer", "jsonPath": ".spec.n", "priority": "1"},
        *({"name": f"c{i}", "type": "string", "jsonPath": ".a"} for i in range(40)),
    ]
    crd = {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Thing", "plural": "things"},
            "versions": [{"name": "v1", "storage": True, "additionalPrinterColumns": columns}],
        },
    }
    kept = read_promise_api("p", crd).printer_columns
    assert kept[0] == {"name": "Size", "type": "string", "jsonPath": ".spec.size", "priority": 0}
    assert len(kept) == 32 and {c["name"] for c in kept}.isdisjoint({"Bad", "Odd", "Prio"})
    # a column whose path the table cannot read falls back to the defaults rather than failing the list
    with pytest.raises(ColumnPathError):
        table([], "Thing", [{"name": "x", "type": "string", "jsonPath": ".a[?(@.b>1)]"}], NOW)
