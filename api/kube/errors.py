"""metav1.Status: how a Kubernetes API server answers a failure, so kubectl prints `Error from server (Reason): ...`.

Every refusal of the Kubernetes routes is a `KubeError` carrying its Status document; the app's handler sends it.
The shapes follow apimachinery's `k8s.io/apimachinery/pkg/api/errors` constructors (NewNotFound, NewAlreadyExists,
NewConflict, NewInvalid, NewBadRequest, NewForbidden, NewMethodNotSupported, NewUnsupportedMediaType...).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import FieldError

# What each reason answers as (the HTTP code apimachinery gives it).
CODES = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "NotAcceptable": 406,
    "AlreadyExists": 409,
    "Conflict": 409,
    "Expired": 410,
    "Gone": 410,
    "RequestEntityTooLarge": 413,
    "UnsupportedMediaType": 415,
    "Invalid": 422,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "Timeout": 504,
}
# A Status names at most this many causes: an object with thousands of bad fields must not answer with megabytes.
MAX_CAUSES = 50


class KubeError(Exception):
    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None, code: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details
        self.code = code or CODES[reason]

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            doc["details"] = self.details
        return doc


def qualified(plural: str, group: str) -> str:
    """How apimachinery names a resource in messages: `promises.platform.kratix.io`, `secrets` for the core group."""
    return f"{plural}.{group}" if group else plural


def _details(plural: str, group: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"group": group, "kind": plural} if group else {"kind": plural}
    if name:
        details["name"] = name
    return details


def not_found(plural: str, group: str, name: str) -> KubeError:
    return KubeError("NotFound", f'{qualified(plural, group)} "{name}" not found', _details(plural, group, name))


def already_exists(plural: str, group: str, name: str) -> KubeError:
    return KubeError(
        "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists', _details(plural, group, name)
    )


def conflict(plural: str, group: str, name: str, why: str) -> KubeError:
    return KubeError(
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        _details(plural, group, name),
    )


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> KubeError:
    """apimachinery's NewInvalid: the message lists every cause, `details.causes` names each field."""
    shown = errors[:MAX_CAUSES]
    causes = [{"reason": _cause_type(e.reason), "message": e.reason, "field": e.field} for e in shown]
    listed = ", ".join(f"{e.field}: {e.reason}" for e in shown)
    message = f'{kind}.{group} "{name}" is invalid: ' if group else f'{kind} "{name}" is invalid: '
    message += f"[{listed}]" if len(shown) > 1 else listed
    details = {**_details(kind, group, name), "causes": causes}
    details["kind"] = kind  # NewInvalid names the kind, not the resource
    return KubeError("Invalid", message, details)


# field.ErrorType's text for the reasons domain errors start with (apimachinery's field/errors.go).
_CAUSE_TYPES = {
    "Required value": "FieldValueRequired",
    "Invalid value": "FieldValueInvalid",
    "Unsupported value": "FieldValueNotSupported",
    "Duplicate value": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
    "Too long": "FieldValueTooLong",
    "Too many": "FieldValueTooMany",
    "Not found": "FieldValueNotFound",
}


def _cause_type(reason: str) -> str:
    return next((t for text, t in _CAUSE_TYPES.items() if reason.startswith(text)), "FieldValueInvalid")


def bad_request(message: str) -> KubeError:
    return KubeError("BadRequest", message)


def forbidden(verb: str, plural: str, group: str, name: str | None, why: str, user: str) -> KubeError:
    """apimachinery's NewForbidden with the authorizer's reason, as RBAC refuses: who, what verb, on what."""
    resource = qualified(plural, group) if not name else f'{qualified(plural, group)} "{name}"'
    return KubeError(
        "Forbidden",
        f'{resource} is forbidden: User "{user}" cannot {verb} resource "{plural}" in API group "{group}": {why}',
        _details(plural, group, name),
    )


def method_not_allowed(verb: str, plural: str, group: str) -> KubeError:
    return KubeError(
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {qualified(plural, group)}",
        _details(plural, group, None),
    )


def unsupported_media_type(content_type: str) -> KubeError:
    return KubeError("UnsupportedMediaType", f"the body of the request was in an unknown format - {content_type}")


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed"}
_REASONS |= {408: "Timeout", 409: "Conflict", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType"}
_REASONS |= {422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


def is_kube_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in ("/api", "/apis", "/version", "/openapi"))


def _as_status(response: Any) -> Any:
    """The app's own refusal (a ktx Refusal or `{"detail"}`) as the Status a Kubernetes client reads."""
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        body = {}
    message = body.get("message") or body.get("detail") if isinstance(body, dict) else None
    reason = _REASONS.get(response.status_code, "InternalError")
    converted = JSONResponse(
        status_code=response.status_code,
        content=KubeError(reason, str(message or reason), code=response.status_code).status(),
    )
    for header in ("www-authenticate", "retry-after"):
        if header in response.headers:
            converted.headers[header] = response.headers[header]
    return converted


def install(app: FastAPI) -> None:
    """Status documents for the Kubernetes routes: KubeError's own, and every other refusal the app answers (Temporal
    unavailable, body too large, unknown paths...) reworded as a Status on those paths, so kubectl prints it."""

    @app.exception_handler(KubeError)
    async def kube_error(request: Request, exc: KubeError) -> JSONResponse:
        return JSONResponse(status_code=exc.code, content=exc.status())

    skipped = (KubeError, WebSocketRequestValidationError)  # the latter answers a websocket, not a request
    handlers = {cls: handler for cls, handler in app.exception_handlers.items() if cls not in skipped}
    handlers.setdefault(StarletteHTTPException, http_exception_handler)
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, _on_kube_paths(handler))


def _on_kube_paths(handler: Any) -> Any:
    async def answer(request: Request, exc: Exception) -> Any:
        response = await handler(request, exc)
        return _as_status(response) if is_kube_path(request.url.path) else response

    return answer
