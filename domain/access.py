"""Who may do what through the API: bearer-token entries, their roles, and how a ktx REST request is decided.

Platform tokens manage everything. Team tokens request, read and delete resources (instances of Promise APIs) in
their own namespaces, and read Promises to discover the APIs on offer; everything else is the platform team's. The
rules themselves are Kubernetes RBAC rules (domain/kube/rbac.py), so the REST routes and the Kubernetes routes
decide by the same table: each REST action is the Kubernetes verb (and subresource) below.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from domain.documents import PLATFORM_KIND_NAMES, builtin_kind
from domain.kube.rbac import (
    BUILTIN_RESOURCES,
    UNRESOLVED_PROMISE_API,
    Attributes,
    Subject,
    allows,
    token_subject,
    why_denied,
)
from domain.names import LABEL_MAX, NAMESPACE_PATTERN

Role = Literal["platform", "team"]
Action = Literal["apply", "get", "list", "delete", "label", "reconcile", "logs", "tree", "wait", "manifests"]

# Each REST action as the Kubernetes requests it amounts to: (verb, subresource), all of which must be allowed. An
# apply creates or updates; label and reconcile (a label) patch; logs and tree read ktx's own subresources.
ACTION_VERBS: dict[str, tuple[tuple[str, str], ...]] = {
    "apply": (("create", ""), ("update", "")),
    "get": (("get", ""),),
    "list": (("list", ""),),
    "delete": (("delete", ""),),
    "label": (("patch", ""),),
    "reconcile": (("patch", ""),),
    "logs": (("get", "log"),),
    "tree": (("get", "tree"),),
    "wait": (("get", ""),),
    "manifests": (("get", ""),),
}


class Principal(BaseModel):
    """Who a request acts as: the name of its token entry (never the token) and what that entry allows."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: Role
    namespaces: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _namespaces_fit_the_role(self) -> "Principal":
        if self.role == "team" and not self.namespaces:
            raise ValueError(f'team token "{self.name}" needs at least one namespace')
        if self.role == "platform" and self.namespaces:
            # A platform token reaches every namespace; a list here means someone expected it to be limited.
            raise ValueError(
                f'platform token "{self.name}" reaches every namespace; remove its namespaces or make it a team token'
            )
        bad = [ns for ns in self.namespaces if len(ns) > LABEL_MAX or not NAMESPACE_PATTERN.match(ns)]
        if bad:
            raise ValueError(f'token "{self.name}": namespaces {bad} are not DNS-1123 labels')
        return self

    def subject(self) -> Subject:
        return token_subject(self.name, self.role, self.namespaces)

    def sees(self, namespace: str | None) -> bool:
        """Whether objects in `namespace` are this principal's to see (cluster-scoped objects have none)."""
        return self.role == "platform" or namespace is None or namespace in self.namespaces


class TokenEntry(Principal):
    """One line of the tokens file: the SHA-256 of the token, so the file never holds a usable credential."""

    # A `token:` key means a clear token was pasted in: refuse the file rather than ignore the line.
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TokenFile(RootModel[list[TokenEntry]]):
    @model_validator(mode="after")
    def _unique(self) -> "TokenFile":
        if not self.root:
            raise ValueError("holds no tokens; every request would be refused")
        names = [e.name for e in self.root]
        if len(set(names)) != len(names):
            raise ValueError(f"token names must be unique: {sorted({n for n in names if names.count(n) > 1})}")
        if len({e.sha256 for e in self.root}) != len(self.root):
            raise ValueError("two entries have the same sha256: one token would act as both")
        return self


def problems(exc: ValidationError) -> str:
    """What is wrong with token entries, without the values: a clear token pasted in by mistake must not be echoed."""
    return "; ".join(
        ": ".join(part for part in (".".join(map(str, e["loc"])), e["msg"].removeprefix("Value error, ")) if part)
        for e in exc.errors(include_input=False)
    )


