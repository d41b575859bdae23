"""cli/kube_credentials.py with the real openssl: the embedded stack's CA, HTTPS certificate and admin token are made
once and kept, the certificate is issued again for new names, and the kubeconfig carries what kubectl needs."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from cli import kube_credentials


def names(cert: Path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_made_once_private_and_kept(tmp_path: Path) -> None:
    first = kube_credentials.ensure(tmp_path, [])
    for secret in (first.key, first.admin_token, tmp_path / "kube" / "ca.key"):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    assert (tmp_path / "kube").stat().st_mode & 0o777 == 0o700
    listed = names(first.cert)
    for name in ("IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "DNS:localhost", "DNS:host.containers.internal"):
        assert name in listed
    made = {p: p.read_bytes() for p in (first.ca, first.cert, first.key, first.admin_token)}
    again = kube_credentials.ensure(tmp_path, [])
    assert {p: p.read_bytes() for p in (again.ca, again.cert, again.key, again.admin_token)} == made
    assert len(kube_credentials.admin_token(tmp_path)) >= 32
    # The certificate chains to the CA, for TLS servers (the purpose a TLS client checks).
    verified = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(first.ca), str(first.cert)], capture_output=True
    )
    assert verified.returncode == 0, verified.stderr


def test_new_names_issue_a_new_certificate_from_the_same_ca(tmp_path: Path) -> None:
    first = kube_credentials.ensure(tmp_path, [])
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    second = kube_credentials.ensure(tmp_path, ["10.88.0.1", "ktx.example.com"])
    assert second.ca.read_bytes() == ca and second.cert.read_bytes() != cert
    assert "IP Address:10.88.0.1" in names(second.cert) and "DNS:ktx.example.com" in names(second.cert)


@pytest.mark.parametrize("name", ["bad name", "x\nsubjectAltName=DNS:evil", "-option", "a" * 300])
def test_a_name_that_is_neither_an_address_nor_a_dns_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(kube_credentials.CredentialsError, match="KTX_KUBE_API_CERT_SANS"):
        kube_credentials.ensure(tmp_path, [name])


def test_kubeconfig_names_the_server_ca_token_and_namespace() -> None:
    config = kube_credentials.kubeconfig("https://127.0.0.1:6443", b"PEM", "t0ken", "ktx", "team-a")
    cluster = config["clusters"][0]["cluster"]
    assert cluster == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": base64.b64encode(b"PEM").decode(),
    }
    assert config["users"][0]["user"] == {"token": "t0ken"}
    assert config["contexts"][0]["context"] == {"cluster": "ktx", "user": "ktx", "namespace": "team-a"}
    assert config["current-context"] == "ktx"
