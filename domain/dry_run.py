"""Kratix's DryRun (platform.kratix.io/v1alpha1, a preview in Kratix): what it asks for, the name of its ephemeral
request, the summary it writes and the conditions it ends with, exactly as Kratix's dryrun_controller.go has them.

Pure: the workflow that runs a dry run reads and writes through activities and hands the files to these functions.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from domain.errors import FieldError, InvalidDocument
from domain.labels import PROMISE_NAME
from domain.names import LABEL_MAX, NAMESPACE_PATTERN, NAME_PATTERN
from domain.validation import object_at, validate_name

KIND = "DryRun"
# Labels Kratix puts on a dry run's request and Works, and on the Destinations that may receive them.
DRY_RUN = "kratix.io/dry-run"
DRY_RUN_OWNER = "kratix.io/dry-run-owner"
DRY_RUN_SUMMARY = "kratix.io/dry-run-summary"
DRY_RUN_PARENT = "kratix.io/dry-run-parent"
RESOURCE_NAME_ANNOTATION = "kratix.io/dry-run-resource-name"
RESOURCE_NAMESPACE_ANNOTATION = "kratix.io/dry-run-resource-namespace"
# What a compound request's output carries on the component requests a dry run follows (work_types.go).
PARENT_RESOURCE_NAME = "kratix.io/parent-resource-name"
ENV = "KRATIX_DRY_RUN"
# The status message a dry run's request ends with (the status writer's, update_status.go).
EXECUTED_MESSAGE = "Dry run executed"

COMPLETED = "Completed"
COMPONENTS_SUCCEEDED = "ComponentsSucceeded"
# How long a compound dry run waits for its components before it writes a partial summary (Kratix's 10 minutes).
COMPONENT_TIMEOUT_S = 600
# Kratix bounds neither. Each level of components is a level of workflows running pipelines, and each component's
# diff travels up to the one that raised it: five levels is more nesting than any compound Promise seen in the
# marketplace (two), and ten components per request keeps a parent's status and diffs well under Temporal's 2 MB.
MAX_DEPTH = 5
MAX_COMPONENTS = 10
# An output file larger than this is not looked into for component requests: a request is a small document.
COMPONENT_FILE_BYTES = 1024 * 1024
# Kratix's generated names: at most 63 characters, the last six a '-' and five hex digits of an md5.
_NAME_MAX = 63 - 1 - 5
_ALNUM_END = re.compile(r"[^a-zA-Z0-9]+$")

Phase = Literal["Pending", "Succeeded", "Failed"]


@dataclass(frozen=True)
class DryRunSpec:
    name: str
    namespace: str
    promise: str
    # The live request the preview is diffed against; when it does not exist every file is "added".
    live_name: str
    live_namespace: str
    # The proposed request's spec, in the shape the Promise's API expects.
    resource: dict[str, Any]


def parse_dry_run(document: dict[str, Any]) -> DryRunSpec:
    """The DryRun's fields, or InvalidDocument naming each one at fault (every name by Kubernetes' grammar)."""
    metadata, spec = object_at(document, "metadata"), object_at(document, "spec")
    promise_ref, ref = object_at(document, "spec.promiseRef"), object_at(document, "spec.resourceRequestRef")
    namespace = metadata.get("namespace") or "default"
    errors = [
        *validate_name("metadata.name", metadata.get("name"), max_length=LABEL_MAX, pattern=NAME_PATTERN),
        *validate_name("metadata.namespace", namespace, max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN),
        *validate_name("spec.promiseRef.name", promise_ref.get("name"), max_length=LABEL_MAX, pattern=NAME_PATTERN),
        *validate_name("spec.resourceRequestRef.name", ref.get("name"), max_length=LABEL_MAX, pattern=NAME_PATTERN),
    ]
    live_namespace = ref.get("namespace") or namespace
    errors += validate_name(
        "spec.resourceRequestRef.namespace", live_namespace, max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN
    )
    resource = spec.get("resource")
    if not isinstance(resource, dict):
        errors.append(FieldError("spec.resource", "Required value: the proposed request's spec, an object"))
    if errors:
        raise InvalidDocument(errors)
    return DryRunSpec(
        name=metadata["name"],
        namespace=namespace,
        promise=promise_ref["name"],
        live_name=ref["name"],
        live_namespace=live_namespace,
        resource=resource,  # type: ignore[arg-type]
    )


def live_namespace(document: dict[str, Any]) -> str | None:
    """The namespace of the live request a DryRun document names, when it is another than the DryRun's own (so the
    API can authorise the read of it); None for any other document, or one that names none."""
    if document.get("kind") != KIND or not isinstance(document.get("spec"), dict):
        return None
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    ref = document["spec"].get("resourceRequestRef")
    live = ref.get("namespace") if isinstance(ref, dict) else None
    own = metadata.get("namespace") or "default"  # type: ignore[union-attr]
    return live if isinstance(live, str) and live and live != own else None


def deterministic_name(name: str, *hashing_inputs: str) -> str:
    """Kratix's objectutil.GenerateDeterministicObjectName: the name cut to fit, ending alphanumeric, then '-' and
    the first five hex digits of the md5 of the whole name (or of the hashing inputs joined by '-', when given)."""
    hashed = "-".join(hashing_inputs) if hashing_inputs else name
    digest = hashlib.md5(hashed.encode(), usedforsecurity=False).hexdigest()[:5]
    if len(name) > _NAME_MAX:
        name = name[: _NAME_MAX - 1]
    return f"{_ALNUM_END.sub('', name)}-{digest}"


def ephemeral_name(dry_run: str) -> str:
    """The request a dry run creates beside the live one, in the DryRun's namespace."""
    return deterministic_name(f"kratix-dry-run-{dry_run}")