# Who the embedded stack's admin token acts as (a platform token; `ktx kubeconfig` hands it to kubectl).
ADMIN = "ktx-admin"
# The identity of the embedded stack's API, which serves only this machine when no tokens file is configured.
LOOPBACK = Principal(name="loopback", role="platform")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identify(token: str, entries: list[TokenEntry]) -> Principal | None:
    """The entry the token belongs to; every entry is compared in constant time so timing tells nothing."""
    digest = token_digest(token)
    found = None
    for entry in entries:
        if hmac.compare_digest(digest, entry.sha256):
            found = entry
    return None if found is None else Principal(name=found.name, role=found.role, namespaces=found.namespaces)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Target:
    """What a request acts on. `kind` is a platform kind when `builtin`, otherwise the kind a Promise serves."""

    kind: str
    name: str | None
    namespace: str | None
    builtin: bool

    @classmethod
    def of_route(cls, kind: str, name: str | None, namespace: str | None) -> "Target":
        platform_kind = PLATFORM_KIND_NAMES.get(kind.lower())
        return cls(platform_kind or kind, name, namespace, platform_kind is not None)

    @classmethod
    def of_document(cls, document: dict[str, Any]) -> "Target":
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        name, namespace = metadata.get("name"), metadata.get("namespace")
        kind = builtin_kind(document)
        if kind is None:
            # A resource request lands in "default" when it names no namespace, so that is what is authorised.
            return cls(str(document.get("kind")), _text(name), _text(namespace) or "default", False)
        return cls(kind, _text(name), _text(namespace), True)

    def describe(self) -> str:
        return f'{self.kind} "{self.name}"' if self.name else self.kind


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def refusal(principal: Principal, action: Action, target: Target) -> str | None:
    """None when the principal may do `action` on `target`, else the reason (naming the token entry, never the token).

    A list without a namespace is allowed when the principal may list in any namespace: the caller filters it with
    `sees`."""
    subject = principal.subject()
    if target.builtin:
        group, resource, namespaced = BUILTIN_RESOURCES[target.kind]
    else:
        # Not resolved to its group here: the team's rules cover every Promise API alike.
        group, resource, namespaced = UNRESOLVED_PROMISE_API, target.kind, True
    apis = [] if target.builtin else [(group, resource)]
    rules = subject.rules(apis)
    namespace = target.namespace if namespaced else None
    for verb, subresource in ACTION_VERBS[action]:
        attrs = Attributes(verb, group, resource, subresource, namespace, target.name or "")
        if allows(rules, attrs):
            continue
        if verb == "list" and namespace is None and namespaced:
            own = (Attributes(verb, group, resource, subresource, ns) for ns in principal.namespaces)
            if any(allows(rules, each) for each in own):
                continue
        where = (
            f' in namespace "{namespace}"' if namespace is not None and namespace not in principal.namespaces else ""
        )
        reason = why_denied(subject, attrs, apis)
        if not where or reason.startswith("its namespaces"):
            return f'{principal.role} token "{principal.name}" may not {action} {target.describe()}{where}: {reason}'
        return f'{principal.role} token "{principal.name}" may not {action} {target.describe()}: {reason}'
    return None


def rollout_refusal(principal: Principal, action: str, plan: str, namespaces: set[str] | None) -> str | None:
    """None when the principal may `action` the RolloutPlan `plan`, which reaches `namespaces` (None: every one).

    A plan re-binds and re-runs requests, which a team may do in its own namespaces only: a team token manages a plan
    only when every group lists its namespaces and all of them are the token's. Platform tokens manage every plan."""
    if principal.role == "platform":
        return None
    who = f'team token "{principal.name}" may not {action} RolloutPlan "{plan}"'
    if namespaces is None:
        reach = "a group chosen by selector alone reaches every namespace"
        return f"{who}: {reach}: such plans are managed by platform tokens"
    outside = sorted(namespaces - set(principal.namespaces))
    if outside:
        return f'{who} in namespace "{outside[0]}": its namespaces are {", ".join(principal.namespaces)}'
    return None
