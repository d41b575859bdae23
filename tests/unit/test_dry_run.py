"""domain/dry_run.py against Kratix's dryrun_controller.go: names, the summary's exact text, the conditions."""

from __future__ import annotations

import hashlib
import random

import pytest

from activities.pipelines.models import PipelineContext
from activities.pipelines.platform_access import PlatformAccess
from domain.documents import Container
from domain import dry_run as dr
from domain.errors import InvalidDocument
from tests.integration.test_hostile_fields import run_input
from tests.unit.test_layout_and_placement import catalog, never, output
from tests.unit.test_pipeline_token import allows
from workflows.delivery import plan_output


def document(**spec: object) -> dict:
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "DryRun",
        "metadata": {"name": "preview", "namespace": "team-a"},
        "spec": {"promiseRef": {"name": "app"}, "resourceRequestRef": {"name": "shop"}, "resource": {}, **spec},
    }


def test_the_live_request_defaults_to_the_dry_runs_namespace_and_every_name_is_checked() -> None:
    spec = dr.parse_dry_run(document(resource={"size": "l"}))
    assert (spec.live_name, spec.live_namespace, spec.resource) == ("shop", "team-a", {"size": "l"})
    bad = document(promiseRef={"name": "--x"}, resourceRequestRef={"name": "a", "namespace": "Bad"})
    bad["spec"].pop("resource")
    with pytest.raises(InvalidDocument) as refused:
        dr.parse_dry_run(bad)
    assert {e.field for e in refused.value.errors} == {
        "spec.promiseRef.name",
        "spec.resourceRequestRef.namespace",
        "spec.resource",
    }
    assert dr.live_namespace(document()) is None
    assert dr.live_namespace(document(resourceRequestRef={"name": "a", "namespace": "team-b"})) == "team-b"


def test_names_are_kratix_deterministic_names() -> None:
    digest = hashlib.md5(b"kratix-dry-run-preview").hexdigest()[:5]
    assert dr.ephemeral_name("preview") == f"kratix-dry-run-preview-{digest}"
    long = "x" * 70 + "-"
    assert len(dr.deterministic_name(long)) <= 63 and dr.deterministic_name(long)[-6] == "-"
    assert dr.summary_filepath("c", component=True) == "kratix-dry-run-summary-c.md"


def test_the_summary_is_kratixs_byte_for_byte() -> None:
    live = {"cm.yaml": "a: 1\nb: 2\n", "gone.yaml": "x: 1\n", "same.yaml": "s: 1\n"}
    proposed = {"cm.yaml": "a: 1\nb: 3\n", "new.yaml": "n: 1\n", "same.yaml": "s: 1\n"}
    section = dr.render_diff(live, proposed)
    assert section == (
        "**1 added · 1 modified · 1 removed**\n"
        "\n---\n\n## ➕ Added: `new.yaml`\n\n```yaml\nn: 1\n```\n"
        "\n---\n\n## ✏️ Modified: `cm.yaml`\n\n```diff\n--- a/cm.yaml\n+++ b/cm.yaml\n a: 1\n-b: 2\n+b: 3\n```\n"
        "\n---\n\n## 🗑️ Removed: `gone.yaml`\n\n```yaml\nx: 1\n```\n"
    )
    assert dr.render_diff({"a": "1"}, {"a": "1"}) == "**0 added · 0 modified · 0 removed**\n\nNo changes.\n"
    text = dr.summary({"b": "B\n", "a": "A\n"}, "app", "shop")
    assert text == "# Kratix Dry Run Summary\n\n## Pipeline: `a`\n\nA\n\n---\n\n## Pipeline: `b`\n\nB\n"
    assert dr.summary({}, "app", "shop") is None


def test_a_compound_summary_nests_each_component() -> None:
    child = dr.summary({"p": "C\n"}, "db", "shop-db") or ""
    components = [
        dr.Component("db", "shop-db", "team-a", "c1", "Succeeded", summary=child),
        dr.Component("cache", "shop-cache", "team-a", "c2", "Failed", "boom"),
        dr.Component("queue", "shop-q", "team-a", "c3"),
    ]
    text = dr.summary({"render": "R\n"}, "shop", "shop", components) or ""
    assert text == (
        "# Kratix Dry Run Summary\n\n## Compound request: `shop` / `shop`\n\n### Pipeline: `render`\n\nR\n\n"
        "\n---\n\n## Component request: `db` / `shop-db`\n\n### Pipeline: `p`\n\nC\n"
        "\n---\n\n## Component request: `cache` / `shop-cache`\n\n> **Dry run failed.** boom\n"
        "\n---\n\n## Component request: `queue` / `shop-q`\n\n"
        "> **Dry run did not complete** within the timeout. No diff available for this component.\n"
    )
    assert dr.components_condition(components)[:2] == ("False", "ComponentDryRunFailed")
    assert dr.components_condition(components[2:])[1:] == (
        "ComponentDryRunIncomplete",
        "Preview is incomplete; these components did not finish within 10m0s: queue/shop-q",
    )
    assert dr.components_condition(components[:1]) == (
        "True",
        "AllComponentsSucceeded",
        "All component dry runs completed",
    )
    assert components[1].status() == {
        "promise": "cache",
        "request": "shop-cache",
        "namespace": "team-a",
        "dryRun": "c2",
        "phase": "Failed",
        "message": "boom",
    }


