"""Pipeline tokens: what a pipeline container presents to the platform API, and the access it carries.

A Kratix pipeline Pod talks to the platform's API server as its ServiceAccount, with the Role/ClusterRole rules Kratix
binds to that account (reference §5.7, Kratix's api/v1alpha1/pipeline_factory.go) plus the Pipeline's
`rbac.permissions`. ktx has no ServiceAccounts on podman, so the worker mints a token carrying those rules, signed with
HMAC-SHA256 under a key the worker and the API share; the API verifies it and authorises by the rules it carries.

Format: `ktxp1.<base64url(JSON claims)>.<base64url(HMAC-SHA256 over "ktxp1.<claims>")>`, header-safe characters only,
no padding. Pure: the caller reads the key and the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.errors import FieldError
from domain.names import KRATIX_GROUP, LABEL_MAX, NAME_PATTERN, NAMESPACE_PATTERN, SUBDOMAIN_MAX

PREFIX = "ktxp1"
# A Kubernetes client sends the token in one Authorization header; the API's HTTP server reads at most 16 KiB of
# headers (h11's default), and kubectl's other headers take well under 1 KiB. The largest claims the bounds below allow
# (every name at its longest, 4 KiB of permissions) come to about 9 KiB.
MAX_TOKEN_BYTES = 12 * 1024
# A key shorter than the hash's own output would be the weak point of the signature.
MIN_KEY_BYTES = 32
# What the Pipeline's rbac.permissions may hold, checked at apply: each entry is a Kubernetes PolicyRule plus
# `resourceNamespace`, its lists a few names each. 4 KiB of rules is dozens of them (Kratix's marketplace Promises grant
# one to three), and keeps the token, base64 included, under MAX_TOKEN_BYTES.
MAX_PERMISSIONS = 32
MAX_RULE_ITEMS = 32
MAX_PERMISSIONS_JSON_BYTES = 4 * 1024
# The namespace Kratix runs Promise workflows in; a resource workflow runs in its resource's namespace.
PLATFORM_NAMESPACE = "kratix-platform-system"
# The verbs Kratix's default Roles grant on the object's kind (pipeline_factory.go).
_OBJECT_VERBS = ("get", "list", "update", "create", "patch")
_VERB = re.compile(r"^([a-z]{1,32}|\*)$")
_RESOURCE = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?|\*)(/([a-z]{1,32}|\*))?$")
_B64 = re.compile(r"^[A-Za-z0-9_-]+$")

_Names = list[str]


class _Bounded(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Rule(_Bounded):
    """One Kubernetes PolicyRule and where it is bound: `namespace` None is a ClusterRoleBinding (every namespace and
    cluster-scoped objects), a name is a RoleBinding there (namespaced objects in it only). domain/kube/rbac.py
    evaluates them, as it does every caller's."""

    # Kubernetes' ValidatePolicyRule: a resource rule names at least one group, resource and verb.
    api_groups: _Names = Field(alias="apiGroups", min_length=1, max_length=MAX_RULE_ITEMS)
    resources: _Names = Field(min_length=1, max_length=MAX_RULE_ITEMS)
    verbs: _Names = Field(min_length=1, max_length=MAX_RULE_ITEMS)
    resource_names: _Names = Field(default_factory=list, alias="resourceNames", max_length=MAX_RULE_ITEMS)
    namespace: str | None = None

    @field_validator("api_groups", "resource_names")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in ("", "*") and (len(value) > SUBDOMAIN_MAX or not NAME_PATTERN.match(value)):
                raise ValueError(f"{value!r} is not a DNS-1123 subdomain, '' or '*'")
        return values

    @field_validator("resources")
    @classmethod
    def _resources(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _RESOURCE.match(value):
                raise ValueError(f"{value!r} is not a resource ('secrets', 'redis/status', '*')")
        return values

    @field_validator("verbs")
    @classmethod
    def _verbs(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _VERB.match(value):
                raise ValueError(f"{value!r} is not a verb ('get', 'list', '*')")
        return values

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > LABEL_MAX or not NAMESPACE_PATTERN.match(value)):
            raise ValueError(f"{value!r} is not a namespace")
        return value


class Permission(_Bounded):
    """One entry of a Pipeline's spec.rbac.permissions, as Kratix's Permission type: a PolicyRule and where it applies
    ('' the pipeline's namespace, a namespace, or '*' all of them)."""

    resource_namespace: str = Field(default="", alias="resourceNamespace")
    api_groups: _Names = Field(default_factory=list, alias="apiGroups")
    resources: _Names = Field(default_factory=list)
    verbs: _Names = Field(default_factory=list)
    resource_names: _Names = Field(default_factory=list, alias="resourceNames")

    @field_validator("resource_namespace")
    @classmethod
    def _where(cls, value: str) -> str:
        if value not in ("", "*") and (len(value) > LABEL_MAX or not NAMESPACE_PATTERN.match(value)):
            raise ValueError(f"{value!r} is not a namespace, '' (the pipeline's) or '*' (all)")
        return value

    def rule(self, pipeline_namespace: str) -> Rule:
        where = self.resource_namespace
        # By the wire names, so a refusal names the Pipeline's field.
        return Rule.model_validate(
            {
                "apiGroups": self.api_groups,
                "resources": self.resources,
                "verbs": self.verbs,
                "resourceNames": self.resource_names,
                "namespace": None if where == "*" else (where or pipeline_namespace),
            }
        )


def parse_permissions(raw: list[dict[str, Any]], field: str) -> tuple[list[Permission], list[FieldError]]:
    """A Pipeline's rbac.permissions checked as the token will carry them, each fault named from `field`."""
    errors: list[FieldError] = []
    if len(raw) > MAX_PERMISSIONS:
        return [], [FieldError(field, f"Too many: {len(raw)}: must have at most {MAX_PERMISSIONS} items")]
    size = len(json.dumps(raw, separators=(",", ":"), default=str).encode())
    if size > MAX_PERMISSIONS_JSON_BYTES:
        return [], [FieldError(field, f"Too long: {size} bytes: must be at most {MAX_PERMISSIONS_JSON_BYTES}")]
    permissions = []
    for index, entry in enumerate(raw):
        where = f"{field}[{index}]"
        if isinstance(entry, dict) and "nonResourceURLs" in entry:
            errors.append(
                FieldError(f"{where}.nonResourceURLs", "Unsupported value: the platform API serves no such URL")
            )
            continue
        try:
            permission = Permission.model_validate(entry)
            permission.rule(PLATFORM_NAMESPACE)  # the rule's own checks of each name, verb and resource
        except ValidationError as exc:
            errors += [
                FieldError(f"{where}.{'.'.join(str(p) for p in error['loc'])}", error["msg"]) for error in exc.errors()
            ]
            continue
        permissions.append(permission)
    return permissions, errors


class ObjectRef(_Bounded):
    """The object a pipeline runs for (what Kratix's Job annotations name)."""

    group: str = Field(max_length=SUBDOMAIN_MAX)
    version: str = Field(max_length=LABEL_MAX)
    kind: str = Field(max_length=LABEL_MAX)
    plural: str = Field(max_length=SUBDOMAIN_MAX)
    name: str = Field(max_length=SUBDOMAIN_MAX)
    namespace: str = Field(default="", max_length=LABEL_MAX)


class PipelineClaims(_Bounded):
    """What a pipeline token says: whose pipeline it is, until when, and what it may do."""

    # The ServiceAccount Kratix would run the pipeline as (`<promise>-<type>-<action>-<pipeline>` in its namespace).
    service_account: str = Field(max_length=SUBDOMAIN_MAX)
    namespace: str = Field(max_length=LABEL_MAX)
    object: ObjectRef
    promise: str = Field(max_length=SUBDOMAIN_MAX)
    workflow_type: Literal["promise", "resource"]
    action: Literal["configure", "delete"]
    pipeline: str = Field(max_length=LABEL_MAX)
    expires_at: float
    rules: list[Rule] = Field(max_length=MAX_PERMISSIONS + 3)

    @property
    def username(self) -> str:
        """The user name Kubernetes gives a ServiceAccount, as `kubectl auth whoami` would show it."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def pipeline_namespace(workflow_type: str, object_namespace: str, configured: str = "") -> str:
    """Where Kratix runs the pipeline: the Promise's pipelineNamespace when set, else the resource's namespace, or
    Kratix's own for a Promise's workflows."""
    if configured:
        return configured
    return object_namespace if workflow_type == "resource" and object_namespace else PLATFORM_NAMESPACE


def default_rules(workflow_type: str, obj: ObjectRef, namespace: str) -> list[Rule]:
    """Kratix's default Role/ClusterRole for a pipeline's ServiceAccount (pipeline_factory.go role/clusterRole), with
    the ClusterRole it adds on the resource's kind when the pipeline runs outside the resource's namespace."""
    if workflow_type == "promise":
        return [
            Rule(
                api_groups=[KRATIX_GROUP],
                resources=["promises", "promises/status", "works"],
                verbs=list(_OBJECT_VERBS),
            )
        ]
    rules = [
        Rule(
            api_groups=[obj.group],
            resources=[obj.plural, f"{obj.plural}/status"],
            verbs=list(_OBJECT_VERBS),
            namespace=namespace,
        ),
        Rule(api_groups=[KRATIX_GROUP], resources=["works"], verbs=["*"], namespace=namespace),
    ]
    if namespace != obj.namespace:
        rules.append(
            Rule(api_groups=[obj.group], resources=[obj.plural, f"{obj.plural}/status"], verbs=list(_OBJECT_VERBS))
        )
    return rules


def service_account_name(promise: str, workflow_type: str, action: str, pipeline: str, named: str | None) -> str:
    """The account Kratix runs a pipeline as: the Pipeline's rbac.serviceAccount, else its pipeline ID."""
    return (named or f"{promise}-{workflow_type}-{action}-{pipeline}")[:SUBDOMAIN_MAX]


def claims_for(
    *,
    obj: ObjectRef,
    promise: str,
    workflow_type: Literal["promise", "resource"],
    action: Literal["configure", "delete"],
    pipeline: str,
    permissions: list[Permission],
    expires_at: float,
    configured_namespace: str = "",
    service_account: str | None = None,
) -> PipelineClaims:
    """`configured_namespace` is the Promise's pipelineNamespace; `service_account` the Pipeline's
    rbac.serviceAccount, the account Kratix would run it as instead of its own."""
    namespace = pipeline_namespace(workflow_type, obj.namespace, configured_namespace)
    return PipelineClaims(
        service_account=service_account_name(promise, workflow_type, action, pipeline, service_account),
        namespace=namespace,
        object=obj,
        promise=promise,
        workflow_type=workflow_type,
        action=action,
        pipeline=pipeline,
        expires_at=expires_at,
        rules=default_rules(workflow_type, obj, namespace) + [p.rule(namespace) for p in permissions],
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def mint(claims: PipelineClaims, key: bytes, ttl_s: float, now: float | None = None) -> str:
    """A token for `claims`, expiring `ttl_s` after `now` (the clock by default; the claims' expiry is replaced)."""
    now = time.time() if now is None else now
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a pipeline token key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    claims = claims.model_copy(update={"expires_at": now + ttl_s})
    payload = _b64(claims.model_dump_json(by_alias=True).encode())
    signed = f"{PREFIX}.{payload}"
    token = f"{signed}.{_signature(key, signed)}"
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError(f"a pipeline token would be {len(token)} bytes, over {MAX_TOKEN_BYTES}")
    return token


def looks_like(token: str) -> bool:
    """Whether a bearer token is meant as a pipeline token (the API then verifies it, and never as another kind)."""
    return token.startswith(f"{PREFIX}.")


def verify(token: str, key: bytes, now: float) -> PipelineClaims | None:
    """The claims of a token signed with `key` and not expired at `now`; None for anything else."""
    if len(token) > MAX_TOKEN_BYTES or len(key) < MIN_KEY_BYTES:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not all(_B64.match(p) for p in parts[1:]):
        return None
    expected = _signature(key, f"{parts[0]}.{parts[1]}")
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        return None
    try:
        claims = PipelineClaims.model_validate_json(_unb64(parts[1]))
    except (ValidationError, binascii.Error, ValueError):
        return None
    return claims if claims.expires_at > now else None
