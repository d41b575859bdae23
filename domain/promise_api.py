"""The resource API a Promise offers: read from the CustomResourceDefinition in `spec.api`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from domain.documents import Pipeline, Promise
from domain.durations import check_wait, parse_duration
from domain.errors import FieldError, InvalidDocument
from domain.labels import PAUSED, PROMISE_VERSION, RECONCILIATION_INTERVAL, is_true, label_errors
from domain.pipeline_rules import check_pipeline
from domain.pod_fields import podman_refusals
from domain.scheduling import squash
from domain.validation import validate_namespace


class PromiseApi(BaseModel):
    """What the platform needs to serve, route and validate a Promise's resource requests."""

    promise: str
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: list[str] = Field(default_factory=list)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    # What the Kubernetes API serves beside `version` (the stored one), from the CRD: every served version (conversion
    # `None`: the same object under each apiVersion), `names.categories` and the columns `kubectl get` prints.
    # Catalogs written before these existed read as the one version, no categories and Kratix's default columns.
    served_versions: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    printer_columns: list[dict[str, Any]] = Field(default_factory=list)

    model_config = {"populate_by_name": True}

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def names(self) -> set[str]:
        """Every spelling `ktx get` accepts for this kind, lower-cased like kubectl does."""
        spellings = {self.kind, self.plural, self.singular, f"{self.plural}.{self.group}", *self.short_names}
        return {s.lower() for s in spellings if s}


