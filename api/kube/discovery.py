"""/version, /api, /apis and their per-group documents, negotiated as client-go asks: the aggregated v2 document
when the Accept header offers it, else the legacy documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.kube.authz import kube_subject
from api.kube.errors import KubeError
from api.kube.registry import served_resources
from domain.kube import discovery as docs

router = APIRouter(dependencies=[Depends(kube_subject)])


def _answer(request: Request, aggregated: dict[str, Any], legacy: dict[str, Any]) -> JSONResponse:
    if docs.wants_aggregated(request.headers.get("accept", "")):
        return JSONResponse(aggregated, media_type=docs.AGGREGATED, headers={"Vary": "Accept"})
    return JSONResponse(legacy, headers={"Vary": "Accept"})


@router.get("/version")
async def version() -> dict[str, Any]:
    return docs.VERSION


@router.get("/api")
async def core_groups(request: Request) -> JSONResponse:
    resources = await served_resources(request.app.state.platform)
    return _answer(request, docs.aggregated(resources, core=True), docs.api_versions(request.url.netloc))


@router.get("/api/v1")
async def core_resources(request: Request) -> JSONResponse:
    resources = await served_resources(request.app.state.platform)
    return JSONResponse(docs.api_resource_list(resources, "", "v1"))


@router.get("/apis")
async def groups(request: Request) -> JSONResponse:
    resources = await served_resources(request.app.state.platform)
    return _answer(request, docs.aggregated(resources, core=False), docs.api_group_list(resources))


@router.get("/apis/{group}")
async def group(group: str, request: Request) -> JSONResponse:
    versions = docs.group_versions(await served_resources(request.app.state.platform), group)
    if not versions or not group:
        raise KubeError("NotFound", "the server could not find the requested resource", {})
    return JSONResponse(docs.api_group(group, versions))


@router.get("/apis/{group}/{version}")
async def group_version(group: str, version: str, request: Request) -> JSONResponse:
    resources = await served_resources(request.app.state.platform)
    if version not in docs.group_versions(resources, group):
        raise KubeError("NotFound", "the server could not find the requested resource", {})
    return JSONResponse(docs.api_resource_list(resources, group, version))
