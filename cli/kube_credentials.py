"""The embedded stack's Kubernetes API credentials: a CA and the HTTPS listener's certificate, the admin token, and
the kubeconfig `ktx kubeconfig` prints from them.

Made once under KTX_HOME/kube with the `openssl` command line (scripts/install.sh installs it) and reused by every
`ktx up`; the server certificate is issued again when the names it must carry change or it nears its end. Keys and
the token are written 0600.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.names import NAME_PATTERN, SUBDOMAIN_MAX

# The names a client may dial the listener by: this machine, and how a container reaches the host it runs on.
DEFAULT_SANS = ("127.0.0.1", "::1", "localhost", "host.containers.internal")
CA_DAYS = 3650
SERVER_DAYS = 365
# A certificate this close to its end is issued again at `ktx up`, so a running stack never sees it expire.
RENEW_BEFORE_S = 30 * 24 * 3600
ADMIN_TOKEN_BYTES = 32


class CredentialsError(RuntimeError):
    pass


@dataclass(frozen=True)
class KubeCredentials:
    ca: Path
    cert: Path
    key: Path
    admin_token: Path


def _openssl(*args: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise CredentialsError("error: openssl is not installed (scripts/install.sh installs it)") from None
    except subprocess.CalledProcessError as exc:
        raise CredentialsError(f"error: openssl {args[0]} failed: {exc.stderr.strip()[-500:]}") from None


def _san(name: str) -> str:
    try:
        return f"IP:{ipaddress.ip_address(name)}"
    except ValueError:
        pass
    # Only a DNS name reaches openssl's extension file: nothing else can add a line to it.
    if len(name) > SUBDOMAIN_MAX or not NAME_PATTERN.match(name):
        raise CredentialsError(f"error: KTX_KUBE_API_CERT_SANS: {name!r} is neither an IP address nor a DNS name")
    return f"DNS:{name}"


def _private(path: Path) -> None:
    path.chmod(0o600)


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    _private(path)


def _valid(cert: Path) -> bool:
    if not cert.exists():
        return False
    return (
        subprocess.run(
            ["openssl", "x509", "-checkend", str(RENEW_BEFORE_S), "-noout", "-in", str(cert)], capture_output=True
        ).returncode
        == 0
    )


def _ensure_ca(directory: Path) -> tuple[Path, Path]:
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    if _valid(ca) and ca_key.exists():
        return ca, ca_key
    _new_key(ca_key)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        ca_key,
        "-out",
        ca,
        "-days",
        CA_DAYS,
        "-subj",
        "/CN=ktx-kube-api-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return ca, ca_key


def _ensure_server(directory: Path, ca: Path, ca_key: Path, sans: list[str]) -> tuple[Path, Path]:
    cert, key, names = directory / "server.crt", directory / "server.key", directory / "server.sans"
    wanted = ",".join(_san(name) for name in sans)
    recorded = names.read_text() if names.exists() else ""
    # Issued by this CA (a new CA means a new certificate), for these names, and not near its end.
    issued_here = (
        cert.exists()
        and subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True).returncode == 0
    )
    if recorded == wanted and issued_here and _valid(cert) and key.exists():
        return cert, key
    _new_key(key)
    with tempfile.TemporaryDirectory() as scratch:
        csr, extensions = Path(scratch, "server.csr"), Path(scratch, "server.ext")
        extensions.write_text(
            f"subjectAltName={wanted}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
        )
        _openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=ktx-kube-api")
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            SERVER_DAYS,
            "-extfile",
            extensions,
        )
    names.write_text(wanted)
    return cert, key


def admin_token(home: Path) -> str:
    """The embedded stack's admin token, for `ktx kubeconfig`."""
    path = home / "kube" / "admin-token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise CredentialsError(f"error: no admin token at {path} (ktx up makes one), or pass --token") from None


def _ensure_admin_token(directory: Path) -> Path:
    path = directory / "admin-token"
    if path.exists() and len(path.read_text().strip()) >= ADMIN_TOKEN_BYTES:
        return path
    # Created 0600 from the start: the token is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(ADMIN_TOKEN_BYTES) + "\n")
    return path


def ensure(home: Path, extra_sans: list[str]) -> KubeCredentials:
    """The stack's CA, server certificate (for DEFAULT_SANS and `extra_sans`) and admin token, made when missing."""
    directory = home / "kube"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    sans = list(dict.fromkeys([*DEFAULT_SANS, *extra_sans]))
    ca, ca_key = _ensure_ca(directory)
    cert, key = _ensure_server(directory, ca, ca_key, sans)
    return KubeCredentials(ca=ca, cert=cert, key=key, admin_token=_ensure_admin_token(directory))


def kubeconfig(server: str, ca_pem: bytes, token: str, context: str, namespace: str) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, as `kubectl config view --raw` shows one."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }
