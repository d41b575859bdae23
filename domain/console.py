"""What the web console shows, computed from objects as Platform.get gives them: rows of the requests list, the
overview's counts, failures and events, commit and Temporal UI links. Pure: api/console/routes.py feeds it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from domain.kube.selectors import Requirement
from domain.labels import COMPONENT_OF_NAMESPACE, COMPONENT_OF_PROMISE, COMPONENT_OF_RESOURCE
from domain.status import summary_phase

# The one-word phases the resource workflows publish (domain.status.summary_phase, the KtxPhase search attribute).
PHASES = ("Pending", "Running", "Reconciled", "Failed", "Paused", "Suspended", "Deleting")
# A page of the requests list: enough to fill a laptop screen twice, few enough that a page's memos read in one call.
PAGE_DEFAULT = 50
PAGE_MAX = 200
# The overview's lists: the most recent few, not a log.
RECENT_MAX = 20
# A log tail shown inline in a failure (the whole log is one click away).
TAIL_LINES = 20

# Git hosts whose web UI shows a commit at `<repository>/commit/<sha>` (GitHub, GitLab, Gitea, Forgejo, Bitbucket's
# is `commits`): the store's URL is turned into a link only when it is https to one of these shapes.
_HTTPS_REPO = re.compile(r"^https://(?P<host>[A-Za-z0-9.-]+)(?::[0-9]{1,5})?/(?P<path>[A-Za-z0-9._~/-]+?)(?:\.git)?/?$")
_SSH_REPO = re.compile(
    r"^(?:ssh://)?git@(?P<host>[A-Za-z0-9.-]+):(?:[0-9]{1,5}/)?(?P<path>[A-Za-z0-9._~/-]+?)(?:\.git)?$"
)
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def phase_of(obj: dict[str, Any]) -> str:
    deleting = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    return summary_phase(obj.get("status") or {}, deleting)


def promise_of(obj: dict[str, Any]) -> str:
    """A resource's Promise, from its workflow ID (`resource/<promise>/<namespace>/<name>`)."""
    parts = str((obj.get("_ktx") or {}).get("workflowId", "")).split("/")
    return parts[1] if len(parts) == 4 else ""


def request_row(obj: dict[str, Any]) -> dict[str, Any]:
    """One line of the requests list: what it is, where, and how it is doing."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return {
        "kind": obj.get("kind", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "promise": promise_of(obj),
        "phase": phase_of(obj),
        "message": str(status.get("message", ""))[:200],
        "labels": meta.get("labels") or {},
        "created": meta.get("creationTimestamp", ""),
        "resourceVersion": (obj.get("_ktx") or {}).get("resourceVersion", "0"),
        # For the map: where its outputs landed, and the compound request that asked for it, if one did.
        "destinations": sorted({p.get("destination", "") for p in (obj.get("_ktx") or {}).get("placements") or []}),
        "parent": _parent(meta.get("labels") or {}),
    }


def _parent(labels: dict[str, str]) -> dict[str, str] | None:
    if COMPONENT_OF_RESOURCE not in labels:
        return None
    return {
        "promise": labels.get(COMPONENT_OF_PROMISE, ""),
        "namespace": labels.get(COMPONENT_OF_NAMESPACE, ""),
        "name": labels[COMPONENT_OF_RESOURCE],
    }


def filter_rows(rows: list[dict[str, Any]], requirements: list[Requirement]) -> list[dict[str, Any]]:
    """The filter visibility cannot apply: labels are in the memo only."""
    return [r for r in rows if all(q.matches(r["labels"]) for q in requirements)]


def revision_rows(revisions: list[dict[str, Any]], per_version: dict[str, int]) -> list[dict[str, Any]]:
    """A Promise's PromiseRevisions, newest first, each with how many requests were last reconciled at its version."""
    rows = [
        {
            "name": (r.get("metadata") or {}).get("name", ""),
            "version": (r.get("spec") or {}).get("version", ""),
            "latest": bool((r.get("status") or {}).get("latest")),
            "created": (r.get("metadata") or {}).get("creationTimestamp", ""),
        }
        for r in revisions
    ]
    rows.sort(key=lambda r: (r["created"], r["latest"]), reverse=True)
    return [{**r, "requests": per_version.get(r["version"], 0)} for r in rows]


def failing_container(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The latest failed run's first container that exited non-zero (or the run itself, if none did)."""
    runs = [r for r in (obj.get("_ktx") or {}).get("runs") or [] if not r.get("succeeded")]
    if not runs:
        return None
    run = max(runs, key=lambda r: str(r.get("finished_at", "")))
    failed = [c for c in run.get("containers") or [] if c.get("exit_code") not in (0, None)]
    container = failed[0] if failed else {}
    return {
        "pipeline": run.get("pipeline", ""),
        "action": run.get("action", ""),
        "finishedAt": run.get("finished_at", ""),
        "message": str(run.get("message", ""))[:500],
        "container": container.get("name", ""),
        "exitCode": container.get("exit_code"),
        "logTail": "\n".join(str(container.get("log_tail") or "").splitlines()[-TAIL_LINES:]),
    }


def recent_failures(objects: list[dict[str, Any]], limit: int = RECENT_MAX) -> list[dict[str, Any]]:
    found = []
    for obj in objects:
        failure = failing_container(obj)
        if failure is not None and phase_of(obj) == "Failed":
            found.append({**_ref(obj), **failure})
    return sorted(found, key=lambda f: f["finishedAt"], reverse=True)[:limit]


def recent_events(objects: list[dict[str, Any]], limit: int = RECENT_MAX) -> list[dict[str, Any]]:
    """The newest events of these objects, each with the object it is about."""
    found = [
        {**_ref(obj), **{k: e.get(k) for k in ("type", "reason", "message", "count", "last_seen")}}
        for obj in objects
        for e in (obj.get("_ktx") or {}).get("events") or []
    ]
    return sorted(found, key=lambda e: str(e["last_seen"] or ""), reverse=True)[:limit]


def _ref(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "objectKind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "promise": promise_of(obj),
    }


def latest_changes(changes: list[Any]) -> list[Any]:
    """Of a change feed's recent changes (oldest first), each live object's newest, newest first: a deleted object's
    last change drops it."""
    newest: dict[str, Any] = {}
    for change in changes:
        newest.pop(change.workflow_id, None)  # re-inserted: the dict's order is the order of each newest change
        newest[change.workflow_id] = change
    return [c for c in reversed(newest.values()) if c.type != "DELETED"]


def commit_link(store_url: str, sha: str) -> str | None:
    """A web link to a commit of a Git state store, when its URL names a repository on a web host; None otherwise
    (file:// and git:// stores, S3 buckets, anything unexpected)."""
    if not _SHA.match(sha or ""):
        return None
    match = _HTTPS_REPO.match(store_url or "") or _SSH_REPO.match(store_url or "")
    if match is None or "//" in match["path"] or ".." in match["path"]:
        return None
    host = match["host"]
    word = "commits" if host == "bitbucket.org" else "commit"
    return f"https://{host}/{match['path']}/{word}/{sha}"


def temporal_ui_link(base: str | None, namespace: str, workflow_id: str) -> str | None:
    """The workflow's page in the Temporal Web UI (`/namespaces/<ns>/workflows/<id>`), if the UI's address is known."""
    if not base:
        return None
    return f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
