"""The HTTP facade: apply, get, list, delete and wait, with Kratix-shaped objects in and out."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, AsyncIterator, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from activities.pipelines.container_logs import LOG_KEEP_BYTES, LOG_RESPONSE_BYTES
from activities.stores.secrets import secret_store_for
from api.auth import (
    AuthConfigError,
    Caller,
    Forbidden,
    Unauthenticated,
    authenticate,
    authorise,
    load_admin_entry,
    load_token_source,
)
from api.console import mount as mount_console
from api.kube import mount
from api.limits import BodyLimit, BodyTooLarge
from api.listeners import ListenerConfigError, Listeners
from api.observability import instrument
from service.change_feed import ChangeFeed
from service.console_counts import OverviewCounts
from service.platform import PROMISE_DIFF_MAX, Applied, Conflict, NotFound, Platform
from domain.access import Principal, Target, refusal, rollout_refusal, rollout_verb_refusal
from domain.cron import window_state
from domain import rollout_plan as rp
from domain.rollout_progress import Control
from domain.dry_run import live_namespace as dry_run_live_namespace
from domain.errors import DocumentTooLarge, InvalidDocument
from domain.names import LABEL_MAX, NAMESPACE_PATTERN, NAME_PATTERN, SUBDOMAIN_MAX, GitOpsAgent
from domain.parsing import MalformedInput, decode_body, load_documents
from domain.visibility import QueryValueRefused
from worker.settings import Settings, connect_client


# The client's default retries a refused connection for up to 10 s, so with Temporal down every request hung that long
# and then failed. The API's callers retry themselves (kubectl-like clients, CI): a blip of a few hundred ms is still
# ridden out, an outage is said at once, as 503 (TEMPORAL_DOWN) with the reason.
TEMPORAL_RETRY = RetryConfig(
    initial_interval_millis=100, multiplier=2, max_interval_millis=1000, max_elapsed_time_millis=2500, max_retries=5
)
TEMPORAL_DOWN = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
RETRY_AFTER_SECONDS = 5


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.platform = Platform(
        await connect_client(settings, TEMPORAL_RETRY),
        settings.task_queue,
        secret_store_for(settings),
        max_document=settings.api_max_document,
        pipeline_runner=settings.pipeline_runner,
    )
    # One per process, shared by every Kubernetes watch (api/kube/watch.py) and the console's change stream.
    app.state.change_feed = ChangeFeed(app.state.platform, max_watchers=settings.api_max_watchers)
    await app.state.change_feed.start()
    # The web console's overview table, counted again as the feed reports changes (service/console_counts.py).
    app.state.overview_counts = OverviewCounts(app.state.platform, app.state.change_feed)
    await app.state.overview_counts.start()
    try:
        yield
    finally:
        await app.state.overview_counts.stop()
        await app.state.change_feed.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="ktx", summary="A Kratix-compatible platform orchestrator on Temporal", lifespan=lifespan)
    app.state.settings = settings or Settings.from_env()
    app.state.tokens = load_token_source(app.state.settings)
    app.state.admin_entry = load_admin_entry(app.state.settings)
    # Pipeline tokens are verified with the key the worker signs them with (api/kube/authz.py); workers give
    # pipelines tokens only when the API serves Kubernetes over HTTPS, so without that listener there is no key.
    if app.state.settings.kube_api_port is not None:
        app.state.pipeline_token_key = app.state.settings.pipeline_token_key()

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _refuse(413, exc.detail)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        response = _refuse(401, exc.reason)
        response.headers["WWW-Authenticate"] = exc.challenge
        return response

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return _refuse(403, exc.reason)

    @app.exception_handler(RPCError)
    async def temporal_failed(request: Request, exc: RPCError) -> JSONResponse:
        # The one place Temporal's own failures become answers: every route reaches Temporal through Platform.
        if exc.status in TEMPORAL_DOWN:
            response = _refuse(
                503,
                f"Temporal is unavailable ({exc.status.name}: {exc.message}); the request was not "
                "completed, retry it once Temporal is back",
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return _refuse(
            500, f"Temporal refused the request ({exc.status.name if exc.status else 'unknown'}: {exc.message})"
        )

    @app.exception_handler(QueryValueRefused)
    async def bad_query_value(request: Request, exc: QueryValueRefused) -> JSONResponse:
        return _refuse(400, str(exc))

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, exc: TimeoutError) -> JSONResponse:
        return JSONResponse(status_code=408, content={"detail": str(exc)})

    _routes(app)
    mount(app)
    mount_console(app)
    app.add_middleware(BodyLimit, max_bytes=app.state.settings.api_max_body)
    instrument(app)
    return app


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
# Namespaces and Promise names end up in visibility queries and workflow IDs: only names that can exist get through.
Namespace = Annotated[str, Query(max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN.pattern)]
OptionalNamespace = Annotated[str | None, Query(max_length=LABEL_MAX, pattern=NAMESPACE_PATTERN.pattern)]
PromiseName = Annotated[str | None, Query(max_length=LABEL_MAX, pattern=NAME_PATTERN.pattern)]
# What a user may type for a kind (kind, plural, singular, short name, `plural.group`) and an object's name: letters,
# digits, '-' and '.', so nothing else reaches a workflow ID or a visibility query.
Kind = Annotated[str, Path(max_length=SUBDOMAIN_MAX, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")]
Name = Annotated[str, Path(max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN.pattern)]


class ApplyResponse(BaseModel):
    applied: list[Applied]
    # With `dryRun=All`: each document as it would be stored (validated, defaulted, admitted), none of them stored.
    objects: list[dict[str, Any]] = []


class LabelChange(BaseModel):
    set: dict[str, str] = {}
    remove: list[str] = []


# A `ktx diff` runs each request's pipelines in turn: a few files' worth, not a Promise's whole fleet per call.
DIFF_MAX_DOCUMENTS = 50


class FieldProblem(BaseModel):
    field: str
    reason: str


# The body is read raw (YAML streams are not JSON), so its shape is declared here for clients and fuzzers.
_DOCUMENT = {
    "type": "object",
    "required": ["apiVersion", "kind"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object"},
        "items": {"type": "array", "description": "the documents of a `kind: List`"},
    },
}
APPLY_BODY = {
    "application/json": {"schema": _DOCUMENT},
    "application/yaml": {"schema": {"type": "string", "description": "one or many YAML documents"}},
}


# OpenAPI links: what a client (and the stateful fuzzer) can do next with the first object an apply answered.
APPLIED_LINKS = {
    verb: {
        "operationRef": f"#/paths/~1objects~1{{kind}}~1{{name}}{suffix.replace('/', '~1')}/{method}",
        "parameters": {"kind": "$response.body#/applied/0/kind", "name": "$response.body#/applied/0/name"},
    }
    for verb, method, suffix in [
        ("get", "get", ""),
        ("delete", "delete", ""),
        ("label", "post", "/labels"),
        ("reconcile", "post", "/reconcile"),
        ("tree", "get", "/tree"),
        ("wait", "get", "/wait"),
        ("logs", "get", "/logs"),
    ]
}


class Refusal(BaseModel):
    message: str
    document: int | None = None
    errors: list[FieldProblem] = []


def _refuse(
    status: int, message: str, document: int | None = None, errors: list[FieldProblem] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content=Refusal(message=message, document=document, errors=errors or []).model_dump()
    )


def _routes(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        # Liveness only: a Temporal outage must not restart every API Pod (that is what /readyz reports).
        return {"status": "ok"}

    # Every route but the probes and the scrape: a route added here cannot forget to authenticate.
    api = APIRouter(
        dependencies=[Depends(authenticate)],
        responses={
            401: {"model": Refusal, "description": "No bearer token, or one the API does not know"},
            403: {"model": Refusal, "description": "The token's role or namespaces do not allow this"},
        },
    )

    @api.post(
        "/apply",
        response_model=ApplyResponse,
        responses={
            200: {"links": APPLIED_LINKS},
            400: {"model": Refusal},
            404: {"model": Refusal},
            409: {"model": Refusal},
            413: {"model": Refusal},
            422: {"model": Refusal},
        },
        openapi_extra={"requestBody": {"required": True, "content": APPLY_BODY}},
    )
    async def apply(
        request: Request,
        platform: PlatformDep,
        caller: Caller,
        dry_run: Annotated[Literal["All"] | None, Query(alias="dryRun")] = None,
    ) -> Any:
        """Apply one or many YAML or JSON documents. Documents before a refused one stay applied; none after it
        start. With `dryRun=All` (kubectl's `--dry-run=server`), each is admitted as the Kubernetes API's dry run
        admits it and answered as it would be stored; nothing is stored or started."""
        try:
            text = decode_body(await request.body())
            # Parsing megabytes of YAML takes seconds of pure Python: off the event loop, so probes keep answering.
            documents = await run_in_threadpool(load_documents, text)
        except MalformedInput as exc:
            return _refuse(400, str(exc))
        if not documents:
            return _refuse(400, "no documents in the request body")
        applied: list[Applied] = []
        objects: list[dict[str, Any]] = []
        for index, document in enumerate(documents):
            reason = refusal(caller, "apply", Target.of_document(document))
            live = dry_run_live_namespace(document)
            if reason is None and live is not None:
                # A DryRun reads the live request it diffs against: only one who may preview there may name it.
                reason = refusal(caller, "apply", Target("DryRun", None, live, True))
            if reason is not None:
                return _refuse(403, reason, index)
            try:
                if dry_run:
                    admitted = await platform.admit(document)
                    objects.append(admitted)
                    applied.append(await platform.dry_run_outcome(admitted))
                else:
                    applied.append(await platform.apply(document))
            except InvalidDocument as exc:
                errors = [FieldProblem(field=e.field, reason=e.reason) for e in exc.errors]
                metadata = document.get("metadata")
                name = metadata.get("name") if isinstance(metadata, dict) else None
                return _refuse(422, f'{document.get("kind")} "{name}" is invalid: {exc}', index, errors)
            except NotFound as exc:
                return _refuse(404, str(exc), index)
            except Conflict as exc:
                return _refuse(409, str(exc), index)
            except DocumentTooLarge as exc:
                return _refuse(413, str(exc), index)
        return ApplyResponse(applied=applied, objects=objects)

    @api.post(
        "/diff",
        responses={400: {"model": Refusal}, 404: {"model": Refusal}, 422: {"model": Refusal}},
        openapi_extra={"requestBody": {"required": True, "content": APPLY_BODY}},
    )
    async def diff(
        request: Request,
        platform: PlatformDep,
        caller: Caller,
        timeout: Annotated[float, Query(ge=1, le=3600)] = 300,
        limit: Annotated[int | None, Query(ge=1, le=PROMISE_DIFF_MAX)] = None,
    ) -> Any:
        """`ktx diff`: what each request in the body would change, from a DryRun of it (run, read, deleted); for a
        Promise, what it would change for each request bound to it, or the first `limit` of them."""
        try:
            documents = await run_in_threadpool(load_documents, decode_body(await request.body()))
        except MalformedInput as exc:
            return _refuse(400, str(exc))
        if not documents or len(documents) > DIFF_MAX_DOCUMENTS:
            return _refuse(400, f"give 1 to {DIFF_MAX_DOCUMENTS} requests to diff")
        diffs = []
        for index, document in enumerate(documents):
            target = Target.of_document(document)
            if target.kind == "Promise" and target.builtin:
                # It previews every namespace's requests: only one who may change the Promise may.
                reason = refusal(caller, "apply", target)
            else:
                reason = refusal(caller, "apply", Target("DryRun", None, target.namespace or "default", True))
                reason = reason or refusal(caller, "get", target)
            if reason is not None:
                return _refuse(403, reason, index)
            try:
                diffs += await platform.diff(document, timeout, limit)
            except InvalidDocument as exc:
                errors = [FieldProblem(field=e.field, reason=e.reason) for e in exc.errors]
                return _refuse(422, f"{document.get('kind')} is invalid: {exc}", index, errors)
            except NotFound as exc:
                return _refuse(404, str(exc), index)
        return {"diffs": diffs}

    @api.get("/objects/{kind}")
    async def list_objects(
        kind: Kind,
        platform: PlatformDep,
        caller: Caller,
        namespace: OptionalNamespace = None,
        promise: PromiseName = None,
    ) -> list[dict[str, Any]]:
        """Without `namespace`, a team token gets the objects in its own namespaces."""
        authorise(caller, "list", Target.of_route(kind, None, namespace))
        found = await platform.list(kind, namespace=namespace, promise=promise)
        return [obj for obj in found if caller.sees(obj["metadata"].get("namespace"))]

    @api.get("/objects/{kind}/{name}")
    async def get_object(
        kind: Kind, name: Name, platform: PlatformDep, caller: Caller, namespace: Namespace = "default"
    ) -> dict[str, Any]:
        authorise(caller, "get", Target.of_route(kind, name, namespace))
        return await platform.get(kind, name, namespace)

    @api.delete("/objects/{kind}/{name}")
    async def delete_object(
        kind: Kind,
        name: Name,
        platform: PlatformDep,
        caller: Caller,
        namespace: Namespace = "default",
        force: bool = False,
        wait: Annotated[float, Query(ge=0, le=3600)] = 0,
    ) -> dict[str, Any]:
        """Start deletion; with `wait` > 0, answer once the delete pipeline ran and the files are gone."""
        authorise(caller, "delete", Target.of_route(kind, name, namespace))
        workflow_id = await platform.delete(kind, name, namespace, force=force)
        deleted = True
        if wait and "/" in workflow_id:
            deleted = await platform.wait_deleted(workflow_id, wait)
        return {"kind": kind, "name": name, "deleted": deleted}

    @api.post(
        "/objects/{kind}/{name}/labels",
        responses={404: {"model": Refusal}, 409: {"model": Refusal}, 422: {"model": Refusal}},
    )
    async def label_object(
        kind: Kind,
        name: Name,
        change: LabelChange,
        platform: PlatformDep,
        caller: Caller,
        namespace: Namespace = "default",
    ) -> Any:
        """kubectl-label semantics; Kratix's control labels (manual-reconciliation, paused, workflow-suspended) act
        at once. Keys and values follow Kubernetes' label grammar; an object's labels stay within 256 KiB."""
        authorise(caller, "label", Target.of_route(kind, name, namespace))
        try:
            return {"labels": await platform.label(kind, name, namespace, set=change.set, remove=change.remove)}
        except InvalidDocument as exc:
            errors = [FieldProblem(field=e.field, reason=e.reason) for e in exc.errors]
            return _refuse(422, f'labels of {kind} "{name}" refused: {exc}', errors=errors)

    @api.post("/objects/{kind}/{name}/reconcile")
    async def reconcile_object(
        kind: Kind, name: Name, platform: PlatformDep, caller: Caller, namespace: Namespace = "default"
    ) -> dict[str, Any]:
        """Run the configure workflow again from its first pipeline (`kratix.io/manual-reconciliation`)."""
        authorise(caller, "reconcile", Target.of_route(kind, name, namespace))
        return {"labels": await platform.reconcile(kind, name, namespace)}

    @api.get("/objects/{kind}/{name}/logs")
    async def object_logs(
        request: Request,
        kind: Kind,
        name: Name,
        platform: PlatformDep,
        caller: Caller,
        namespace: Namespace = "default",
        pipeline: str | None = None,
        container: str | None = None,
        limit_bytes: Annotated[int, Query(alias="limitBytes", ge=1, le=LOG_KEEP_BYTES)] = LOG_RESPONSE_BYTES,
    ) -> list[dict[str, Any]]:
        """The end of each container's log (`limitBytes`, 1 MiB unless asked; the worker keeps the last 4 MiB);
        `truncated` says there was more. A run in progress is included as far as it has written (`running: true`),
        read from the worker's log directory under this host's KTX_HOME."""
        authorise(caller, "logs", Target.of_route(kind, name, namespace))
        logs_dir = request.app.state.settings.logs_dir
        return await platform.logs(kind, name, namespace, pipeline, container, limit_bytes, logs_dir)

    @api.get("/objects/destination/{name}/manifests", responses={404: {"model": Refusal}, 422: {"model": Refusal}})
    async def destination_manifests(
        name: Name, platform: PlatformDep, caller: Caller, gitops: GitOpsAgent = "flux"
    ) -> Any:
        """The Flux or ArgoCD objects to apply on the Destination's cluster so it pulls its directory from the store."""
        authorise(caller, "manifests", Target.of_route("Destination", name, None))
        try:
            return await platform.destination_manifests(name, gitops)
        except InvalidDocument as exc:
            errors = [FieldProblem(field=e.field, reason=e.reason) for e in exc.errors]
            return _refuse(422, f'no {gitops} manifests for destination "{name}": {exc}', errors=errors)

    @api.get("/objects/{kind}/{name}/tree")
    async def object_tree(
        kind: Kind, name: Name, platform: PlatformDep, caller: Caller, namespace: Namespace = "default"
    ) -> dict[str, Any]:
        """The object and the component resources it requested (compound Promises), recursively."""
        authorise(caller, "tree", Target.of_route(kind, name, namespace))
        return _visible_tree(await platform.tree(kind, name, namespace), caller)

    @api.get("/objects/{kind}/{name}/wait")
    async def wait_for(
        kind: Kind,
        name: Name,
        platform: PlatformDep,
        caller: Caller,
        condition: Annotated[str, Query(min_length=1, max_length=LABEL_MAX)],
        namespace: Namespace = "default",
        timeout: Annotated[float, Query(ge=0, le=3600)] = 30,
    ) -> dict[str, Any]:
        authorise(caller, "wait", Target.of_route(kind, name, namespace))
        return await platform.wait_condition(kind, name, namespace, condition, timeout)

    _rollout_routes(api)
    app.include_router(api)


def _rollout_routes(api: APIRouter) -> None:
    """RolloutPlans (docs/rollouts.md): one workflow per plan, created once, then read and controlled by name."""

    def authorise_plan(caller: Principal, action: str, plan: rp.RolloutPlan) -> None:
        reason = rollout_refusal(caller, action, plan.name, plan.namespaces())
        if reason is not None:
            raise Forbidden(reason)

    async def read_plan(platform: Platform, caller: Principal, name: str, action: str) -> dict[str, Any]:
        """The plan, when the caller may `action` it: RBAC first (403 whatever the name), then whether the plan
        exists (404), then the plan's namespaces (403 naming one), in the apiserver's order (docs/rollouts.md)."""
        reason = rollout_verb_refusal(caller.subject(), action, name)
        if reason is not None:
            raise Forbidden(reason)
        found = await platform.rollout(name)
        authorise_plan(caller, action, rp.plan_of(found))
        return found

    @api.post(
        "/rollouts",
        responses={400: {"model": Refusal}, 404: {"model": Refusal}, 409: {"model": Refusal}, 422: {"model": Refusal}},
        openapi_extra={"requestBody": {"required": True, "content": APPLY_BODY}},
    )
    async def create_rollout(request: Request, platform: PlatformDep, caller: Caller, preview: bool = False) -> Any:
        """Create a RolloutPlan, or with `preview` list the requests it would touch, in order, and those the
        target version's schema refuses, touching nothing."""
        try:
            documents = await run_in_threadpool(load_documents, decode_body(await request.body()))
        except MalformedInput as exc:
            return _refuse(400, str(exc))
        if len(documents) != 1:
            return _refuse(400, f"a rollout is one RolloutPlan document, not {len(documents)}")
        document = documents[0]
        try:
            plan = rp.parse_plan(document)
            authorise_plan(caller, "create", plan)
            if preview:
                plan, order = await platform.preview_rollout(document)
                applied = None
            else:
                created, order = await platform.create_rollout(document)
                applied = created.model_dump()
        except InvalidDocument as exc:
            errors = [FieldProblem(field=e.field, reason=e.reason) for e in exc.errors]
            name = (document.get("metadata") or {}).get("name") if isinstance(document.get("metadata"), dict) else None
            return _refuse(422, f'RolloutPlan "{name}" is invalid: {exc}', errors=errors)
        except DocumentTooLarge as exc:
            return _refuse(413, str(exc))
        window = window_state(plan.windows_of(), datetime.now(timezone.utc))
        return {
            "applied": applied,
            "preview": {**order.model_dump(), "size": order.size, "window": window.describe()},
        }

    @api.get("/rollouts/{name}", responses={404: {"model": Refusal}})
    async def get_rollout(name: Name, platform: PlatformDep, caller: Caller) -> dict[str, Any]:
        """The plan and its status: the phase, each group's counts, failures with the failing pipeline's log tail,
        the refused requests, the window and an ETA."""
        return await read_plan(platform, caller, name, "get")

    @api.post("/rollouts/{name}/{control}", responses={404: {"model": Refusal}, 409: {"model": Refusal}})
    async def control_rollout(name: Name, control: Control, platform: PlatformDep, caller: Caller) -> dict[str, Any]:
        """pause, resume, abort, rollback, or delete (once nothing runs); 409 naming the phase when not now."""
        await read_plan(platform, caller, name, control)
        return {"name": name, "phase": await platform.control_rollout(name, control)}


def _visible_tree(node: dict[str, Any], caller: Principal) -> dict[str, Any]:
    """A compound resource may request components in other namespaces; a team sees those in its own only."""
    children = [_visible_tree(child, caller) for child in node["children"] if caller.sees(child.get("namespace"))]
    return {**node, "children": children}


def main() -> None:
    settings = Settings.from_env()
    try:
        app = create_app(settings)
        asyncio.run(Listeners(settings, app).serve())
    except (AuthConfigError, ListenerConfigError) as exc:
        raise SystemExit(f"ktx api: refusing to start: {exc}") from None


if __name__ == "__main__":
    main()
