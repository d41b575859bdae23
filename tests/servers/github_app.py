"""A stand-in for GitHub's installation access-token endpoint, as GitHub documents it ("Authenticating as a GitHub
App installation"): `POST /app/installations/{id}/access_tokens` with an RS256 JWT signed by the App's key answers
201 with a token and its `expires_at`. The JWT is verified as GitHub does: signature with the App's public key, `iss`
the App's ID, `iat` not in the future, `exp` in the future and at most 10 minutes ahead.

The tokens it issued, while unexpired, are what `accepts` lets through to a git server (`GitHttpServer(authorize=)`).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers.git_servers import BackgroundHttpServer

CLOCK_SKEW_S = 60  # GitHub allows for clocks a little out


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, pkcs8: bool) -> bytes:
    """GitHub hands out PKCS#1 (`BEGIN RSA PRIVATE KEY`); keys converted with openssl are often PKCS#8."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GitHubTokenServer(BackgroundHttpServer):
    def __init__(self, app_id: str, installation_id: str, public_key: rsa.RSAPublicKey, token_lifetime_s: float = 3600):
        self.app_id = app_id
        self.installation_id = installation_id
        self.public_key = public_key
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, float] = {}  # every token issued, and when it expires
        self.exchanges = 0
        self.refusals: list[str] = []  # why each refused exchange was refused
        # What the App's installation answers once revoked: 404 (uninstalled) or 401 (the App or its key gone).
        self.revoked: int | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def accepts(self, authorization: str) -> bool:
        """A git request carrying `x-access-token:<a token issued here and not yet expired>`."""
        if not authorization.startswith("Basic "):
            return False
        username, _, token = base64.b64decode(authorization[6:]).decode().partition(":")
        return username == "x-access-token" and self.tokens.get(token, 0.0) > time.time()

    def expire_tokens(self) -> None:
        """Every token issued so far stops working now, ahead of the `expires_at` its holder was told."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def _verify(self, authorization: str) -> str | None:
        """Why the JWT is refused, or None."""
        if not authorization.startswith("Bearer "):
            return "no bearer JWT"
        parts = authorization[7:].split(".")
        if len(parts) != 3:
            return "not a JWT"
        header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
        if header.get("alg") != "RS256":
            return f"alg {header.get('alg')}"
        try:
            self.public_key.verify(
                _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "bad signature"
        now = time.time()
        if str(claims.get("iss")) != self.app_id:
            return f"iss {claims.get('iss')}"
        if not isinstance(claims.get("iat"), int) or claims["iat"] > now + CLOCK_SKEW_S:
            return "iat in the future"
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            return "expired"
        if claims["exp"] > now + 600 or claims["exp"] - claims["iat"] > 600:
            return "exp too far in the future"
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                if self.path != f"/app/installations/{outer.installation_id}/access_tokens":
                    return self._answer(404, {"message": "Not Found"})
                refusal = outer._verify(self.headers.get("Authorization") or "")
                if refusal is not None:
                    outer.refusals.append(refusal)
                    return self._answer(401, {"message": "A JSON web token could not be decoded"})
                if outer.revoked is not None:
                    outer.refusals.append("revoked")
                    message = "Not Found" if outer.revoked == 404 else "Bad credentials"
                    return self._answer(outer.revoked, {"message": message})
                outer.exchanges += 1
                token = "ghs_" + secrets.token_urlsafe(27)
                expires = time.time() + outer.token_lifetime_s
                outer.tokens[token] = expires
                stamp = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._answer(201, {"token": token, "expires_at": stamp, "repository_selection": "all"})

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
