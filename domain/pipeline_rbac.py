"""A pipeline's ServiceAccount and RBAC objects on Kubernetes, as Kratix generates them.

Kratix's api/v1alpha1/pipeline_factory.go (serviceAccount, role, roleBindings, clusterRole, clusterRoleBinding) and
lib/workflow/rbac.go (which user-permission objects are stale), reproduced name for name and label for label so a
cluster moved between Kratix and ktx sees the same objects. Pure: camelCase dicts in the API's own shapes, applied by
activities/pipelines/kube_runner.py.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.kube.pipeline_token import KRATIX_GROUP, Permission

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
PROMISE_NAME = "kratix.io/promise-name"
WORKFLOW_TYPE = "kratix.io/workflow-type"
WORKFLOW_ACTION = "kratix.io/workflow-action"
PIPELINE_NAME = "kratix.io/pipeline-name"
PIPELINE_NAMESPACE = "kratix.io/pipeline-namespace"
RESOURCE_NAMESPACE = "kratix.io/resource-namespace"
# Kratix's label value for `resourceNamespace: "*"`: `*` is no label value, and the underscores make it no namespace.
ALL_NAMESPACES_LABEL = "kratix_all_namespaces"
ALL_NAMESPACES_NAME = "kratix-all-namespaces"
# The verbs Kratix's default Roles grant on the object's kind.
OBJECT_VERBS = ["get", "list", "update", "create", "patch"]
# lib/objectutil/name.go: 63 less the separator and the 5-character suffix.
_MAX_NAME = 63 - 1 - 5

Kind = Literal["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]
# The order Kratix applies them in (PipelineJobResources.GetObjects), before the Job.
KINDS: tuple[Kind, ...] = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


def deterministic_name(name: str, *inputs: str) -> str:
    """Kratix's GenerateDeterministicObjectName: the name shortened to 56 characters when over 57, trailing
    non-alphanumerics trimmed, then `-` and the first 5 hex digits of md5(the inputs joined by '-', else the name)."""
    digest = hashlib.md5(("-".join(inputs) if inputs else name).encode()).hexdigest()[:5]
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 1]
    while name and not (name[-1].isascii() and name[-1].isalnum()):
        name = name[:-1]
    return f"{name}-{digest}"


class PipelineRbacInput(BaseModel):
    """Whose pipeline it is and where it runs: Kratix's PipelineFactory fields the RBAC objects are made of."""

    model_config = ConfigDict(frozen=True)

    promise: str
    workflow_type: Literal["promise", "resource"]
    action: Literal["configure", "delete"]
    pipeline: str
    # Where the Job and its ServiceAccount are.
    namespace: str
    # The resource's own namespace (resource workflows); when it is not `namespace` Kratix grants the resource's kind
    # across the cluster (pipelineNamespace).
    resource_namespace: str = ""
    group: str = ""
    plural: str = ""
    service_account: str | None = None
    permissions: list[Permission] = Field(default_factory=list)

    @property
    def id(self) -> str:
        """Kratix's pipeline ID (ForPromise/ForResource), at most 60 characters by admission."""
        return f"{self.promise}-{self.workflow_type}-{self.action}-{self.pipeline}"

    @property
    def service_account_name(self) -> str:
        return self.service_account or self.id


