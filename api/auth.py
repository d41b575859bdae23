"""Bearer-token authentication of API requests and the refusals of `domain.access`, as FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

import yaml
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from domain.access import (LOOPBACK, Action, Principal, Target, TokenEntry, TokenFile, identify, is_loopback, problems,
                           refusal)
from worker.settings import Settings


class AuthConfigError(RuntimeError):
    pass


class Unauthenticated(Exception):
    def __init__(self, reason: str, challenge: str):
        super().__init__(reason)
        self.reason = reason
        self.challenge = challenge


class Forbidden(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_token_entries(settings: Settings) -> list[TokenEntry] | None:
    """The tokens requests are checked against; None only for the embedded stack, which nothing off this machine reaches."""
    path = settings.api_tokens_file
    if path is None:
        if is_loopback(settings.api_host):
            return None
        raise AuthConfigError(f"the API would listen on {settings.api_host}, beyond this machine, without authentication: "
                              "set KTX_API_TOKENS_FILE to a tokens file (entries from `ktx token create`), or bind "
                              "KTX_API_HOST=127.0.0.1")
    try:
        return TokenFile.model_validate(yaml.safe_load(path.read_text())).root
    except (OSError, yaml.YAMLError) as exc:
        raise AuthConfigError(f"KTX_API_TOKENS_FILE {path}: {exc}") from None
    except ValidationError as exc:
        raise AuthConfigError(f"KTX_API_TOKENS_FILE {path}: {problems(exc)}") from None


bearer = HTTPBearer(auto_error=False, description="A token from `ktx token create`, listed by its SHA-256 in the "
                                                  "API's KTX_API_TOKENS_FILE; the CLI sends KTX_TOKEN.")


async def authenticate(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    entries: list[TokenEntry] | None = request.app.state.tokens
    if entries is None:
        return LOOPBACK
    if credentials is None:
        raise Unauthenticated("missing bearer token", 'Bearer realm="ktx"')
    principal = identify(credentials.credentials, entries)
    if principal is None:
        raise Unauthenticated("unknown token", 'Bearer realm="ktx", error="invalid_token"')
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def authorise(caller: Principal, action: Action, target: Target) -> None:
    reason = refusal(caller, action, target)
    if reason is not None:
        raise Forbidden(reason)
