"""API and worker reach a Temporal frontend that demands mTLS: a TLS proxy in front of the dev server checks both
sides' certificates as a secured Temporal cluster does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.tls_proxy import CertificateAuthority, TlsProxy
from worker.main import ensure_search_attributes
from worker.settings import Settings, connect_client

SERVER_NAME = "temporal-frontend"  # what the frontend's certificate names; not the address dialled


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("pki")
    ca, rogue = CertificateAuthority(directory, "cluster-ca"), CertificateAuthority(directory, "rogue-ca")
    return {
        "ca": ca,
        "server": ca.issue("frontend", f"DNS:{SERVER_NAME}"),
        "worker": ca.issue("ktx-worker", "DNS:ktx-worker"),
        "stranger": rogue.issue("stranger", "DNS:ktx-worker"),
    }


@pytest.fixture
def proxy(temporal_env, pki: dict):
    with TlsProxy(
        temporal_env.client.service_client.config.target_host, pki["server"], client_ca=pki["ca"].cert
    ) as server:
        yield server


def settings(proxy: TlsProxy, pki: dict, client: str | None = "worker", **overrides) -> Settings:
    identity = pki[client] if client else None
    values = {
        "temporal_address": proxy.address,
        "temporal_tls_ca": pki["ca"].cert,
        "temporal_tls_server_name": SERVER_NAME,
        "temporal_tls_cert": identity.cert if identity else None,
        "temporal_tls_key": identity.key if identity else None,
    }
    return Settings(**{**values, **overrides})


async def test_with_its_certificate_the_platform_talks_to_temporal_through_mtls(proxy: TlsProxy, pki: dict) -> None:
    client = await connect_client(settings(proxy, pki))
    await ensure_search_attributes(client)  # what the worker does first: an operator call
    assert await client.count_workflows() is not None
    assert proxy.accepted >= 1 and proxy.refusals == []


@pytest.mark.parametrize(
    "client, why", [(None, "no client certificate"), ("stranger", "a certificate from another CA")]
)
async def test_the_frontend_refuses_a_client_without_a_certificate_it_trusts(
    proxy: TlsProxy, pki: dict, client: str | None, why: str
) -> None:
    with pytest.raises(RuntimeError):
        await connect_client(settings(proxy, pki, client))
    assert proxy.refused() and proxy.accepted == 0, why


async def test_the_client_refuses_a_frontend_whose_certificate_does_not_name_it(proxy: TlsProxy, pki: dict) -> None:
    # Dialling 127.0.0.1 without saying which name to expect: the certificate names only temporal-frontend.
    with pytest.raises(RuntimeError):
        await connect_client(settings(proxy, pki, temporal_tls_server_name=None))
    assert proxy.accepted == 0


async def test_a_plaintext_client_gets_nowhere(proxy: TlsProxy, pki: dict) -> None:
    with pytest.raises(RuntimeError):
        await connect_client(Settings(temporal_address=proxy.address))
    assert proxy.refused() and proxy.accepted == 0


def test_settings_from_the_environment_and_their_mistakes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pki: dict
) -> None:
    from worker.settings import temporal_tls

    assert temporal_tls(Settings()) is False
    for key, value in (
        ("KTX_TEMPORAL_TLS_CA", str(pki["ca"].cert)),
        ("KTX_TEMPORAL_TLS_SERVER_NAME", SERVER_NAME),
        ("KTX_TEMPORAL_TLS_CERT", str(pki["worker"].cert)),
    ):
        monkeypatch.setenv(key, value)
    loaded = Settings.from_env()
    assert (loaded.temporal_tls_ca, loaded.temporal_tls_server_name) == (pki["ca"].cert, SERVER_NAME)
    with pytest.raises(SystemExit, match="KTX_TEMPORAL_TLS_CERT and KTX_TEMPORAL_TLS_KEY go together"):
        temporal_tls(loaded)
    monkeypatch.setenv("KTX_TEMPORAL_TLS_KEY", str(tmp_path / "missing.key"))
    with pytest.raises(SystemExit, match=f"KTX_TEMPORAL_TLS_KEY {tmp_path / 'missing.key'}: No such file"):
        temporal_tls(Settings.from_env())
    monkeypatch.setenv("KTX_TEMPORAL_TLS_KEY", str(pki["worker"].key))
    tls = temporal_tls(Settings.from_env())
    assert tls.domain == SERVER_NAME and tls.client_cert == pki["worker"].cert.read_bytes()
    # Plain TLS against a public CA: only the switch.
    assert temporal_tls(Settings(temporal_tls=True)).server_root_ca_cert is None
