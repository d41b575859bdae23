"""ktx as a Kubernetes API server for the platform's objects: what kubectl, client-go and the `kubernetes` Python
client send, answered from the same application service as the ktx REST routes.

Each module holds one concern: `registry` (which resources are served), `discovery` (/api, /apis, /version),
`objects` (get, list, create, update, patch, delete, status), `watch`, `openapi` (/openapi/v3 for explain),
`access_review` (auth can-i), `authz` (the one decision every route asks), `errors` (metav1.Status).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.kube import access_review, discovery, errors, objects, openapi


def mount(app: FastAPI) -> None:
    """Adds the Kubernetes routes; each submodule contributes its router here as it is built. They are Kubernetes'
    documents, not the ktx REST API: left out of its OpenAPI document (kubectl reads /openapi/v3)."""
    errors.install(app)
    # The reviews before the object routes, whose catch-all paths would otherwise read them as objects of a kind.
    for router in (discovery.router, access_review.router, objects.router, openapi.router):
        app.include_router(router, include_in_schema=False)
