"""The pure shapes behind the Kubernetes API's read-only kinds: the CRD Kratix generates from a Promise's API, Kratix's
own CRDs and printer columns, Work and WorkPlacement from an object's placements, and core Events from its memo."""

from __future__ import annotations

import copy

from domain.kube.crd import DEFAULT_COLUMNS, STATUS_SCHEMA, established, generated_crd, kratix_crd, kratix_kinds
from domain.kube.events import SELECTABLE_FIELDS, event_field_value, events_of
from domain.kube.printer_columns import PRINTER_COLUMNS, promise_api_columns
from domain.kube.works import MISPLACED, REPO_CLEANUP_FINALIZER, Owner
from domain.layout import group_id, work_name
from tests.kratix_documents import promise, resource

UID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def redis_api() -> dict:
    return promise("redis", "Redis", properties={"size": {"type": "string", "description": "How big."}})["spec"]["api"]


def test_generated_crd_is_what_kratix_sends_the_apiserver():
    api = redis_api()
    before = copy.deepcopy(api)
    crd = generated_crd("redis", api)
    assert api == before, "the Promise's own document is left as it is"
    assert crd["metadata"]["labels"] == {"kratix.io/promise-name": "redis"}
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"] == list(DEFAULT_COLUMNS)
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["properties"]["status"] == STATUS_SCHEMA
    assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["properties"]["spec"]["properties"]["size"]["description"] == "How big."
    assert schema["properties"]["metadata"]["properties"]["name"] == {"type": "string", "maxLength": 63}


def test_a_promise_api_keeps_its_own_printer_columns_and_status_is_replaced():
    api = redis_api()
    version = api["spec"]["versions"][0]
    version["additionalPrinterColumns"] = [{"name": "Size", "type": "string", "jsonPath": ".spec.size"}]
    version["schema"]["openAPIV3Schema"]["properties"]["status"] = {"type": "object", "properties": {"x": {}}}
    crd = generated_crd("redis", api)
    assert crd["spec"]["versions"][0]["additionalPrinterColumns"] == version["additionalPrinterColumns"]
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"] == STATUS_SCHEMA
    assert promise_api_columns(api, "v1") == tuple(version["additionalPrinterColumns"])
    assert promise_api_columns(redis_api(), "v1") == DEFAULT_COLUMNS


def test_established_crd_has_the_apiservers_defaults_and_status():
    crd = established(
        generated_crd("redis", redis_api()), uid=UID, created="2026-01-02T03:04:05Z", resource_version="7"
    )
    assert crd["spec"]["names"]["listKind"] == "RedisList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["metadata"] | {"uid": UID, "resourceVersion": "7", "generation": 1} == crd["metadata"]
    status = crd["status"]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("NamesAccepted", "True", "NoConflicts"),
        ("Established", "True", "InitialNamesAccepted"),
    ]
    assert status["acceptedNames"] == {
        "kind": "Redis",
        "listKind": "RedisList",
        "plural": "rediss",
        "singular": "redis",
    }
    assert status["storedVersions"] == ["v1"]


def test_kratix_own_crds_and_their_printer_columns():
    assert kratix_kinds() == sorted(
        [
            "BucketStateStore",
            "Destination",
            "GitStateStore",
            "HealthRecord",
            "Promise",
            "PromiseRelease",
            "PromiseRevision",
            "ResourceBinding",
            "Work",
            "WorkPlacement",
        ]
    )
    assert [c["name"] for c in PRINTER_COLUMNS["PromiseRelease"]] == ["Status", "Version"]
    assert kratix_crd("WorkPlacement")["spec"]["names"]["shortNames"] == ["wp", "wps"]
    assert [c["name"] for c in PRINTER_COLUMNS["Promise"]] == ["Status", "Kind", "API Version", "Version", "Message"]
    assert [c["name"] for c in PRINTER_COLUMNS["WorkPlacement"]] == ["DESTINATION", "STATUS"]
    assert PRINTER_COLUMNS["Destination"][2]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert "Last Seen" in [c["name"] for c in PRINTER_COLUMNS["Event"]]


def placed(pipeline: str, directory: str, destination: str, **more) -> dict:
    return {"pipeline": pipeline, "directory": directory, "destination": destination, **more}


def request(**ktx) -> dict:
    obj = resource("Redis", "cache", namespace="team-a")
    obj["metadata"] |= {"uid": UID, "creationTimestamp": "2026-01-02T03:04:05Z", "generation": 2}
    obj["_ktx"] = {"resourceVersion": "42", **ktx}
    return obj


