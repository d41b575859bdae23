"""GitHub App credentials for a Git state store: installation access tokens, exchanged for a signed JWT and cached.

As Kratix (`util/git/github_app.go`): the Secret holds `appID`, `installationID` and an RSA `privateKey` (PKCS#1 or
PKCS#8 PEM); a JWT signed with the key is exchanged at `POST {api}/app/installations/{id}/access_tokens` for a token
git sends as the password of `x-access-token`. The token is kept until shortly before GitHub says it expires, and
dropped at once when git is refused with it (the App was revoked, or the token expired early).

Neither the key, the JWT nor the token leaves this module except as git's credentials: errors carry GitHub's status
and message only, and nothing here logs.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from activities.stores.git_writer import CredentialsError

GITHUB_API_URL = "https://api.github.com"
# GitHub refuses a JWT whose `exp` is more than 10 minutes ahead: `iat` a minute back (GitHub's advice, for clock
# drift) and `exp` nine minutes on make Kratix's 10-minute JWT that a clock up to a minute fast cannot push over.
JWT_BACKDATE_S = 60
JWT_LIFETIME_S = 600
# A token is renewed with this much of its life left (GitHub gives an hour): a fetch and push of a large batch are
# several requests over minutes, and each must carry a live token.
REFRESH_MARGIN_S = 300.0
EXCHANGE_TIMEOUT_S = 10.0  # Kratix's client timeout for the exchange
MAX_PRIVATE_KEY_BYTES = 16 * 1024  # a 4096-bit RSA key is about 3.3 KB of PEM
MAX_RESPONSE_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 4096
_ID = re.compile(r"[0-9]{1,20}")  # Kratix parses both as integers; the installation ID goes into the URL path
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable, no whitespace: it goes into an HTTP header


class GitHubAppError(CredentialsError):
    pass


@dataclass(frozen=True)
class GitHubApp:
    app_id: str
    installation_id: str
    private_key: rsa.RSAPrivateKey
    api_url: str = GITHUB_API_URL

    @classmethod
    def from_secret(cls, data: dict[str, bytes], secret: str) -> "GitHubApp":
        """The App from its Secret's keys, checked; `apiURL` (optional) is a GitHub Enterprise Server's API, as
        Flux's `githubAppBaseURL` and Argo CD's `githubAppEnterpriseBaseUrl` are."""
        app_id = data.get("appID", b"").decode(errors="replace").strip()
        installation_id = data.get("installationID", b"").decode(errors="replace").strip()
        for key, value in (("appID", app_id), ("installationID", installation_id)):
            if not _ID.fullmatch(value):
                raise GitHubAppError(f"{key} in secret {secret} must be a number of at most 20 digits")
        return cls(app_id, installation_id, _private_key(data.get("privateKey", b""), secret), _api_url(data, secret))

    def jwt(self, now: float) -> str:
        """An RS256 JWT naming the App (`iss`), as GitHub's "Generating a JSON Web Token" describes."""
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {
            "iat": int(now) - JWT_BACKDATE_S,
            "exp": int(now) - JWT_BACKDATE_S + JWT_LIFETIME_S,
            "iss": self.app_id,
        }
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = self.private_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _private_key(pem: bytes, secret: str) -> rsa.RSAPrivateKey:
    if not pem.strip() or len(pem) > MAX_PRIVATE_KEY_BYTES:
        raise GitHubAppError(
            f"privateKey in secret {secret} must be a PEM RSA key of at most {MAX_PRIVATE_KEY_BYTES} bytes"
        )
    try:
        key = serialization.load_pem_private_key(pem.strip() + b"\n", password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography's message says what is wrong with the PEM, never what is in it; ours says less still.
        raise GitHubAppError(
            f"privateKey in secret {secret} is not an unencrypted PEM private key (PKCS#1 or PKCS#8)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GitHubAppError(f"privateKey in secret {secret} must be an RSA key (GitHub Apps sign with RS256)")
    return key


def _api_url(data: dict[str, bytes], secret: str) -> str:
    url = data.get("apiURL", b"").decode(errors="replace").strip().rstrip("/")
    if not url:
        return GITHUB_API_URL
    try:
        parsed = httpx.URL(url) if re.fullmatch(r"https?://[\x21-\x7e]{1,2000}", url) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or not parsed.host or parsed.userinfo or parsed.query or parsed.fragment:
        raise GitHubAppError(
            f"apiURL in secret {secret} must be an http(s) URL without credentials, query or fragment "
            "(a GitHub Enterprise Server's is https://HOST/api/v3)"
        )
    return url


class InstallationTokens:
    """One store's installation token: exchanged when there is none or it is about to expire, dropped when refused."""

    def __init__(self, app: GitHubApp):
        self.app = app
        self._token = ""
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if not self._token or self._expires_at - time.time() <= REFRESH_MARGIN_S:
                self._token, self._expires_at = self._exchange()
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token, self._expires_at = "", 0.0

    def _exchange(self) -> tuple[str, float]:
        jwt = self.app.jwt(time.time())
        url = f"{self.app.api_url}/app/installations/{self.app.installation_id}/access_tokens"
        headers = {
            "Authorization": f"Bearer {jwt}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "ktx",
        }
        try:
            with httpx.Client(timeout=EXCHANGE_TIMEOUT_S, follow_redirects=False) as client:
                with client.stream("POST", url, headers=headers) as response:
                    body = _bounded_body(response)
                    status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise GitHubAppError(f"failed to get GitHub installation token: {type(exc).__name__}: {exc}") from None
        document = _json(body)
        if status != 201:
            message = str(document.get("message", "")) if isinstance(document, dict) else ""
            message = re.sub(r"[^\x20-\x7e]", " ", message.replace(jwt, "<jwt>"))[:300]
            raise GitHubAppError(
                f"failed to get GitHub installation token: GitHub API error: status={status}, message={message}"
            )
        token = document.get("token") if isinstance(document, dict) else None
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
            raise GitHubAppError("failed to get GitHub installation token: the answer holds no usable token")
        return token, _expiry(document.get("expires_at"), time.time())


def _bounded_body(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise GitHubAppError(f"failed to get GitHub installation token: answer over {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _expiry(expires_at: object, now: float) -> float:
    """GitHub's `expires_at`; without a readable one the token serves this one operation and is exchanged again."""
    if isinstance(expires_at, str):
        try:
            return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now