def _meta(name: str, labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(labels)
    return meta


def _object(kind: str, meta: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1" if kind == "ServiceAccount" else RBAC_API, "kind": kind, "metadata": meta, **fields}


def _rule(api_groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> dict:
    rule: dict[str, Any] = {"apiGroups": api_groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def _policy_rule(permission: Permission) -> dict[str, Any]:
    """The PolicyRule part of a Permission, as Kratix stores it (empty lists omitted, as Go's omitempty does)."""
    rule: dict[str, Any] = {}
    for key, value in (
        ("verbs", permission.verbs),
        ("apiGroups", permission.api_groups),
        ("resources", permission.resources),
        ("resourceNames", permission.resource_names),
    ):
        if value or key == "verbs":
            rule[key] = list(value)
    return rule


def user_permission_labels(rbac: PipelineRbacInput) -> dict[str, str]:
    """UserPermissionPipelineResourcesLabels: what marks a pipeline's user-permission objects (and selects them when
    the stale ones are deleted)."""
    return {
        PROMISE_NAME: rbac.promise,
        WORKFLOW_TYPE: rbac.workflow_type,
        PIPELINE_NAME: rbac.pipeline,
        WORKFLOW_ACTION: rbac.action,
        PIPELINE_NAMESPACE: rbac.namespace,
    }


def _subject(rbac: PipelineRbacInput) -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": rbac.service_account_name, "namespace": rbac.namespace}]


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}


def _object_rule(rbac: PipelineRbacInput) -> dict[str, Any]:
    return _rule([rbac.group], [rbac.plural, f"{rbac.plural}/status"], list(OBJECT_VERBS))


def _namespaced_permissions(rbac: PipelineRbacInput) -> dict[str, list[dict[str, Any]]]:
    """User permissions with a resourceNamespace, by namespace in the order they first appear (Kratix's Go map has
    none; the objects are the same whatever the order)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for permission in rbac.permissions:
        if permission.resource_namespace:
            by_namespace.setdefault(permission.resource_namespace, []).append(_policy_rule(permission))
    return by_namespace


def pipeline_rbac_objects(rbac: PipelineRbacInput) -> list[dict[str, Any]]:
    """The ServiceAccount, Roles, RoleBindings, ClusterRoles and ClusterRoleBindings Kratix applies before a pipeline's
    Job, in its order."""
    promise_label = {PROMISE_NAME: rbac.promise}
    ns = rbac.namespace
    account = _object("ServiceAccount", _meta(rbac.service_account_name, promise_label, ns))

    roles: list[dict[str, Any]] = []
    if rbac.workflow_type == "resource":
        rules = [_object_rule(rbac), _rule([KRATIX_GROUP], ["works"], ["*"])]
        roles.append(_object("Role", _meta(rbac.id, promise_label, ns), rules=rules))
    local = [_policy_rule(p) for p in rbac.permissions if not p.resource_namespace]
    if local:
        roles.append(_object("Role", _meta(deterministic_name(rbac.id), user_permission_labels(rbac), ns), rules=local))

    cluster_roles: list[dict[str, Any]] = []
    if rbac.workflow_type == "promise":
        rules = [_rule([KRATIX_GROUP], ["promises", "promises/status", "works"], list(OBJECT_VERBS))]
        cluster_roles.append(_object("ClusterRole", _meta(rbac.id, promise_label), rules=rules))
    if rbac.workflow_type == "resource" and ns != rbac.resource_namespace:
        name = f"{rbac.id}-{rbac.resource_namespace}"
        cluster_roles.append(_object("ClusterRole", _meta(name, promise_label), rules=[_object_rule(rbac)]))
    for where, rules in _namespaced_permissions(rbac).items():
        labels = user_permission_labels(rbac)
        labels[RESOURCE_NAMESPACE] = ALL_NAMESPACES_LABEL if where == "*" else where
        name = deterministic_name(f"{rbac.id}-{ALL_NAMESPACES_NAME if where == '*' else where}")
        cluster_roles.append(_object("ClusterRole", _meta(name, labels), rules=rules))

    role_bindings = [
        _object(
            "RoleBinding",
            _meta(r["metadata"]["name"], r["metadata"]["labels"], ns),
            roleRef=_role_ref("Role", r["metadata"]["name"]),
            subjects=_subject(rbac),
        )
        for r in roles
    ]
    cluster_role_bindings = []
    for role in cluster_roles:
        labels, name = role["metadata"]["labels"], role["metadata"]["name"]
        where = labels.get(RESOURCE_NAMESPACE)
        if where is None:
            meta = _meta(name, promise_label)
        elif where == ALL_NAMESPACES_LABEL:
            meta = _meta(deterministic_name(f"{rbac.id}-{ns}"), user_permission_labels(rbac))
        else:
            # A ClusterRole bound in one namespace: Kratix names the binding after the pipeline's namespace.
            role_bindings.append(
                _object(
                    "RoleBinding",
                    _meta(deterministic_name(f"{rbac.id}-{ns}"), labels, where),
                    roleRef=_role_ref("ClusterRole", name),
                    subjects=_subject(rbac),
                )
            )
            continue
        cluster_role_bindings.append(
            _object("ClusterRoleBinding", meta, roleRef=_role_ref("ClusterRole", name), subjects=_subject(rbac))
        )
    return [account, *roles, *role_bindings, *cluster_roles, *cluster_role_bindings]


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace") or "", meta["name"]


def stale_objects(desired: list[dict[str, Any]], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The existing user-permission objects (those listed by user_permission_labels) no longer wanted: deleted before
    the next Job, as Kratix's getObjectsToDelete does. Kratix matches by rules or by subjects and roleRef; ktx by
    kind, namespace and name, which the same objects share, so an object renamed away is never left behind."""
    wanted = {object_key(o) for o in desired}
    return [o for o in existing if o.get("kind") in KINDS[1:] and object_key(o) not in wanted]


def owned_by_kratix(account: dict[str, Any]) -> bool:
    """Kratix updates an existing ServiceAccount only when it carries the promise-name label (one it made); a named
    account someone else made is used as it is."""
    return PROMISE_NAME in ((account.get("metadata") or {}).get("labels") or {})
