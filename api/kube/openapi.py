"""/openapi/v3 and its per-group-version documents, built on each request from what the registry serves (so a Promise
installed a moment ago is explainable at once), for `kubectl explain` and kubectl's check that the server validates
fields itself.

A document's URL carries its hash, as the apiserver's do: kubectl caches a document under that URL, and the URL
changes when the document does. /openapi/v2 is not served (404, as on an apiserver started without it): kubectl 1.37
reads v3, and falls back to v2 only where v3 says a kind's PATCH lacks `fieldValidation`, which ours never does.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.auth import authenticate
from api.kube.errors import KubeError
from api.kube.registry import served_resources
from domain.kube import openapi

router = APIRouter(dependencies=[Depends(authenticate)])


async def _documents(request: Request) -> dict[str, dict]:
    return openapi.documents(await served_resources(request.app.state.platform))


@router.get("/openapi/v3")
async def index(request: Request) -> JSONResponse:
    return JSONResponse(openapi.index(await _documents(request)), headers={"Cache-Control": "no-cache, private"})


@router.get("/openapi/v3/{path:path}")
async def group_version(path: str, request: Request) -> Response:
    document = (await _documents(request)).get(path)
    if document is None:
        raise KubeError("NotFound", "the server could not find the requested resource", {})
    digest = openapi.document_hash(document)
    # Asked for by its current hash: the bytes under that URL never change, so clients may keep them.
    cache = "public, immutable, max-age=31536000" if request.query_params.get("hash") == digest else "no-cache, private"
    return Response(
        openapi.encode(document),
        media_type="application/json",
        headers={"Cache-Control": cache, "Etag": f'"{digest}"'},
    )
