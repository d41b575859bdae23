"""The one access model: Kubernetes RBAC rules for every caller, and the apiserver's way of evaluating them.

A caller is a platform token, a team token (domain/access.py's token entries) or a pipeline's short-lived token. Each
becomes a `Subject` whose rules are Kubernetes PolicyRules bound either cluster-wide (as by a ClusterRoleBinding) or
in one namespace (as by a RoleBinding), so `kubectl auth can-i` can list them and the ktx REST routes and the
Kubernetes routes decide every request by the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from domain.kube.pipeline_token import PipelineClaims
from domain.rollout_plan import GROUP as ROLLOUT_GROUP

PLATFORM_GROUP = "platform.kratix.io"
ALL = "*"
READ = ("get", "list", "watch")
# What a team does with resources of Promise APIs: request (create, update, patch: kubectl apply, label, edit), read
# and delete them. Their status is the pipelines' to write.
REQUEST = (*READ, "create", "update", "patch", "delete", "deletecollection")

# A REST route names a Promise API's kind as the user typed it, unresolved; this group stands for "some Promise's
# API" there. It is not a DNS subdomain, so no real group equals it.
UNRESOLVED_PROMISE_API = "(a Promise API)"

# The platform's own kinds as Kubernetes resources: group, plural, namespaced.
BUILTIN_RESOURCES: dict[str, tuple[str, str, bool]] = {
    "Promise": (PLATFORM_GROUP, "promises", False),
    "PromiseRelease": (PLATFORM_GROUP, "promisereleases", False),
    "Destination": (PLATFORM_GROUP, "destinations", False),
    "GitStateStore": (PLATFORM_GROUP, "gitstatestores", False),
    "BucketStateStore": (PLATFORM_GROUP, "bucketstatestores", False),
    "HealthRecord": (PLATFORM_GROUP, "healthrecords", True),
    "DryRun": (PLATFORM_GROUP, "dryruns", True),
    "PromiseRevision": (PLATFORM_GROUP, "promiserevisions", False),
    "ResourceBinding": (PLATFORM_GROUP, "resourcebindings", True),
    "Secret": ("", "secrets", True),
}
# Why a team may not do something: ktx's reason, appended to the apiserver's wording of a refusal.
_WHY_PLATFORM_ONLY = {
    (PLATFORM_GROUP, "promises"): "Promises are managed by platform tokens",
    (PLATFORM_GROUP, "promisereleases"): "PromiseReleases are managed by platform tokens",
    (PLATFORM_GROUP, "destinations"): "Destinations are managed by platform tokens",
    (PLATFORM_GROUP, "gitstatestores"): "state stores are managed by platform tokens",
    (PLATFORM_GROUP, "bucketstatestores"): "state stores are managed by platform tokens",
    ("", "secrets"): "Secrets are managed by platform tokens",
    (
        PLATFORM_GROUP,
        "healthrecords",
    ): "HealthRecords are written by platform tokens; teams read them in their namespaces",
}


@dataclass(frozen=True)
class Rule:
    """A PolicyRule and where it is bound: `namespace` None is cluster-wide (every namespace and cluster-scoped
    resources, as a ClusterRoleBinding), else that namespace's namespaced resources only (as a RoleBinding)."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    namespace: str | None = None


@dataclass(frozen=True)
class Attributes:
    """What a request asks, as the apiserver's authorizer sees it. `namespace` is None for a cluster-scoped resource
    and for a namespaced one across all namespaces; `path` is set for a non-resource request (discovery, /version)."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str = ""
    path: str | None = None

    @property
    def qualified_resource(self) -> str:
        """`plural.group` (just `plural` in the core group), as Kubernetes names a resource in its errors."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


def _has(items: tuple[str, ...], wanted: str) -> bool:
    return ALL in items or wanted in items


