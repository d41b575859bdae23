"""Pure rules of where outputs land: filepath modes, canaries, aggregate and ledger files, and Kratix's scheduler
for one Work (sticky, misplaced, spreading, pending, orphans), all without Temporal or a store."""

from __future__ import annotations

import random

import pytest

from activities.store_writes import StoreChange, UnsafePath, check_paths
from domain.catalog import Catalog
from domain.documents import Destination
from domain.errors import InvalidDocument
from domain.layout import (
    canary_files,
    compose_aggregate,
    group_slot,
    ledger_files,
    ledger_text,
    parse_aggregate,
    work_name,
    workplacement_name,
)
from domain.scheduling import DestinationSelector, SelectorSource, WorkloadGroup
from domain.secrets import parse_secret
from workflows.delivery import PipelineOutput, Placement, plan_output


def test_group_slots_follow_the_destination_filepath_mode() -> None:
    wp = workplacement_name(work_name("app-one-render"), "dev", ".")
    assert wp.startswith("app-one-render-") and wp.endswith(".dev-5058f")
    nested = group_slot("nestedByMetadata", "dev", "dev/resources/ns/app/one/render/5058f", "ns", wp)
    assert (nested.path, nested.key) == ("dev/resources/ns/app/one/render/5058f", "")
    flat = group_slot("none", "dev", "ignored", "ns", wp)
    assert (flat.path, flat.key) == ("dev", f"dev/.kratix/ns-{wp}.yaml")
    aggregated = group_slot("aggregatedYAML", "/", "ignored", "ns", wp)
    assert (aggregated.path, aggregated.key) == ("aggregated.yaml", wp)
    assert group_slot("aggregatedYAML", "dev", "x", "ns", wp, "all.yaml").path == "dev/all.yaml"


def test_canaries_sit_in_kratix_places_for_each_mode() -> None:
    assert sorted(canary_files("dev")) == ["dev/dependencies/kratix-canary-namespace.yaml", "dev/resources/kratix-canary-configmap.yaml"]
    assert sorted(canary_files("dev", "none")) == ["dev/kratix-canary-configmap.yaml", "dev/kratix-canary-namespace.yaml"]
    assert sorted(canary_files(".", "aggregatedYAML")) == ["kratix-canary-configmap.yaml", "kratix-canary-namespace.yaml"]


def test_aggregate_blocks_round_trip_even_with_multi_document_content() -> None:
    blocks = {("wp-b", "x.yaml"): "a: 1\n---\nb: 2", ("wp-a", "y.yaml"): "c: 3"}
    text = compose_aggregate(blocks)
    assert text.index("c: 3") < text.index("a: 1")  # sorted by WorkPlacement, as Kratix sorts WPs by name
    assert parse_aggregate(text.encode()) == blocks
    assert parse_aggregate(None) == {} and compose_aggregate({}) == ""


def test_ledger_lists_files_relative_to_the_store_path() -> None:
    assert ledger_text(["dev/b.yaml", "dev/a.yaml"]) == "files:\n- dev/a.yaml\n- dev/b.yaml\n"
    assert ledger_files(ledger_text(["dev/a.yaml"]).encode()) == ["dev/a.yaml"]
    assert ledger_files(None) == []


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../../b", "x/.git/config"])
def test_paths_outside_the_store_are_refused_before_batching(path: str) -> None:
    with pytest.raises(UnsafePath):
        check_paths(StoreChange(message="m", files={path: b""}))


def test_secret_documents_are_validated_and_never_printed() -> None:
    secret = parse_secret({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                           "data": {"password": "aHVudGVyMg=="}, "stringData": {"username": "bot"}})
    assert secret.data == {"password": b"hunter2", "username": b"bot"} and secret.namespace == "default"
    assert "hunter2" not in repr(secret)
    with pytest.raises(InvalidDocument) as refused:
        parse_secret({"metadata": {"name": "Bad_Name"}, "data": {"k": "not base64!"}})
    assert {e.field for e in refused.value.errors} == {"metadata.name", "data.k"}


# --- the scheduler for one Work ---

def catalog(**destinations: dict[str, str]) -> Catalog:
    found = Catalog()
    for name, labels in destinations.items():
        found.destinations[name] = Destination.model_validate({
            "apiVersion": "platform.kratix.io/v1alpha1", "kind": "Destination", "metadata": {"name": name, "labels": labels},
            "spec": {"path": name, "stateStoreRef": {"kind": "GitStateStore", "name": "s"}}})
    return found


def output(dependency: bool, selector: dict[str, str]) -> PipelineOutput:
    group = WorkloadGroup(directory=".", files=["cm.yaml"],
                          selectors=[DestinationSelector(match_labels=selector, source=SelectorSource.PROMISE)] if selector else [])
    return PipelineOutput(pipeline="p", groups=[group], dependency=dependency, identifier="app-one-p", namespace="ns",
                          nested_root="resources/ns/app/one/p")


def never(_: Placement) -> bool:
    return False


def test_a_resource_group_is_placed_once_and_stays_put() -> None:
    rng = random.Random(1)
    first = plan_output(catalog(a={"env": "dev"}, b={"env": "dev"}), output(False, {"env": "dev"}), [], rng, never)
    [placed] = first.placements
    assert len(first.writes) == 1 and first.pending == []
    again = plan_output(catalog(a={"env": "dev"}, b={"env": "dev"}, c={"env": "dev"}), output(False, {"env": "dev"}),
                        first.placements, rng, never)
    assert again.placements == [placed] and again.writes == [] and again.removals == []


def test_a_relabelled_destination_flags_misplaced_and_keeps_the_files() -> None:
    placed = plan_output(catalog(a={"env": "dev"}), output(False, {"env": "dev"}), [], random.Random(0), never).placements
    moved = plan_output(catalog(a={"env": "prod"}), output(False, {"env": "dev"}), placed, random.Random(0), never)
    assert [p.misplaced for p in moved.placements] == [True] and moved.writes == [] and moved.removals == []


def test_dependencies_spread_to_every_new_match_and_wait_when_none() -> None:
    deps = output(True, {"env": "dev"})
    assert plan_output(catalog(x={"env": "prod"}), deps, [], random.Random(0), never).pending[0].selector == {"env": "dev"}
    first = plan_output(catalog(a={"env": "dev"}), deps, [], random.Random(0), never)
    spread = plan_output(catalog(a={"env": "dev"}, b={"env": "dev"}), deps, first.placements, random.Random(0), never)
    assert [w.placement.destination for w in spread.writes] == ["b"]
    assert sorted(p.destination for p in spread.placements) == ["a", "b"]


def test_a_deleted_destination_leaves_orphans_unless_cleanup_asks_and_the_group_moves() -> None:
    placed = plan_output(catalog(a={}), output(False, {}), [], random.Random(0), never).placements
    moved = plan_output(catalog(b={}), output(False, {}), placed, random.Random(0), never)
    assert [p.destination for p in moved.placements] == ["b"] and moved.removals == []
    wiped = catalog(b={})
    wiped.removed_destinations["a"] = "all"
    cleaned = plan_output(wiped, output(False, {}), placed, random.Random(0), never)
    assert [p.destination for p in cleaned.removals] == ["a"]


def test_strict_destinations_only_take_work_that_selects_them() -> None:
    strict = catalog(edge={"tier": "edge"})
    strict.destinations["edge"].spec.strict_match_labels = True
    assert plan_output(strict, output(False, {}), [], random.Random(0), never).pending
    assert plan_output(strict, output(False, {"tier": "edge"}), [], random.Random(0), never).placements
