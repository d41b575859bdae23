"""`spec.requiredPromises`: whether the Promises a Promise builds on are installed, at the version, and available."""

from __future__ import annotations

from pydantic import BaseModel

from domain.documents import RequiredPromise

INSTALLED = "Requirement installed"
NOT_INSTALLED = "Requirement not installed"
NOT_AT_VERSION = "Requirement not installed at the specified version"
NOT_AVAILABLE = "Requirement not available"


class RequiredPromiseState(BaseModel):
    """What the requiring Promise needs to know about one required Promise."""

    name: str
    available: bool
    versions: list[str]


class Requirements(BaseModel):
    entries: list[dict[str, str]]
    fulfilled: bool
    reason: str
    message: str


def evaluate_requirements(required: list[RequiredPromise], found: dict[str, RequiredPromiseState]) -> Requirements:
    """Kratix's table: a version is satisfied while any revision with that version was installed (revisions persist)."""
    entries: list[dict[str, str]] = []
    reason = ""
    for requirement in required:
        state = found.get(requirement.name)
        if state is None:
            verdict, why = NOT_INSTALLED, "RequirementsNotInstalled"
        elif requirement.version and requirement.version not in state.versions:
            verdict, why = NOT_AT_VERSION, "RequirementsNotInstalled"
        elif not state.available:
            verdict, why = NOT_AVAILABLE, "RequirementsNotAvailable"
        else:
            verdict, why = INSTALLED, ""
        entries.append({"name": requirement.name, "version": requirement.version, "state": verdict})
        reason = reason or why
    if not reason:
        return Requirements(
            entries=entries, fulfilled=True, reason="RequirementsInstalled", message="Requirements fulfilled"
        )
    unmet = ", ".join(f"{e['name']} ({e['state']})" for e in entries if e["state"] != INSTALLED)
    return Requirements(entries=entries, fulfilled=False, reason=reason, message=f"Requirements not fulfilled: {unmet}")


def required_by(
    entries: list[dict[str, object]], dependent: str, version: str, required_version: str | None
) -> list[dict[str, object]]:
    """The required Promise's `status.requiredBy` once `dependent` (at its `version`) says it requires it at
    `required_version` (None: it no longer does), Kratix's `{promise: {name, version}, requiredVersion}` entries in
    the order of the dependents' names."""
    kept = [e for e in entries if (e.get("promise") or {}).get("name") != dependent]  # type: ignore[union-attr]
    if required_version is not None:
        kept.append({"promise": {"name": dependent, "version": version}, "requiredVersion": required_version})
    return sorted(kept, key=lambda e: str((e.get("promise") or {}).get("name")))  # type: ignore[union-attr]
