"""Workflow IDs from business keys, so the Temporal UI reads like the platform."""

from __future__ import annotations

CATALOG_WORKFLOW_ID = "platform/catalog"


def promise_workflow_id(name: str) -> str:
    return f"promise/{name}"


def resource_workflow_id(promise: str, namespace: str, name: str) -> str:
    return f"resource/{promise}/{namespace}/{name}"


def dry_run_workflow_id(namespace: str, name: str) -> str:
    return f"dryrun/{namespace}/{name}"


def promise_release_workflow_id(name: str) -> str:
    return f"promiserelease/{name}"


def rollout_workflow_id(plan: str) -> str:
    """Plans are cluster-wide, one name space for all Promises, so `ktx rollout status NAME` needs no Promise."""
    return f"rollout/{plan}"


def destination_workflow_id(name: str) -> str:
    return f"destination/{name}"


def state_store_workflow_id(kind: str, name: str) -> str:
    return f"{kind.lower()}/{name}"


def pipeline_task_queue(task_queue: str) -> str:
    """Pipelines get their own task queue so their slot limit never starves reads and state-store writes."""
    return f"{task_queue}-pipelines"
