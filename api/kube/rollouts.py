"""Who may act on a RolloutPlan through the Kubernetes API: the REST routes' rule (domain/access.py rollout_refusal)
on top of RBAC. RBAC lets a team token at rolloutplans at all; the plan decides the rest, as admission would, since a
plan re-runs requests and a team may do that in its own namespaces only: a team manages a plan whose every group
lists namespaces, all of them its own. The Kubernetes routes and `kubectl auth can-i` both ask here."""

from __future__ import annotations

from typing import Any

from api.kube.errors import forbidden
from api.kube.registry import KubeResource
from domain import rollout_plan as rp
from domain.access import Principal, rollout_refusal
from domain.kube.rbac import Subject


def plan_refusal(caller: Subject, verb: str, plan: dict[str, Any]) -> str | None:
    """Why `caller` may not `verb` this plan (a document or the served object), or None. Platform tokens, and
    pipelines (whose rules Kratix grants and the Pipeline declares), are decided by RBAC alone."""
    if caller.role != "team":
        return None
    parsed = rp.plan_of(plan)
    principal = Principal(name=caller.user, role="team", namespaces=list(caller.namespaces))
    return rollout_refusal(principal, verb, parsed.name, parsed.namespaces())


def authorize_plan(caller: Subject, verb: str, resource: KubeResource, plan: dict[str, Any]) -> None:
    reason = plan_refusal(caller, verb, plan)
    if reason is not None:
        name = (plan.get("metadata") or {}).get("name")
        raise forbidden(
            resource.plural, resource.group, name, f'{resource.plural}.{resource.group} "{name}" is forbidden: {reason}'
        )
