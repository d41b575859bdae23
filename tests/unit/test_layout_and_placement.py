"""Pure rules of where outputs land: filepath modes, canaries, aggregate and ledger files, and Kratix's scheduler
for one Work (sticky, misplaced, spreading, pending, orphans), all without Temporal or a store."""

from __future__ import annotations

import random
from typing import cast

import pytest

from activities.artifacts.store import ArtifactStore
from activities.stores.writes import GroupWrite, StoreChange, UnsafePath, apply_change, check_paths
from domain.catalog import Catalog
from domain.documents import Destination
from domain.errors import InvalidDocument
from domain.layout import (
    Slot,
    aggregate_index_path,
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
    assert sorted(canary_files("dev")) == [
        "dev/dependencies/kratix-canary-namespace.yaml",
        "dev/resources/kratix-canary-configmap.yaml",
    ]
    assert sorted(canary_files("dev", "none")) == [
        "dev/kratix-canary-configmap.yaml",
        "dev/kratix-canary-namespace.yaml",
    ]
    assert sorted(canary_files(".", "aggregatedYAML")) == [
        "kratix-canary-configmap.yaml",
        "kratix-canary-namespace.yaml",
    ]


def test_canaries_are_the_bytes_kratix_writes() -> None:
    # Kratix's internal/controller/destination_controller_test.go expects exactly these contents.
    files = canary_files("test-path", "none")
    assert files["test-path/kratix-canary-namespace.yaml"] == (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kratix-worker-system\nspec: {}\nstatus: {}\n"
    )
    assert files["test-path/kratix-canary-configmap.yaml"] == (
        "apiVersion: v1\ndata:\n  canary: this confirms your infrastructure is reading from Kratix state stores\n"
        "kind: ConfigMap\nmetadata:\n  name: kratix-info\n  namespace: kratix-worker-system\n"
    )
    assert list(canary_files("dev").values()) == list(files.values())


def test_aggregate_is_kratix_concatenation_and_its_index_splits_it_again() -> None:
    blocks = {
        ("wp-b", "x.yaml"): b"a: 1\n---\nb: 2\n",
        ("wp-a", "z.yaml"): b"c: 3\n",
        # os.ReadDir order, depth first: the directory "a" (and what is in it) comes before the file "a.yaml".
        ("wp-a", "a.yaml"): b"d: 4",
        ("wp-a", "a/b.yaml"): b"",
    }
    content, index = compose_aggregate(blocks)
    assert content == b"\n---\nd: 4\n---\nc: 3\n\n---\na: 1\n---\nb: 2\n"
    assert index == b"0 wp-a a/b.yaml\n4 wp-a a.yaml\n5 wp-a z.yaml\n14 wp-b x.yaml\n"
    assert parse_aggregate(content, index) == blocks
    assert compose_aggregate({}) == (b"", b"")
    assert parse_aggregate(None, index) == {} and parse_aggregate(content, None) == {}


@pytest.mark.parametrize("content", [b"edited by hand", b"c: 3\n+++\nd: 4", b"c: 3\n---\nd: 4 and more"])
def test_an_aggregate_that_no_longer_matches_its_index_yields_nothing(content: bytes) -> None:
    assert parse_aggregate(content, b"4 wp-a a.yaml\n4 wp-a b.yaml\n") == {}
    assert parse_aggregate(b"c: 3", b"not an index\n") == {}


def test_aggregate_index_is_outside_the_destination_path() -> None:
    assert aggregate_index_path("dev/aggregated.yaml") == ".ktx/aggregated/dev/aggregated.yaml.index"


class _MemoryTree:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def write(self, path: str, content: bytes) -> None:
        self.files[path] = content

    def delete(self, path: str) -> None:
        self.files.pop(path, None)

    def delete_dir(self, path: str) -> None:
        for key in [k for k in self.files if k.startswith(path.rstrip("/") + "/")]:
            del self.files[key]

    def list(self, path: str) -> list[str]:
        return sorted(k for k in self.files if k.startswith(path + "/") and "/" not in k[len(path) + 1 :])


def test_aggregated_destination_path_holds_only_what_kratix_writes() -> None:
    tree, no_artifacts = _MemoryTree(), cast(ArtifactStore, None)
    one = Slot(mode="aggregatedYAML", path="dev/aggregated.yaml", key="app-one-render-1a2b3.dev-5058f")
    two = Slot(mode="aggregatedYAML", path="dev/aggregated.yaml", key="app-two-render-4c5d6.dev-5058f")
    apply_change(
        tree,
        StoreChange(
            message="m",
            root="store",
            replace=[
                GroupWrite(slot=two, inline={"cm.yaml": "kind: ConfigMap\n"}),
                GroupWrite(slot=one, inline={"b.yaml": "b: 1\n", "a.yaml": "a: 1\n"}),
            ],
        ),
        no_artifacts,
    )
    assert {p: c for p, c in tree.files.items() if p.startswith("store/dev/")} == {
        "store/dev/aggregated.yaml": b"a: 1\n\n---\nb: 1\n\n---\nkind: ConfigMap\n",
    }
    assert "store/.ktx/aggregated/dev/aggregated.yaml.index" in tree.files

    apply_change(tree, StoreChange(message="m", root="store", remove=[one]), no_artifacts)
    assert tree.files["store/dev/aggregated.yaml"] == b"kind: ConfigMap\n"
    apply_change(tree, StoreChange(message="m", root="store", remove=[two]), no_artifacts)
    assert tree.files == {}


def test_ledger_lists_files_relative_to_the_store_path() -> None:
    assert ledger_text(["dev/b.yaml", "dev/a.yaml"]) == "files:\n- dev/a.yaml\n- dev/b.yaml\n"
    assert ledger_files(ledger_text(["dev/a.yaml"]).encode(), "dev") == ["dev/a.yaml"]
    assert ledger_files(None, "dev") == []


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../../b", "x/.git/config"])
def test_paths_outside_the_store_are_refused_before_batching(path: str) -> None:
    with pytest.raises(UnsafePath):
        check_paths(StoreChange(message="m", files={path: b""}))


def test_secret_documents_are_validated_and_never_printed() -> None:
    secret = parse_secret(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"username": "bot"},
        }
    )
    assert secret.data == {"password": b"hunter2", "username": b"bot"} and secret.namespace == "default"
    assert "hunter2" not in repr(secret)
    with pytest.raises(InvalidDocument) as refused:
        parse_secret({"metadata": {"name": "Bad_Name"}, "data": {"k": "not base64!"}})
    assert {e.field for e in refused.value.errors} == {"metadata.name", "data.k"}


