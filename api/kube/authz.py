"""The one authorisation decision every Kubernetes route asks for, on domain/access.py's rule table.

A stand-in until the kube-access work (RBAC-shaped rules, `kubectl auth can-i`) replaces it: kube verbs map onto the
ktx actions the rule table already decides.
"""

from __future__ import annotations

from typing import Any

from api.kube.errors import forbidden
from domain.access import Action, Principal, Target, refusal

_ACTIONS: dict[str, Action] = {
    "get": "get",
    "list": "list",
    "watch": "list",
    "create": "apply",
    "update": "apply",
    "patch": "apply",
    "delete": "delete",
}
# Kinds the rule table does not know: views of the platform's own state, read by platform tokens only (Events and
# Namespaces follow the namespace rules, as a team reads its own).
_PLATFORM_VIEWS = {"Work", "WorkPlacement", "CustomResourceDefinition"}


def authorize(
    caller: Principal, verb: str, resource: Any, namespace: str | None, name: str | None, subresource: str | None = None
) -> None:
    action = _ACTIONS.get(verb)
    if action is None:
        raise forbidden(verb, resource.plural, resource.group, name, "unknown verb", caller.name)
    if caller.role == "platform":
        return
    if resource.ktx_kind in _PLATFORM_VIEWS:
        reason: str | None = f'team token "{caller.name}" may not {verb} {resource.kind} objects'
    elif resource.ktx_kind in ("Event", "Namespace"):
        reason = (
            None
            if (action == "list" and namespace is None)
            or namespace in caller.namespaces
            or resource.ktx_kind == "Namespace"
            and name in caller.namespaces
            else f'team token "{caller.name}" may not {verb} {resource.plural} in namespace "{namespace}"'
        )
    else:
        kind = resource.kind if resource.promise else resource.ktx_kind
        reason = refusal(caller, action, Target(kind, name, namespace, not resource.promise))
    if reason is not None:
        raise forbidden(verb, resource.plural, resource.group, name, reason, caller.name)