def summary_filepath(dry_run: str, *, component: bool) -> str:
    """A component's summary gets its own name, so that with `filepath.mode: none` summaries do not overwrite."""
    return f"kratix-dry-run-summary-{dry_run}.md" if component else "kratix-dry-run-summary.md"


@dataclass(frozen=True)
class FileChanges:
    added: list[str]
    modified: list[str]
    removed: list[str]

    @property
    def any(self) -> bool:
        return bool(self.added or self.modified or self.removed)


def changes(live: dict[str, str], proposed: dict[str, str]) -> FileChanges:
    return FileChanges(
        added=sorted(p for p in proposed if p not in live),
        modified=sorted(p for p in proposed if p in live and live[p] != proposed[p]),
        removed=sorted(p for p in live if p not in proposed),
    )


def line_diff(old: str, new: str) -> str:
    """Every line of both sides, each marked ' ', '-' or '+', as Kratix's line-mode diff (whole files, no hunks)."""
    a, b = old.splitlines(), new.splitlines()
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [f" {line}" for line in a[i1:i2]]
            continue
        out += [f"-{line}" for line in a[i1:i2]]
        out += [f"+{line}" for line in b[j1:j2]]
    return "".join(f"{line}\n" for line in out)


def render_diff(live: dict[str, str], proposed: dict[str, str]) -> str:
    """One pipeline's section of the summary: counts, then each added, modified and removed file (dryRunRenderDiff)."""
    found = changes(live, proposed)
    parts = [f"**{len(found.added)} added · {len(found.modified)} modified · {len(found.removed)} removed**\n"]
    if not found.any:
        parts.append("\nNo changes.\n")
        return "".join(parts)
    for path in found.added:
        parts.append(f"\n---\n\n## ➕ Added: `{path}`\n\n```yaml\n{proposed[path].rstrip(chr(10))}\n```\n")
    for path in found.modified:
        diff = f"--- a/{path}\n+++ b/{path}\n{line_diff(live[path], proposed[path])}"
        parts.append(f"\n---\n\n## ✏️ Modified: `{path}`\n\n```diff\n{diff}```\n")
    for path in found.removed:
        parts.append(f"\n---\n\n## 🗑️ Removed: `{path}`\n\n```yaml\n{live[path].rstrip(chr(10))}\n```\n")
    return "".join(parts)


@dataclass(frozen=True)
class Component:
    """A component dry run a compound one raised, as status.components lists it."""

    promise: str
    request: str
    namespace: str
    dry_run: str
    phase: Phase = "Pending"
    message: str = ""
    # The component's own summary, once it succeeded.
    summary: str = ""

    def status(self) -> dict[str, str]:
        entry = {
            "promise": self.promise,
            "request": self.request,
            "namespace": self.namespace,
            "dryRun": self.dry_run,
            "phase": self.phase,
        }
        if self.message:
            entry["message"] = self.message
        return {k: v for k, v in entry.items() if v}


SUMMARY_TITLE = "# Kratix Dry Run Summary\n\n"


def _component_body(component: Component) -> str:
    """A component's diff nested one level down, or what stands in for it (componentSummaryBody)."""
    if component.phase == "Failed":
        return f"> **Dry run failed.** {component.message}\n"
    if component.phase == "Pending":
        return "> **Dry run did not complete** within the timeout. No diff available for this component.\n"
    if not component.summary:
        return "> No changes.\n"
    body = component.summary.removeprefix(SUMMARY_TITLE)
    return body.replace("## Pipeline: ", "### Pipeline: ")


