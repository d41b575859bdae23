"""`kubectl auth can-i` and `kubectl auth whoami`: SelfSubjectAccessReview and SelfSubjectRulesReview
(authorization.k8s.io/v1) and SelfSubjectReview (authentication.k8s.io/v1), answered from the caller's own rules.

A review is computed and returned, never stored, as the apiserver does. Its answer comes from the same evaluation as
every refusal (domain/kube/rbac.py), so `can-i` is truthful: what it says yes to is allowed, what it says no to is
refused with a 403.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.kube.authz import KubeCaller, authorize, promise_apis
from api.kube.errors import KubeError, bad_request, invalid
from api.kube.registry import BUILTIN, KubeResource, lookup, served_resources
from api.kube.rollouts import plan_refusal
from domain import rollout_plan as rp
from domain.errors import FieldError, NotFound
from domain.kube import protobuf
from domain.kube.rbac import ApiRef, Attributes, Rule, Subject, allows, why_denied
from domain.names import LABEL_MAX, SUBDOMAIN_MAX

AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
# A path or a resource in a review is a name the caller typed; Kubernetes bounds neither, these are far above any.
MAX_PATH = 1024


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class ResourceAttributes(_Wire):
    namespace: str = Field(default="", max_length=LABEL_MAX)
    verb: str = Field(default="", max_length=LABEL_MAX)
    group: str = Field(default="", max_length=SUBDOMAIN_MAX)
    version: str = Field(default="", max_length=LABEL_MAX)
    resource: str = Field(default="", max_length=SUBDOMAIN_MAX)
    subresource: str = Field(default="", max_length=LABEL_MAX)
    name: str = Field(default="", max_length=SUBDOMAIN_MAX)


class NonResourceAttributes(_Wire):
    path: str = Field(default="", max_length=MAX_PATH)
    verb: str = Field(default="", max_length=LABEL_MAX)


class AccessReviewSpec(_Wire):
    resource_attributes: ResourceAttributes | None = Field(default=None, alias="resourceAttributes")
    non_resource_attributes: NonResourceAttributes | None = Field(default=None, alias="nonResourceAttributes")


class AccessReview(_Wire):
    spec: AccessReviewSpec = Field(default_factory=AccessReviewSpec)


class RulesReviewSpec(_Wire):
    namespace: str = Field(default="", max_length=LABEL_MAX)


class RulesReview(_Wire):
    spec: RulesReviewSpec = Field(default_factory=RulesReviewSpec)


# The fields of the reviews read from kubectl's protobuf bodies (k8s.io/api authorization/v1 generated.proto).
_RESOURCE_ATTRIBUTES: protobuf.Schema = {
    n + 1: (name, protobuf.STRING)
    for n, name in enumerate(("namespace", "verb", "group", "version", "resource", "subresource", "name"))
}
_NON_RESOURCE_ATTRIBUTES: protobuf.Schema = {1: ("path", protobuf.STRING), 2: ("verb", protobuf.STRING)}
_SCHEMAS: dict[str, protobuf.Schema] = {
    "SelfSubjectAccessReview": {
        2: (
            "spec",
            {1: ("resourceAttributes", _RESOURCE_ATTRIBUTES), 2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES)},
        )
    },
    "SelfSubjectRulesReview": {2: ("spec", {1: ("namespace", protobuf.STRING)})},
}


async def _parse(request: Request, model: type[_Wire], kind: str) -> Any:
    body = await request.body()
    try:
        if request.headers.get("content-type", "").startswith(protobuf.CONTENT_TYPE):
            return model.model_validate(protobuf.decode_object(body, _SCHEMAS[kind]))
        return model.model_validate_json(body or b"{}")
    except protobuf.ProtobufError as exc:
        raise bad_request(f"the body of the request is not a valid {kind}: {exc}") from None
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise bad_request(f"the body of the request is not a valid {kind}") from None
        errors = [FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors(include_input=False)]
        raise invalid(kind, AUTHORIZATION, "", errors) from None


def _review(kind: str, group: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "apiVersion": f"{group}/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


def _builtin(group: str, plural: str) -> KubeResource:
    return next(r for r in BUILTIN if (r.group, r.plural) == (group, plural))


ACCESS_REVIEWS = _builtin(AUTHORIZATION, "selfsubjectaccessreviews")
RULES_REVIEWS = _builtin(AUTHORIZATION, "selfsubjectrulesreviews")
SUBJECT_REVIEWS = _builtin(AUTHENTICATION, "selfsubjectreviews")


async def _served(request: Request, attrs: ResourceAttributes) -> KubeResource | None:
    """The served resource a review asks about; None for one ktx does not serve (RBAC still answers for it)."""
    platform = request.app.state.platform
    if attrs.version:
        try:
            return await lookup(platform, attrs.group, attrs.version, attrs.resource)
        except KubeError:
            return None
    return next(
        (r for r in await served_resources(platform) if (r.group, r.plural) == (attrs.group, attrs.resource)), None
    )


async def _promise_apis(request: Request) -> list[ApiRef]:
    return sorted({(r.group, r.plural) for r in await served_resources(request.app.state.platform) if r.promise})


# Kubernetes documents, not the ktx REST API: left out of its OpenAPI document, as the other Kubernetes routes.
router = APIRouter(include_in_schema=False)


@router.post(f"/apis/{AUTHORIZATION}/v1/selfsubjectaccessreviews")
async def self_subject_access_review(request: Request, caller: KubeCaller) -> dict[str, Any]:
    """`kubectl auth can-i VERB RESOURCE [NAME] [-n NS | -A]`: whether the caller may, and why not when it may not."""
    authorize(caller, "create", ACCESS_REVIEWS, None, None)
    review: AccessReview = await _parse(request, AccessReview, "SelfSubjectAccessReview")
    resource_attrs, path_attrs = review.spec.resource_attributes, review.spec.non_resource_attributes
    if (resource_attrs is None) == (path_attrs is None):
        raise invalid(
            "SelfSubjectAccessReview",
            AUTHORIZATION,
            "",
            [
                FieldError(
                    "spec",
                    "Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            ],
        )
    apis: list[ApiRef] = []  # a team's rules expanded for the Promise API asked about, if it is one
    served: KubeResource | None = None
    if path_attrs is not None:
        attrs = Attributes(path_attrs.verb, path=path_attrs.path)
        spec: dict[str, Any] = {"nonResourceAttributes": path_attrs.model_dump(exclude_defaults=True)}
    else:
        assert resource_attrs is not None
        served = await _served(request, resource_attrs)
        # Cluster-scoped resources have no namespace; a namespaced one without one is asked across all (-A).
        namespaced = served.namespaced if served is not None else bool(resource_attrs.namespace)
        apis = promise_apis(served) if served is not None else []
        attrs = Attributes(
            resource_attrs.verb,
            resource_attrs.group,
            resource_attrs.resource,
            resource_attrs.subresource,
            (resource_attrs.namespace or None) if namespaced else None,
            resource_attrs.name,
        )
        spec = {"resourceAttributes": resource_attrs.model_dump(exclude_defaults=True)}
    allowed = allows(caller.rules(apis), attrs)
    status: dict[str, Any] = {"allowed": allowed}
    if not allowed:
        status["reason"] = why_denied(caller, attrs, apis)
    elif served is not None and served.ktx_kind == rp.KIND and attrs.name:
        refused = await _plan_refusal(request, caller, attrs)
        if refused is not None:
            status = {"allowed": False, "reason": refused}
    return _review("SelfSubjectAccessReview", AUTHORIZATION, spec, status)


async def _plan_refusal(request: Request, caller: Subject, attrs: Attributes) -> str | None:
    """A named RolloutPlan is answered as its routes answer (api/kube/rollouts.py); one that does not exist, or a
    question without a name (create, list), by RBAC alone: a new plan is decided by what it lists, and a list shows
    the plans the caller manages."""
    try:
        plan = await request.app.state.platform.rollout(attrs.name)
    except NotFound:
        return None
    return plan_refusal(caller, attrs.verb, plan)


def _resource_rule(rule: Rule) -> dict[str, Any]:
    shown: dict[str, Any] = {"verbs": list(rule.verbs)}
    for key, values in (
        ("apiGroups", rule.api_groups),
        ("resources", rule.resources),
        ("resourceNames", rule.resource_names),
    ):
        if values:
            shown[key] = list(values)
    return shown


@router.post(f"/apis/{AUTHORIZATION}/v1/selfsubjectrulesreviews")
async def self_subject_rules_review(request: Request, caller: KubeCaller) -> dict[str, Any]:
    """`kubectl auth can-i --list -n NS`: every rule that applies in the namespace (those bound there and those bound
    cluster-wide), with a team's expanded for the Promise APIs served now."""
    authorize(caller, "create", RULES_REVIEWS, None, None)
    review: RulesReview = await _parse(request, RulesReview, "SelfSubjectRulesReview")
    namespace = review.spec.namespace or None
    rules = [r for r in caller.rules(await _promise_apis(request)) if r.namespace in (None, namespace)]
    status = {
        "resourceRules": [_resource_rule(r) for r in rules if not r.non_resource_urls],
        "nonResourceRules": [
            {"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)} for r in rules if r.non_resource_urls
        ],
        "incomplete": False,
    }
    return _review("SelfSubjectRulesReview", AUTHORIZATION, review.spec.model_dump(exclude_defaults=True), status)


def user_info(caller: Subject) -> dict[str, Any]:
    return {"username": caller.user, "groups": list(caller.groups)}


@router.post(f"/apis/{AUTHENTICATION}/v1/selfsubjectreviews")
async def self_subject_review(caller: KubeCaller) -> dict[str, Any]:
    """`kubectl auth whoami`: the user name and groups the caller's token stands for (never the token)."""
    authorize(caller, "create", SUBJECT_REVIEWS, None, None)
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": f"{AUTHENTICATION}/v1",
        "metadata": {"creationTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "status": {"userInfo": user_info(caller)},
    }
