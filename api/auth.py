"""Bearer-token authentication of API requests and the refusals of `domain.access`, as FastAPI dependencies."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from domain.access import (
    LOOPBACK,
    Action,
    Principal,
    Target,
    TokenEntry,
    TokenFile,
    identify,
    is_loopback,
    problems,
    refusal,
)
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


def _read_token_file(path: Path) -> list[TokenEntry]:
    try:
        return TokenFile.model_validate(yaml.safe_load(path.read_text())).root
    except (OSError, yaml.YAMLError) as exc:
        raise AuthConfigError(f"KTX_API_TOKENS_FILE {path}: {exc}") from None
    except ValidationError as exc:
        raise AuthConfigError(f"KTX_API_TOKENS_FILE {path}: {problems(exc)}") from None


class TokenSource:
    """The tokens file, read again when it changes, so tokens are added and revoked without a restart.

    A Kubernetes Secret volume changes by swapping a symlink, so the file's identity (inode, size, mtime) is compared,
    at most once per `recheck_s`. A changed file that does not parse keeps the previous tokens (and logs why): a
    half-written rotation must not lock every caller out, nor let anyone in."""

    def __init__(self, path: Path, recheck_s: float = 1.0):
        self.path = path
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._identity = self._stat()
        self._entries = _read_token_file(path)  # at start a broken file is fatal: the API refuses to start
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_ino, found.st_size, found.st_mtime_ns

    def entries(self) -> list[TokenEntry]:
        if time.monotonic() - self._checked >= self.recheck_s:
            with self._lock:
                self._checked = time.monotonic()
                identity = self._stat()
                if identity != self._identity:
                    self._identity = identity
                    try:
                        self._entries = _read_token_file(self.path)
                        logging.info("KTX_API_TOKENS_FILE %s changed: %d tokens", self.path, len(self._entries))
                    except AuthConfigError as exc:
                        logging.error("%s; keeping the %d tokens read before", exc, len(self._entries))
        return self._entries


def load_token_source(settings: Settings) -> TokenSource | None:
    """What requests are checked against; None only for the embedded stack, which nothing off this machine reaches."""
    if settings.api_tokens_file is None:
        if is_loopback(settings.api_host):
            return None
        raise AuthConfigError(
            f"the API would listen on {settings.api_host}, beyond this machine, without authentication: "
            "set KTX_API_TOKENS_FILE to a tokens file (entries from `ktx token create`), or bind "
            "KTX_API_HOST=127.0.0.1"
        )
    return TokenSource(settings.api_tokens_file)


def token_namespaces(tokens: TokenSource | None) -> list[str]:
    """Every namespace a team token names: namespaces exist for Kubernetes clients (`kubectl get ns`) before anything
    is created in them, as a cluster's do once an administrator has made them for a team."""
    entries = tokens.entries() if tokens is not None else []
    return sorted({namespace for entry in entries for namespace in entry.namespaces})


bearer = HTTPBearer(
    auto_error=False,
    description="A token from `ktx token create`, listed by its SHA-256 in the "
    "API's KTX_API_TOKENS_FILE; the CLI sends KTX_TOKEN.",
)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    tokens: TokenSource | None = request.app.state.tokens
    if tokens is None:
        return LOOPBACK
    if credentials is None:
        raise Unauthenticated("missing bearer token", 'Bearer realm="ktx"')
    principal = identify(credentials.credentials, tokens.entries())
    if principal is None:
        raise Unauthenticated("unknown token", 'Bearer realm="ktx", error="invalid_token"')
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def authorise(caller: Principal, action: Action, target: Target) -> None:
    reason = refusal(caller, action, target)
    if reason is not None:
        raise Forbidden(reason)
