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
    ADMIN,
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
    token_digest,
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


bearer = HTTPBearer(
    auto_error=False,
    description="A token from `ktx token create`, listed by its SHA-256 in the "
    "API's KTX_API_TOKENS_FILE; the CLI sends KTX_TOKEN.",
)


# The scope key the HTTPS listener sets on every request it serves (api/listeners.py): there no request goes without a
# token, since pipeline containers reaching it may look like local connections.
HTTPS_LISTENER = "ktx.https_listener"


def load_admin_entry(settings: Settings) -> TokenEntry | None:
    """The embedded stack's admin token (a platform token, the file holds it in clear for `ktx kubeconfig`)."""
    path = settings.api_admin_token_file
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise AuthConfigError(f"KTX_API_ADMIN_TOKEN_FILE {path}: {exc.strerror}") from None
    if len(token) < 32:
        raise AuthConfigError(f"KTX_API_ADMIN_TOKEN_FILE {path}: holds no token of at least 32 characters")
    return TokenEntry(name=ADMIN, role="platform", sha256=token_digest(token))


def known_principal(token: str, request: Request) -> Principal | None:
    """The token entry (tokens file or the admin token) a token belongs to."""
    tokens: TokenSource | None = request.app.state.tokens
    entries = tokens.entries() if tokens is not None else []
    admin: TokenEntry | None = request.app.state.admin_entry
    return identify(token, [*entries, admin] if admin is not None else entries)


def loopback_freebie(request: Request) -> bool:
    """Whether a request may go without a token: the plain-HTTP port of an API serving this machine alone."""
    return request.app.state.tokens is None and not request.scope.get(HTTPS_LISTENER)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if loopback_freebie(request):
        return LOOPBACK
    if credentials is None:
        raise Unauthenticated("missing bearer token", 'Bearer realm="ktx"')
    # Pipeline tokens are for the Kubernetes routes only (api/kube/authz.py): here they are unknown.
    principal = known_principal(credentials.credentials, request)
    if principal is None:
        raise Unauthenticated("unknown token", 'Bearer realm="ktx", error="invalid_token"')
    return principal


Caller = Annotated[Principal, Depends(authenticate)]


def authorise(caller: Principal, action: Action, target: Target) -> None:
    reason = refusal(caller, action, target)
    if reason is not None:
        raise Forbidden(reason)
