"""Which Destination receives which workload group: Kratix's selector precedence, matching and sticky placement."""

from __future__ import annotations

import posixpath
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from domain.errors import FieldError, InvalidDocument
from domain.labels import label_errors
from domain.layout import ROOT_DIRECTORY, group_id


class SelectorSource(str, Enum):
    # Listed lowest priority first: later sources override earlier ones on a key clash (Promise wins).
    RESOURCE_WORKFLOW = "resource-workflow"
    PROMISE_WORKFLOW = "promise-workflow"
    PROMISE = "promise"


_PRIORITY = [SelectorSource.RESOURCE_WORKFLOW, SelectorSource.PROMISE_WORKFLOW, SelectorSource.PROMISE]
# One entry per output directory scheduled on its own; each becomes a workload group carried in workflow state.
MAX_SELECTOR_ENTRIES = 256


class DestinationSelector(BaseModel):
    match_labels: dict[str, str]
    source: SelectorSource


class WorkloadGroup(BaseModel):
    """Files of one output directory that are scheduled together."""

    directory: str
    files: list[str] = Field(default_factory=list)
    selectors: list[DestinationSelector] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return group_id(self.directory)


class DestinationView(BaseModel):
    """What the scheduler needs to know of a Destination."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    strict_match_labels: bool = False


class SelectorEntry(BaseModel):
    directory: str = ROOT_DIRECTORY
    match_labels: dict[str, str]


def squash(selectors: list[dict[str, str]]) -> dict[str, str]:
    """Merge several matchLabels into one; the first entry wins on a key clash (Kratix SquashPromiseScheduling)."""
    merged: dict[str, str] = {}
    for labels in selectors:
        for key, value in labels.items():
            merged.setdefault(key, value)
    return merged


def parse_destination_selectors(data: Any) -> list[SelectorEntry]:
    """Parse /kratix/metadata/destination-selectors.yaml with Kratix's rules; raises InvalidDocument."""
    if data is None:
        return []
    field = "destination-selectors.yaml"
    if not isinstance(data, list):
        raise InvalidDocument([FieldError(field, "invalid destination-selectors.yaml: must be a list")])
    entries: list[SelectorEntry] = []
    seen: set[str] = set()
    if len(data) > MAX_SELECTOR_ENTRIES:
        raise InvalidDocument([FieldError(field, f"{len(data)} entries, over the limit of {MAX_SELECTOR_ENTRIES}")])
    for index, raw in enumerate(data):
        if not isinstance(raw, dict) or not raw.get("matchLabels"):
            raise InvalidDocument([FieldError(f"{field}[{index}]", f"entry with index {index} has no selectors")])
        # Kratix reads matchLabels into a map[string]string of label selectors: anything else fails the pipeline.
        errors = label_errors(f"{field}[{index}].matchLabels", raw["matchLabels"])
        if errors:
            raise InvalidDocument(errors)
        if not isinstance(raw.get("directory") or "", str):
            raise InvalidDocument([FieldError(f"{field}[{index}].directory", "must be a string")])
        directory = posixpath.normpath(raw.get("directory") or ROOT_DIRECTORY)
        if "/" in directory.strip("/"):
            raise InvalidDocument([FieldError(f"{field}[{index}].directory", "sub-directories are not allowed")])
        if directory == "..":
            raise InvalidDocument([FieldError(f"{field}[{index}].directory", "must be a directory of /kratix/output")])
        directory = directory.strip("/") or ROOT_DIRECTORY
        if directory in seen:
            raise InvalidDocument([FieldError(f"{field}[{index}]", "duplicate entries in destination-selectors.yaml")])
        seen.add(directory)
        entries.append(SelectorEntry(directory=directory, match_labels=dict(raw["matchLabels"])))
    return entries


def build_groups(
    files: list[str],
    entries: list[SelectorEntry],
    workflow_source: SelectorSource,
    promise_selectors: dict[str, str],
) -> list[WorkloadGroup]:
    """Split a pipeline's output files into workload groups (directory groups first, the root group last).

    Directory groups are scheduled only by their own labels; the root group gets the workflow's root entry
    plus the Promise's selectors. A root group with no files is omitted.
    """
    claimed = {e.directory: e for e in entries if e.directory != ROOT_DIRECTORY}
    groups: list[WorkloadGroup] = []
    for directory, entry in claimed.items():
        members = sorted(f for f in files if f.split("/", 1)[0] == directory and "/" in f)
        groups.append(
            WorkloadGroup(
                directory=directory,
                files=members,
                selectors=[DestinationSelector(match_labels=entry.match_labels, source=workflow_source)],
            )
        )
    root_files = sorted(f for f in files if f.split("/", 1)[0] not in claimed or "/" not in f)
    if root_files:
        selectors = [
            DestinationSelector(match_labels=e.match_labels, source=workflow_source)
            for e in entries
            if e.directory == ROOT_DIRECTORY
        ]
        if promise_selectors:
            selectors.append(DestinationSelector(match_labels=promise_selectors, source=SelectorSource.PROMISE))
        groups.append(WorkloadGroup(directory=ROOT_DIRECTORY, files=root_files, selectors=selectors))
    return groups


def effective_selector(selectors: list[DestinationSelector]) -> dict[str, str]:
    """One AND-selector; on key clashes promise > promise-workflow > resource-workflow."""
    merged: dict[str, str] = {}
    for source in _PRIORITY:
        for selector in selectors:
            if selector.source == source:
                merged.update(selector.match_labels)
    return merged


def matches(destination: DestinationView, selector: dict[str, str]) -> bool:
    if not selector:
        # strictMatchLabels Destinations with labels only take work that asks for them.
        return not (destination.strict_match_labels and destination.labels)
    return all(destination.labels.get(k) == v for k, v in selector.items())


def candidates(destinations: list[DestinationView], selector: dict[str, str]) -> list[DestinationView]:
    return sorted((d for d in destinations if matches(d, selector)), key=lambda d: d.name)
