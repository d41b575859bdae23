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
    """Adds the Kubernetes routes; each submodule contributes its router here as it is built."""
    errors.install(app)
    app.include_router(discovery.router)
    # Before the object routes: the reviews' paths would otherwise read as objects of a kind.
    app.include_router(access_review.router)
    app.include_router(objects.router)
    app.include_router(openapi.router)