def read_promise_api(promise_name: str, crd: dict[str, Any]) -> PromiseApi:
    """Parse and check `spec.api`; raises InvalidDocument naming the offending field."""
    errors: list[FieldError] = []
    if crd.get("kind") != "CustomResourceDefinition":
        errors.append(FieldError("spec.api.kind", "must be CustomResourceDefinition"))
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    if not group:
        errors.append(FieldError("spec.api.spec.group", "is required"))
    if not names.get("kind"):
        errors.append(FieldError("spec.api.spec.names.kind", "is required"))
    if not names.get("plural"):
        errors.append(FieldError("spec.api.spec.names.plural", "is required"))
    scope = spec.get("scope", "Namespaced")
    if scope != "Namespaced":
        errors.append(
            FieldError("spec.api.spec.scope", f"promise api needs to be namespace scoped; cannot be: {scope}")
        )
    versions = spec.get("versions") or []
    if not versions:
        errors.append(FieldError("spec.api.spec.versions", "at least one version is required"))
    crd_name = (crd.get("metadata") or {}).get("name")
    if names.get("plural") and group and crd_name != f"{names['plural']}.{group}":
        errors.append(FieldError("spec.api.metadata.name", f"must be '{names['plural']}.{group}'"))
    if errors:
        raise InvalidDocument(errors)
    # Kratix serves the storage version, else the first one listed.
    chosen = next((v for v in versions if v.get("storage")), versions[0])
    schema = ((chosen.get("schema") or {}).get("openAPIV3Schema")) or {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    served = [str(v["name"]) for v in versions if v.get("served", True) and v.get("name")]
    return PromiseApi(
        promise=promise_name,
        group=group,
        version=chosen["name"],
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        short_names=list(names.get("shortNames") or []),
        schema=schema,
        served_versions=served if chosen["name"] in served else [chosen["name"], *served],
        categories=[str(c) for c in names.get("categories") or []],
        printer_columns=_printer_columns(chosen.get("additionalPrinterColumns")),
    )


# Columns `kubectl get` prints: a handful in practice; the bound keeps a hostile CRD from making every table huge.
PRINTER_COLUMNS_MAX = 32
_COLUMN_TYPES = {"integer", "number", "string", "boolean", "date"}


def _printer_columns(columns: Any) -> list[dict[str, Any]]:
    """The CRD's additionalPrinterColumns the table can print: well-formed entries only (name and jsonPath strings,
    a known type, an integer priority), at most PRINTER_COLUMNS_MAX; the rest are left out rather than failing a
    list."""
    kept: list[dict[str, Any]] = []
    for column in columns if isinstance(columns, list) else []:
        if not isinstance(column, dict):
            continue
        name, path, type_ = column.get("name"), column.get("jsonPath"), column.get("type", "string")
        priority = column.get("priority", 0)
        if not (isinstance(name, str) and 0 < len(name) <= 256 and isinstance(path, str) and len(path) <= 1024):
            continue
        if type_ not in _COLUMN_TYPES or not isinstance(priority, int) or isinstance(priority, bool):
            continue
        description = column.get("description")
        kept.append(
            {"name": name, "type": type_, "jsonPath": path, "priority": priority}
            | ({"description": description[:1024]} if isinstance(description, str) else {})
            | ({"format": column["format"]} if isinstance(column.get("format"), str) else {})
        )
    return kept[:PRINTER_COLUMNS_MAX]


def check_promise(promise: Promise) -> PromiseApi | None:
    """Kratix's Promise admission rules; returns the API the Promise serves (None for a dependencies-only Promise)."""
    name = promise.metadata.name
    errors = label_errors("metadata.labels", promise.metadata.labels)
    for index, selector in enumerate(promise.spec.destination_selectors):
        errors += label_errors(f"spec.destinationSelectors[{index}].matchLabels", selector.match_labels)
    for type_ in ("promise", "resource"):
        actions = getattr(promise.spec.workflows, type_)
        for action in ("configure", "delete"):
            pipelines = getattr(actions, action)
            names = [p.metadata.name for p in pipelines]
            for index, pipeline_name in enumerate(names):
                errors += check_pipeline(pipelines[index], f"spec.workflows.{type_}.{action}[{index}]")
                field = f"spec.workflows.{type_}.{action}[{index}].metadata.name"
                if names.index(pipeline_name) != index:
                    errors.append(FieldError(field, f"duplicate pipeline name {pipeline_name!r}"))
                pipeline_id = f"{name}-{type_}-{action}-{pipeline_name}"
                if len(pipeline_id) > 60:
                    errors.append(FieldError(field, f"{pipeline_id!r} must be at most 60 characters"))
    config = promise.spec.workflows.config
    if config is not None and config.pipeline_namespace:
        # Jobs, ServiceAccounts and RoleBindings are made there, and it labels them.
        errors += validate_namespace(config.pipeline_namespace, "spec.workflows.config.pipelineNamespace")
    intervals = [
        ("spec.workflows.config.reconciliationInterval", config.reconciliation_interval if config else None),
        (f"metadata.annotations[{RECONCILIATION_INTERVAL}]", promise.metadata.annotations.get(RECONCILIATION_INTERVAL)),
    ]
    for field, value in intervals:
        if value is not None:  # Kratix's minimum, 1m; ktx's maximum, 720h
            errors += check_wait(field, value, minimum_s=60, minimum="1m")
    if errors:
        raise InvalidDocument(errors)
    return read_promise_api(name, promise.spec.api) if promise.spec.api else None


def check_runner(promise: Promise, runner: str | None) -> None:
    """What the platform's pipeline runner can never honour in the Promise's pipelines, refused with each field named
    (InvalidDocument). The Kubernetes runner hands every Pod field to Kubernetes; `None` (a runner not known here)
    refuses nothing, and the runner checks again at each run. The OCI runner is the podman runner starting its
    containers through the OCI runtime (worker/main.py): it honours the same Pod fields, so it refuses the same."""
    if runner not in ("podman", "oci"):
        return
    errors = []
    for type_ in ("promise", "resource"):
        for action in ("configure", "delete"):
            for index, pipeline in enumerate(getattr(getattr(promise.spec.workflows, type_), action)):
                errors += podman_refusals(pipeline.spec.to_doc(), f"spec.workflows.{type_}.{action}[{index}].spec")
    if errors:
        raise InvalidDocument(errors)


def reconciliation_interval(promise: Promise) -> float | None:
    """Kratix precedence: the annotation, then `spec.workflows.config`, else the platform default (None).

    Applies refuse an interval out of bounds; one a Promise was accepted with before still holds (Go's limit keeps it
    within what a timer can hold), and one that does not parse is ignored, as Kratix ignores an invalid annotation,
    rather than failing every workflow that reads it."""
    annotated = promise.metadata.annotations.get(RECONCILIATION_INTERVAL)
    config = promise.spec.workflows.config
    value = annotated or (config.reconciliation_interval if config else None)
    try:
        return parse_duration(value) if value else None
    except ValueError:
        return None


# The version Kratix gives a Promise (and its PromiseRevision) without a `kratix.io/promise-version` label.
UNVERSIONED = "not-set"


def promise_version(promise: Promise) -> str:
    return promise.metadata.labels.get(PROMISE_VERSION, UNVERSIONED)


class PromiseSnapshot(BaseModel):
    """What resource workflows and requiring Promises need of a Promise, published by the Promise's workflow."""

    name: str
    generation: int
    available: bool
    paused: bool = False
    # Every version ever installed: Kratix keeps a PromiseRevision per version, and requirements match any of them.
    versions: list[str] = Field(default_factory=list)
    # The version installed now: Kratix's latest PromiseRevision, which its requests are reconciled with.
    version: str = UNVERSIONED
    reconciliation_interval_s: float | None = None
    api: PromiseApi | None = None
    resource_configure: list[Pipeline] = Field(default_factory=list)
    resource_delete: list[Pipeline] = Field(default_factory=list)
    destination_selectors: dict[str, str] = Field(default_factory=dict)
    # spec.workflows.config.pipelineNamespace: where its resources' workflows run too.
    pipeline_namespace: str = ""
    # ResourceBindings made before their requests (`namespace/name` to the binding, domain/revisions.py's Binding as
    # JSON): a request adopts its own when it starts.
    held_bindings: dict[str, dict[str, Any]] = Field(default_factory=dict)


def snapshot_of(
    promise: Promise, api: PromiseApi | None, generation: int, available: bool, versions: list[str]
) -> PromiseSnapshot:
    return PromiseSnapshot(
        name=promise.metadata.name,
        generation=generation,
        available=available,
        paused=is_true(promise.metadata.labels, PAUSED),
        versions=versions,
        version=promise_version(promise),
        reconciliation_interval_s=reconciliation_interval(promise),
        api=api.model_copy(update={"schema_": {}}) if api else None,
        resource_configure=promise.spec.workflows.resource.configure,
        # Kratix runs only the first delete pipeline.
        resource_delete=promise.spec.workflows.resource.delete[:1],
        destination_selectors=squash([s.match_labels for s in promise.spec.destination_selectors]),
        pipeline_namespace=configured_pipeline_namespace(promise),
    )


def configured_pipeline_namespace(promise: Promise) -> str:
    config = promise.spec.workflows.config
    return (config.pipeline_namespace or "") if config else ""
