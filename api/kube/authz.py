"""Who a Kubernetes request comes from, and the one decision every Kubernetes route asks before it acts.

Authentication: a bearer token is a platform or team token (the tokens file, by SHA-256), the embedded stack's admin
token, or a pipeline's short-lived token. The plain-HTTP port of an API that has no tokens file serves this machine
alone and answers without one, as the REST routes do; the HTTPS listener asks every request for a token, because the
pipeline containers that reach it may look like local connections. Authorisation: the caller's RBAC rules
(domain/kube/rbac.py), evaluated as the apiserver does; a refusal is a 403 Status worded as the apiserver words it.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import bearer, known_principal, loopback_freebie
from api.kube.errors import KubeError
from api.kube.registry import KubeResource
from domain.access import LOOPBACK
from domain.kube import pipeline_token
from domain.kube.rbac import Attributes, Subject, allows, forbidden_message, pipeline_subject, why_denied


def unauthorized() -> KubeError:
    # The apiserver says no more than this to a caller it cannot identify.
    return KubeError("Unauthorized", "Unauthorized")


async def kube_subject(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Subject:
    if credentials is None:
        if loopback_freebie(request):
            return LOOPBACK.subject()
        raise unauthorized()
    # A token given is always the caller, even where none is needed: a pipeline's token never acts as the loopback.
    token = credentials.credentials
    if pipeline_token.looks_like(token):
        key: bytes | None = getattr(request.app.state, "pipeline_token_key", None)
        claims = pipeline_token.verify(token, key, time.time()) if key is not None else None
        if claims is None:
            raise unauthorized()
        return pipeline_subject(claims)
    principal = known_principal(token, request)
    if principal is None:
        raise unauthorized()
    return principal.subject()


KubeCaller = Annotated[Subject, Depends(kube_subject)]


def attributes(
    verb: str, resource: KubeResource, namespace: str | None, name: str | None, subresource: str | None = None
) -> Attributes:
    return Attributes(
        verb,
        resource.group,
        resource.plural,
        subresource or "",
        namespace if resource.namespaced else None,
        name or "",
    )


def promise_apis(resource: KubeResource) -> list[tuple[str, str]]:
    """The Promise API a request touches, for a team's rules (which cover every Promise API alike)."""
    return [(resource.group, resource.plural)] if resource.promise else []


def permitted(
    caller: Subject,
    verb: str,
    resource: KubeResource,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
) -> bool:
    return allows(caller.rules(promise_apis(resource)), attributes(verb, resource, namespace, name, subresource))


def authorize(
    caller: Subject,
    verb: str,
    resource: KubeResource,
    namespace: str | None,
    name: str | None,
    subresource: str | None = None,
) -> None:
    """Nothing when the caller's rules allow the request; else the 403 Status naming who was refused what, and why.

    `namespace` None on a namespaced resource is a request across all namespaces (`-A`): only cluster-wide rules
    grant it, as in Kubernetes."""
    attrs = attributes(verb, resource, namespace, name, subresource)
    apis = promise_apis(resource)
    if allows(caller.rules(apis), attrs):
        return
    details: dict[str, str] = {"group": resource.group, "kind": resource.plural} if resource.group else {}
    details = details or {"kind": resource.plural}
    if name:
        details["name"] = name
    raise KubeError("Forbidden", forbidden_message(caller, attrs, why_denied(caller, attrs, apis)), details)