def test_a_resource_pipelines_output_is_one_work_named_and_labelled_as_kratix_does():
    owner = Owner(request(placements=[placed("configure", ".", "dev"), placed("configure", "db", "prod")]), "redis")
    (work,) = owner.works()
    assert work["metadata"]["name"] == work_name("redis-cache-configure")
    assert work["metadata"]["name"].startswith("redis-cache-configure-")
    assert work["metadata"]["namespace"] == "team-a"
    assert work["metadata"]["labels"] == {
        "kratix.io/promise-name": "redis",
        "kratix.io/work-type": "resource",
        "kratix.io/pipeline-name": "configure",
        "kratix.io/resource-name": "cache",
        "kratix.io/resource-namespace": "team-a",
    }
    assert [g["id"] for g in work["spec"]["workloadGroups"]] == [group_id("."), group_id("db")]
    assert work["status"]["workPlacements"] == work["status"]["workPlacementsCreated"] == 2
    ready = next(c for c in work["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["message"]) == ("True", "Ready")
    assert work["_ktx"] == {"resourceVersion": "42"}


def test_workplacements_carry_kratix_labels_and_misplaced():
    owner = Owner(
        request(placements=[placed("configure", ".", "dev"), placed("configure", ".", "old", misplaced=True)]),
        "redis",
    )
    good, moved = owner.workplacements()
    work = work_name("redis-cache-configure")
    assert good["metadata"]["name"] == f"{work}.dev-{group_id('.')[:5]}"
    assert good["metadata"]["labels"] == {
        "kratix.io/work": work,
        "kratix.io/workload-group-id": group_id("."),
        "kratix.io/targetDestinationName": "dev",
        "kratix.io/pipeline-name": "configure",
    }
    assert good["metadata"]["finalizers"] == [REPO_CLEANUP_FINALIZER]
    assert moved["metadata"]["labels"][MISPLACED] == "true"
    assert good["spec"] | {"targetDestinationName": "dev", "resourceName": "cache"} == good["spec"]
    ready = {
        w["metadata"]["name"]: next(c for c in w["status"]["conditions"] if c["type"] == "Ready") for w in (good, moved)
    }
    assert [c["message"] for c in ready.values()] == ["Ready", "Misplaced"]
    (work_obj,) = owner.works()
    ready = next(c for c in work_obj["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], ready["message"]) == ("Misplaced", "Misplaced")


def test_pending_and_failing_groups_show_on_the_work():
    pending = Owner(request(pending=[{"pipeline": "configure", "directory": ".", "selector": {"env": "x"}}]), "redis")
    (work,) = pending.works()
    assert work["status"]["workPlacementsCreated"] == 0
    assert work["spec"]["workloadGroups"][0]["destinationSelectors"] == [{"matchLabels": {"env": "x"}}]
    assert [c["message"] for c in work["status"]["conditions"]] == [
        f"No matching destination found for workloadGroups: [{group_id('.')}]",
        "Pending",
    ]
    failing = Owner(request(placements=[placed("configure", ".", "dev", error="push refused")]), "redis")
    (wp,) = failing.workplacements()
    write = next(c for c in wp["status"]["conditions"] if c["type"] == "WriteSucceeded")
    assert (write["status"], write["message"]) == ("False", "push refused")
    (work,) = failing.works()
    assert work["status"]["conditions"][-1]["message"] == "Failing"
    assert wp["metadata"]["name"] in work["status"]["conditions"][0]["message"]


def test_promise_works_live_in_the_platform_namespace_static_deps_too():
    obj = promise("redis", "Redis")
    obj["metadata"] |= {"uid": UID, "creationTimestamp": "2026-01-02T03:04:05Z"}
    obj["_ktx"] = {
        "placements": [placed("", ".", "dev"), placed("install", ".", "dev"), placed("x", ".", "gone", removing=True)]
    }
    static, installed = Owner(obj, "redis").works()
    assert static["metadata"]["name"] == work_name("redis-static-deps")
    assert static["metadata"]["labels"] == {
        "kratix.io/promise-name": "redis",
        "kratix.io/work-type": "static-dependency",
    }
    assert installed["metadata"]["labels"]["kratix.io/work-type"] == "promise"
    assert {static["metadata"]["namespace"], installed["metadata"]["namespace"]} == {"kratix-platform-system"}
    assert "resourceName" not in installed["spec"]
    assert len(Owner(obj, "redis").workplacements()) == 2, "a placement being removed is not shown"


def test_events_from_the_memo_name_their_object():
    obj = request(
        events=[
            {
                "type": "Normal",
                "reason": "PipelineStarted",
                "message": "a",
                "first_seen": "2026-01-02T03:04:05Z",
                "last_seen": "2026-01-02T03:04:05Z",
                "count": 1,
            },
            {
                "type": "Warning",
                "reason": "Failed",
                "message": "b",
                "first_seen": "2026-01-02T03:04:05Z",
                "last_seen": "2026-01-02T03:05:00Z",
                "count": 3,
            },
        ]
    )
    first, second = events_of(obj, True, "ResourceRequestController")
    assert first["involvedObject"] == {
        "apiVersion": "test.ktx.io/v1",
        "kind": "Redis",
        "name": "cache",
        "namespace": "team-a",
        "uid": UID,
        "resourceVersion": "42",
    }
    assert first["metadata"]["namespace"] == "team-a"
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("cache.")
    assert (second["type"], second["count"], second["lastTimestamp"]) == ("Warning", 3, "2026-01-02T03:05:00Z")
    assert second["source"] == {"component": "ResourceRequestController"}
    assert event_field_value(second, "involvedObject.name") == "cache"
    assert event_field_value(second, "source") == "ResourceRequestController"
    assert {"involvedObject.name", "involvedObject.kind", "involvedObject.namespace", "involvedObject.uid"} <= set(
        SELECTABLE_FIELDS
    )


def test_events_about_a_cluster_scoped_object_live_in_default():
    obj = promise("redis", "Redis")
    obj["metadata"]["uid"] = UID
    obj["_ktx"] = {
        "events": [{"type": "Normal", "reason": "Available", "message": "ok", "first_seen": "x", "last_seen": ""}]
    }
    (event,) = events_of(obj, False, "PromiseController")
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]
    assert event_field_value(event, "involvedObject.namespace") == ""
    assert event["lastTimestamp"] == "x"