def summary(
    sections: dict[str, str], promise: str, live_name: str, components: list[Component] | None = None
) -> str | None:
    """kratix-dry-run-summary.md from each pipeline's rendered diff; None when there is nothing to say (no pipeline
    wrote files and no components), as Kratix then writes no summary."""
    components = components or []
    if not sections and not components:
        return None
    text = [SUMMARY_TITLE]
    ordered = sorted(sections.items())
    if not components:
        for index, (pipeline, content) in enumerate(ordered):
            if index:
                text.append("\n---\n\n")
            text.append(f"## Pipeline: `{pipeline}`\n\n{content}")
        return "".join(text)
    text.append(f"## Compound request: `{promise}` / `{live_name}`\n\n")
    for pipeline, content in ordered:
        text.append(f"### Pipeline: `{pipeline}`\n\n{content}\n")
    for component in components:
        text.append("\n---\n\n")
        text.append(f"## Component request: `{component.promise}` / `{component.request}`\n\n")
        text.append(_component_body(component))
    return "".join(text)


def completed_condition(failure: str | None) -> tuple[str, str, str]:
    """(status, reason, message) of `Completed`: True once the summary is written, False when a pipeline failed."""
    if failure is not None:
        return "False", "PipelineFailed", failure
    return "True", "SummaryWritten", "Dry run completed; summary written to output repository"


def components_condition(components: list[Component]) -> tuple[str, str, str]:
    """(status, reason, message) of `ComponentsSucceeded`, set only for compound requests: the condition to gate on,
    since a partial summary still leaves `Completed` True."""
    failed = [f"{c.promise}/{c.request}" for c in components if c.phase == "Failed"]
    incomplete = [f"{c.promise}/{c.request}" for c in components if c.phase == "Pending"]
    if failed:
        return "False", "ComponentDryRunFailed", "Preview is incomplete; these components failed: " + ", ".join(failed)
    if incomplete:
        return (
            "False",
            "ComponentDryRunIncomplete",
            f"Preview is incomplete; these components did not finish within {COMPONENT_TIMEOUT_S // 60}m0s: "
            + ", ".join(incomplete),
        )
    return "True", "AllComponentsSucceeded", "All component dry runs completed"


def component_phase(status: dict[str, Any]) -> tuple[Phase, str]:
    """A child DryRun's phase from its Completed condition (componentStatuses)."""
    for condition in status.get("conditions") or []:
        if condition.get("type") != COMPLETED:
            continue
        if condition.get("status") == "True":
            return "Succeeded", ""
        return "Failed", str(condition.get("message") or "")
    return "Pending", ""


def component_documents(files: dict[str, str]) -> list[dict[str, Any]]:
    """The documents of a dry run's output that are component requests, in path order: those labelled
    kratix.io/parent-resource-name, Kratix's whole contract (componentRequests). A file that is not YAML is skipped,
    as Kratix skips it; so is a document without a name or a spec object, which no Promise could serve."""
    found: list[dict[str, Any]] = []
    for path in sorted(files):
        if len(files[path]) > COMPONENT_FILE_BYTES:
            continue
        try:
            docs = list(yaml.safe_load_all(files[path]))
        except yaml.YAMLError:
            continue
        for doc in docs:
            metadata = doc.get("metadata") if isinstance(doc, dict) else None
            labels = metadata.get("labels") if isinstance(metadata, dict) else None
            if not isinstance(labels, dict) or not labels.get(PARENT_RESOURCE_NAME):
                continue
            if isinstance(metadata.get("name"), str) and isinstance(doc.get("spec", {}), dict):  # type: ignore[union-attr]
                found.append(doc)
    return found


def component_dry_run(parent: DryRunSpec, promise: str, request: dict[str, Any]) -> dict[str, Any]:
    """The DryRun a compound dry run raises for one component request (ensureComponentDryRuns): in the parent's
    namespace, labelled with its parent, diffed against the live component request of that name."""
    metadata = request["metadata"]
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": KIND,
        "metadata": {
            "name": deterministic_name(f"{parent.name}-{promise}-{metadata['name']}"),
            "namespace": parent.namespace,
            "labels": {DRY_RUN_PARENT: parent.name, PROMISE_NAME: promise},
        },
        "spec": {
            "promiseRef": {"name": promise},
            "resourceRequestRef": {
                "name": metadata["name"],
                "namespace": metadata.get("namespace") or parent.namespace,
            },
            "resource": request.get("spec") or {},
        },
    }