def test_conditions_and_phases() -> None:
    assert dr.completed_condition(None)[:2] == ("True", "SummaryWritten")
    assert dr.completed_condition("pipeline failed: x") == ("False", "PipelineFailed", "pipeline failed: x")
    assert dr.component_phase({}) == ("Pending", "")
    assert dr.component_phase({"conditions": [{"type": "Completed", "status": "False", "message": "m"}]}) == (
        "Failed",
        "m",
    )


def test_kratix_dry_run_is_set_only_in_a_dry_run() -> None:
    context = PipelineContext.of_promise("configure", "app")
    assert "KRATIX_DRY_RUN" not in context.env("p")
    assert context.model_copy(update={"dry_run": True}).env("p")["KRATIX_DRY_RUN"] == "true"


def test_real_output_never_goes_to_a_dry_run_destination_and_dry_run_output_only_there() -> None:
    both = catalog(real={"env": "dev"}, preview={"env": "dev", dr.DRY_RUN: "true"})
    for _ in range(20):  # the choice among matches is random: every draw keeps to its side
        rng = random.Random(_)
        assert [
            p.destination for p in plan_output(both, output(True, {"env": "dev"}), [], rng, never, False).placements
        ] == ["real"]
        assert [p.destination for p in plan_output(both, output(True, {}), [], rng, never, True).placements] == [
            "preview"
        ]
    # Histories from before the split saw every Destination.
    assert len(plan_output(both, output(True, {"env": "dev"}), [], random.Random(0), never).placements) == 2


def test_a_dry_runs_pipeline_token_writes_nothing() -> None:
    access = PlatformAccess(token_key=b"k" * 32, ca_pem=b"", service_host="h", service_port=443)
    real = run_input("r", Container(name="c", image="busybox"))
    dry = real.model_copy(update={"context": real.context.model_copy(update={"dry_run": True})})
    obj = real.context
    assert allows(
        access.claims(real),
        "patch",
        obj.object_group,
        obj.crd_plural,
        obj.object_namespace,
        obj.object_name,
        subresource="status",
    )
    claims = access.claims(dry)
    assert claims.rules and all(set(r.verbs) <= {"get", "list", "watch"} for r in claims.rules)
    assert not allows(
        claims, "patch", obj.object_group, obj.crd_plural, obj.object_namespace, obj.object_name, subresource="status"
    )
    assert allows(claims, "get", obj.object_group, obj.crd_plural, obj.object_namespace, obj.object_name)


def test_component_requests_are_the_documents_labelled_with_a_parent_and_each_gets_a_dry_run() -> None:
    labelled = {"kratix.io/parent-resource-name": "shop"}
    files = {
        "b/db.yaml": "kind: Database\nmetadata: {name: db, labels: {kratix.io/parent-resource-name: shop}}\n"
        "spec: {size: l}\n---\nkind: ConfigMap\nmetadata: {name: plain}\n",
        "a/notes.txt": "not: [yaml",
        "c/nameless.yaml": "kind: Database\nmetadata: {labels: {kratix.io/parent-resource-name: shop}}\n",
        "d/big.yaml": "x" * (dr.COMPONENT_FILE_BYTES + 1),
    }
    [found] = dr.component_documents(files)
    assert found["metadata"] == {"name": "db", "labels": labelled}
    parent = dr.parse_dry_run(document(resource={"size": "l"}))
    child = dr.component_dry_run(parent, "database", found)
    digest = hashlib.md5(f"{parent.name}-database-db".encode()).hexdigest()[:5]
    assert child["metadata"] == {
        "name": f"{parent.name}-database-db-{digest}",
        "namespace": parent.namespace,
        "labels": {"kratix.io/dry-run-parent": parent.name, "kratix.io/promise-name": "database"},
    }
    assert child["spec"] == {
        "promiseRef": {"name": "database"},
        "resourceRequestRef": {"name": "db", "namespace": parent.namespace},
        "resource": {"size": "l"},
    }
    assert dr.parse_dry_run(child).promise == "database"