# --- the scheduler for one Work ---


def catalog(**destinations: dict[str, str]) -> Catalog:
    found = Catalog()
    for name, labels in destinations.items():
        found.destinations[name] = Destination.model_validate(
            {
                "apiVersion": "platform.kratix.io/v1alpha1",
                "kind": "Destination",
                "metadata": {"name": name, "labels": labels},
                "spec": {"path": name, "stateStoreRef": {"kind": "GitStateStore", "name": "s"}},
            }
        )
    return found


def output(dependency: bool, selector: dict[str, str]) -> PipelineOutput:
    group = WorkloadGroup(
        directory=".",
        files=["cm.yaml"],
        selectors=[DestinationSelector(match_labels=selector, source=SelectorSource.PROMISE)] if selector else [],
    )
    return PipelineOutput(
        pipeline="p",
        groups=[group],
        dependency=dependency,
        identifier="app-one-p",
        namespace="ns",
        nested_root="resources/ns/app/one/p",
    )


def never(_: Placement) -> bool:
    return False


def test_a_resource_group_is_placed_once_and_stays_put() -> None:
    rng = random.Random(1)
    first = plan_output(catalog(a={"env": "dev"}, b={"env": "dev"}), output(False, {"env": "dev"}), [], rng, never)
    [placed] = first.placements
    assert len(first.writes) == 1 and first.pending == []
    again = plan_output(
        catalog(a={"env": "dev"}, b={"env": "dev"}, c={"env": "dev"}),
        output(False, {"env": "dev"}),
        first.placements,
        rng,
        never,
    )
    assert again.placements == [placed] and again.writes == [] and again.removals == []


def test_a_relabelled_destination_flags_misplaced_and_keeps_the_files() -> None:
    placed = plan_output(
        catalog(a={"env": "dev"}), output(False, {"env": "dev"}), [], random.Random(0), never
    ).placements
    moved = plan_output(catalog(a={"env": "prod"}), output(False, {"env": "dev"}), placed, random.Random(0), never)
    assert [p.misplaced for p in moved.placements] == [True] and moved.writes == [] and moved.removals == []


def test_dependencies_spread_to_every_new_match_and_wait_when_none() -> None:
    deps = output(True, {"env": "dev"})
    assert plan_output(catalog(x={"env": "prod"}), deps, [], random.Random(0), never).pending[0].selector == {
        "env": "dev"
    }
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