def _resource_matches(rule: Rule, attrs: Attributes) -> bool:
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for resource in rule.resources:
        if resource in (ALL, combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(rule: Rule, path: str) -> bool:
    return any(url == path or (url.endswith("*") and path.startswith(url[:-1])) for url in rule.non_resource_urls)


def matches(rule: Rule, attrs: Attributes) -> bool:
    """Kubernetes' RBAC evaluation of one rule (rbac/v1 evaluation_helpers.go): every part must match."""
    if not _has(rule.verbs, attrs.verb):
        return False
    if attrs.path is not None:
        # Non-resource URLs are cluster-wide only: a RoleBinding never grants them.
        return rule.namespace is None and _url_matches(rule, attrs.path)
    if rule.namespace is not None and rule.namespace != attrs.namespace:
        return False
    if not _has(rule.api_groups, attrs.group) or not _resource_matches(rule, attrs):
        return False
    # A rule naming resources never matches a request without a name (create, list across names).
    return not rule.resource_names or attrs.name in rule.resource_names


def allows(rules: Iterable[Rule], attrs: Attributes) -> bool:
    return any(matches(rule, attrs) for rule in rules)


# What every authenticated caller of an apiserver may do (the system:basic-user, system:discovery and
# system:public-info-viewer ClusterRoles): ask what it may do, who it is, and read discovery.
BASIC_RULES = (
    Rule(("create",), ("authorization.k8s.io",), ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
    Rule(("create",), ("authentication.k8s.io",), ("selfsubjectreviews",)),
    Rule(
        ("get",),
        non_resource_urls=(
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/openapi",
            "/openapi/*",
            "/readyz",
            "/version",
            "/version/",
        ),
    ),
)
PLATFORM_RULES = (Rule((ALL,), (ALL,), (ALL,)), Rule((ALL,), non_resource_urls=(ALL,)))

ApiRef = tuple[str, str]  # a Promise API's (group, plural)


def team_rules(namespaces: Sequence[str], promise_apis: Iterable[ApiRef]) -> tuple[Rule, ...]:
    """A team token's rules: read the Promises (how it discovers the APIs on offer), their revisions and CRDs, get its
    own Namespaces, manage the RolloutPlans confined to its namespaces; in each of its namespaces request, read and
    delete resources of the Promise APIs and edit their ResourceBindings, and read the HealthRecords, Works,
    WorkPlacements and Events. Nothing on Secrets, Destinations or state stores."""
    by_group: dict[str, list[str]] = {}
    for group, plural in promise_apis:
        by_group.setdefault(group, []).append(plural)
    rules = [
        Rule(READ, (PLATFORM_GROUP,), ("promises", "promiserevisions")),
        Rule(READ, ("apiextensions.k8s.io",), ("customresourcedefinitions",)),
        Rule(("get",), ("",), ("namespaces",), resource_names=tuple(namespaces)),
        # Cluster-scoped, so granted cluster-wide; which plans a team manages is the plan's to say (the namespaces
        # its groups list: api/kube/rollouts.py), as admission would decide it.
        Rule((*READ, "create", "update", "patch", "delete"), (ROLLOUT_GROUP,), ("rolloutplans",)),
    ]
    for namespace in namespaces:
        for group, plurals in by_group.items():
            rules.append(Rule(REQUEST, (group,), tuple(plurals), namespace=namespace))
            # The ktx REST routes' reads of a resource: its pipelines' logs and the component resources it requested.
            rules.append(Rule(("get",), (group,), _subresources(plurals, "log", "tree"), namespace=namespace))
        rules += [
            Rule(READ, (PLATFORM_GROUP,), ("healthrecords", "works", "workplacements"), namespace=namespace),
            # A team previews changes to its own requests (the DryRun's live request is authorised as a read of it).
            Rule(REQUEST, (PLATFORM_GROUP,), ("dryruns",), namespace=namespace),
            # A team pins its own requests to a Promise version, and upgrades them, through their bindings.
            Rule(REQUEST, (PLATFORM_GROUP,), ("resourcebindings",), namespace=namespace),
            Rule(READ, ("",), ("events",), namespace=namespace),
        ]
    return (*rules, *BASIC_RULES)


def _subresources(plurals: Iterable[str], *names: str) -> tuple[str, ...]:
    return tuple(f"{plural}/{name}" for plural in plurals for name in names)


Role = Literal["platform", "team", "pipeline"]


@dataclass(frozen=True)
class Subject:
    """Who a request acts as, with the name and groups the apiserver would report (`kubectl auth whoami`)."""

    user: str
    role: Role
    groups: tuple[str, ...]
    # A team's namespaces; a pipeline's rules are fixed when its token is minted.
    namespaces: tuple[str, ...] = ()
    fixed_rules: tuple[Rule, ...] = ()

    def rules(self, promise_apis: Iterable[ApiRef] = ()) -> tuple[Rule, ...]:
        """Its rules, with a team's expanded for the Promise APIs given (those a request may touch)."""
        if self.role == "platform":
            return PLATFORM_RULES
        if self.role == "team":
            return team_rules(self.namespaces, promise_apis)
        return self.fixed_rules

    def describe(self) -> str:
        return f'pipeline "{self.user}"' if self.role == "pipeline" else f'{self.role} token "{self.user}"'


def token_subject(name: str, role: Literal["platform", "team"], namespaces: Sequence[str]) -> Subject:
    return Subject(user=name, role=role, groups=(f"ktx:{role}", "system:authenticated"), namespaces=tuple(namespaces))


def pipeline_subject(claims: PipelineClaims) -> Subject:
    """A pipeline, named as Kubernetes names its Pod's ServiceAccount, with the rules its token carries (what Kratix
    grants that ServiceAccount plus the Pipeline's rbac.permissions, domain/kube/pipeline_token.py)."""
    rules = tuple(
        Rule(tuple(r.verbs), tuple(r.api_groups), tuple(r.resources), tuple(r.resource_names), namespace=r.namespace)
        for r in claims.rules
    )
    namespace = claims.namespace
    return Subject(
        user=claims.username,
        role="pipeline",
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        fixed_rules=(*rules, *BASIC_RULES),
    )


def why_denied(subject: Subject, attrs: Attributes, promise_apis: Sequence[ApiRef] = ()) -> str:
    """ktx's reason for a refusal, to follow the apiserver's wording of it."""
    if subject.role == "pipeline":
        return (
            f"{subject.describe()} holds what Kratix grants its ServiceAccount and its Pipeline's rbac.permissions, "
            "not this"
        )
    if attrs.namespace is not None and attrs.namespace not in subject.namespaces:
        rules = subject.rules(promise_apis)
        if any(allows(rules, _in(attrs, namespace)) for namespace in subject.namespaces):
            return f"its namespaces are {', '.join(subject.namespaces)}"
    return _WHY_PLATFORM_ONLY.get(
        (attrs.group, attrs.resource), f"team tokens may not {attrs.verb} {attrs.qualified_resource or attrs.path}"
    )


def _in(attrs: Attributes, namespace: str) -> Attributes:
    return Attributes(attrs.verb, attrs.group, attrs.resource, attrs.subresource, namespace, attrs.name, attrs.path)


def forbidden_message(subject: Subject, attrs: Attributes, reason: str) -> str:
    """The apiserver's words for a refusal (apiserver responsewriters.forbiddenMessage, apierrors.NewForbidden),
    followed by ktx's reason."""
    if attrs.path is not None:
        return f'forbidden: User "{subject.user}" cannot {attrs.verb} path "{attrs.path}": {reason}'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    denied = f'User "{subject.user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}" {where}'
    prefix = f'{attrs.qualified_resource} "{attrs.name}"' if attrs.name else attrs.qualified_resource
    return f"{prefix} is forbidden: {denied}: {reason}"
