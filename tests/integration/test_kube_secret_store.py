"""The Kubernetes secret provider through the real `kubernetes` client against a stand-in API server (no cluster here):
round trips, change detection, lost races, long names, and the platform (an API process and a worker) sharing Secrets
through it, with a basicAuth Git state store becoming Ready from a Secret that was never on disk."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from activities.kube_client import json_api_client
from activities.stores.kube_secrets import KubeSecretStore, object_name
from activities.stores.secrets import SecretNotFound
from domain.documents import SecretRef
from tests.conftest import ROOT
from tests.integration.test_destinations import KRATIX, destination
from tests.integration.test_state_store_credentials import histories_mention, secret
from tests.kratix_documents import condition, eventually
from tests.servers.git_servers import GitHttpServer, bare_repo, free_port, wait_listening
from tests.servers.kube_secrets import FakeKubeSecrets

BEARER = "kube-service-account-token"
NS = "ktx-system"
PASSWORD = b"hunter2-not-for-logs"
MANAGED = {"app.kubernetes.io/managed-by": "ktx"}


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def api_client(url: str, token: str = BEARER) -> ApiClient:
    return json_api_client(
        Configuration(host=url, api_key={"authorization": token}, api_key_prefix={"authorization": "Bearer"})
    )


@pytest.fixture
def kube() -> Iterator[FakeKubeSecrets]:
    with FakeKubeSecrets(BEARER) as server:
        yield server


@pytest.fixture
def store(kube: FakeKubeSecrets) -> KubeSecretStore:
    return KubeSecretStore(api_client(kube.url), NS)


def requests(kube: FakeKubeSecrets) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in kube.calls]


def test_round_trip_change_detection_and_no_values_shown(
    kube: FakeKubeSecrets, store: KubeSecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # an operator debugging must still not see values
    ref = SecretRef(name="git-creds", namespace="default")
    with pytest.raises(SecretNotFound, match="Secret git-creds not found in namespace default"):
        store.get(ref)
    assert store.version(ref) == "missing"

    assert store.put("default", "git-creds", {"username": b"bot", "password": PASSWORD}) == "created"
    stored = kube.stored(NS, "ktx.default.git-creds")
    assert stored is not None
    assert stored["metadata"]["labels"] == {
        **MANAGED,
        "ktx.io/secret-namespace": "default",
        "ktx.io/secret-name": "git-creds",
    }
    assert stored["metadata"]["annotations"] == {
        "ktx.io/secret-namespace": "default",
        "ktx.io/secret-name": "git-creds",
    }
    assert (stored["type"], stored["data"]) == ("Opaque", {"password": b64(PASSWORD), "username": b64(b"bot")})
    assert store.get(ref) == {"username": b"bot", "password": PASSWORD}
    first = store.version(ref)
    assert first == stored["metadata"]["resourceVersion"]

    writes = len(kube.calls)
    assert store.put("default", "git-creds", {"password": PASSWORD, "username": b"bot"}) == "unchanged"
    assert requests(kube)[writes:] == [("GET", kube.path(NS, "ktx.default.git-creds"))]
    assert store.version(ref) == first

    # Labels someone else added survive a rewrite; ours come back if edited away.
    edited = kube.stored(NS, "ktx.default.git-creds")
    assert edited is not None
    edited["metadata"]["labels"] = {"backup.example.com/include": "true"}
    kube.write(NS, edited)
    assert store.put("default", "git-creds", {"username": b"bot", "password": b"rotated"}) == "configured"
    assert store.version(ref) not in (first, "missing")
    assert store.get(ref)["password"] == b"rotated"
    labels = kube.stored(NS, "ktx.default.git-creds")["metadata"]["labels"]  # type: ignore[index]
    assert labels["backup.example.com/include"] == "true" and labels["ktx.io/secret-name"] == "git-creds"

    # A Secret's type is immutable in Kubernetes: the object is replaced, guarded by its resourceVersion.
    before = kube.stored(NS, "ktx.default.git-creds")["metadata"]["uid"]  # type: ignore[index]
    assert (
        store.put("default", "git-creds", {"username": b"bot", "password": b"rotated"}, "kubernetes.io/basic-auth")
        == "configured"
    )
    replaced = kube.stored(NS, "ktx.default.git-creds")
    assert (
        replaced is not None
        and replaced["type"] == "kubernetes.io/basic-auth"
        and replaced["metadata"]["uid"] != before
    )

    assert store.put("payments", "slack", {"token": PASSWORD}) == "created"
    kube.write(NS, {"metadata": {"name": "someone-elses", "labels": MANAGED}, "data": {"x": b64(b"y")}})
    summaries = store.summaries()
    assert [(s.namespace, s.name, s.type, s.keys) for s in summaries] == [
        ("default", "git-creds", "kubernetes.io/basic-auth", ["password", "username"]),
        ("payments", "slack", "Opaque", ["token"]),
    ]
    assert PASSWORD.decode() not in repr(summaries) and b64(PASSWORD) not in repr(summaries)

    assert store.delete("default", "git-creds") is True
    assert store.delete("default", "git-creds") is False
    with pytest.raises(SecretNotFound):
        store.get(ref)
    assert store.version(ref) == "missing"
    assert PASSWORD.decode() not in caplog.text and b64(PASSWORD) not in caplog.text


def test_a_create_race_is_settled_by_reading_again(kube: FakeKubeSecrets, store: KubeSecretStore) -> None:
    name = object_name("default", "race")
    # Another writer (kubectl, another API replica) creates the Secret between our read and our create.
    kube.before_next(
        "POST",
        kube.path(NS),
        lambda: kube.write(NS, {"metadata": {"name": name}, "data": {"password": b64(b"theirs")}}),
    )
    assert store.put("default", "race", {"password": b"ours"}) == "configured"
    assert requests(kube) == [
        ("GET", kube.path(NS, name)),
        ("POST", kube.path(NS)),
        ("GET", kube.path(NS, name)),
        ("PUT", kube.path(NS, name)),
    ]
    stored = kube.stored(NS, name)
    assert stored is not None and stored["data"] == {"password": b64(b"ours")}
    assert stored["metadata"]["labels"]["ktx.io/secret-name"] == "race"

    # Two API replicas applying the same Secret at once: the one that loses finds it already as wanted.
    twin = object_name("default", "twin")
    keys = {"ktx.io/secret-namespace": "default", "ktx.io/secret-name": "twin"}
    kube.before_next(
        "POST",
        kube.path(NS),
        lambda: kube.write(
            NS,
            {"metadata": {"name": twin, "labels": {**MANAGED, **keys}, "annotations": keys}, "data": {"k": b64(b"v")}},
        ),
    )
    assert store.put("default", "twin", {"k": b"v"}) == "unchanged"
    assert requests(kube)[-3:] == [("GET", kube.path(NS, twin)), ("POST", kube.path(NS)), ("GET", kube.path(NS, twin))]


def test_a_stale_replace_is_retried_on_a_fresh_read(kube: FakeKubeSecrets, store: KubeSecretStore) -> None:
    assert store.put("default", "contended", {"password": b"one"}) == "created"
    name = object_name("default", "contended")

    rotations = itertools.count()

    def someone_else_rotates() -> None:
        current = kube.stored(NS, name)
        assert current is not None
        current["data"] = {"password": b64(f"theirs-{next(rotations)}".encode())}
        kube.write(NS, current)

    kube.calls.clear()
    kube.before_next("PUT", kube.path(NS, name), someone_else_rotates)
    assert store.put("default", "contended", {"password": b"two"}) == "configured"
    assert requests(kube) == [("GET", kube.path(NS, name)), ("PUT", kube.path(NS, name))] * 2
    assert store.get(SecretRef(name="contended"))["password"] == b"two"

    # Retries are bounded: a writer that always gets in first is reported, not fought forever.
    for _ in range(5):
        kube.before_next("PUT", kube.path(NS, name), someone_else_rotates)
    with pytest.raises(ApiException) as refused:
        store.put("default", "contended", {"password": b"three"})
    assert refused.value.status == 409 and json.loads(refused.value.body)["reason"] == "Conflict"


def test_names_kubernetes_would_refuse_are_shortened_deterministically(
    kube: FakeKubeSecrets, store: KubeSecretStore
) -> None:
    long_name = ".".join(["segment-" + str(i).zfill(3) for i in range(22)])[:253].rstrip(".-")
    other = long_name[:-1] + ("x" if long_name[-1] != "x" else "y")
    assert len(long_name) > 200 and len(object_name("team-platform", long_name)) <= 253
    assert object_name("team-platform", long_name) == object_name("team-platform", long_name)
    assert object_name("team-platform", long_name) != object_name("team-platform", other)
    # Dashes could not tell these apart; dots can, since a namespace has none.
    assert object_name("team-a", "x") != object_name("team", "a-x")

    # The stand-in refuses invalid names and label values (422), so these writes prove both are valid.
    assert store.put("team-platform", long_name, {"k": b"1"}) == "created"
    assert store.put("team-platform", other, {"k": b"2"}) == "created"
    assert store.get(SecretRef(name=long_name, namespace="team-platform")) == {"k": b"1"}
    assert store.get(SecretRef(name=other, namespace="team-platform")) == {"k": b"2"}
    stored = kube.stored(NS, object_name("team-platform", long_name))
    assert stored is not None
    assert len(stored["metadata"]["labels"]["ktx.io/secret-name"]) <= 63
    assert stored["metadata"]["annotations"]["ktx.io/secret-name"] == long_name
    assert {(s.namespace, s.name) for s in store.summaries()} == {
        ("team-platform", long_name),
        ("team-platform", other),
    }
    assert store.delete("team-platform", long_name) and store.delete("team-platform", other)


def test_the_api_server_refuses_without_the_token(kube: FakeKubeSecrets) -> None:
    with pytest.raises(ApiException) as refused:
        KubeSecretStore(api_client(kube.url, token="wrong"), NS).get(SecretRef(name="anything"))
    assert refused.value.status == 401 and json.loads(refused.value.body)["reason"] == "Unauthorized"


async def test_api_and_worker_share_secrets_through_kubernetes(
    platform_factory, temporal_env, kube: FakeKubeSecrets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp-kube-shared-token-5678"
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    # Outside a cluster, as `kubectl` does: KUBECONFIG.
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    platform = await platform_factory(settings={"secret_provider": "kubernetes", "secrets_namespace": NS})

    port = free_port()
    env = {
        **os.environ,
        "KTX_HOME": str(tmp_path / "api-home"),
        "KTX_API_PORT": str(port),
        "KTX_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "KTX_TEMPORAL_NAMESPACE": platform.client.namespace,
        "KTX_TASK_QUEUE": platform.task_queue,
        "KTX_SECRET_PROVIDER": "kubernetes",
        "KTX_SECRETS_NAMESPACE": NS,
        "KUBECONFIG": str(kubeconfig),
        "KTX_API_URL": f"http://127.0.0.1:{port}",
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    async def ktx(*args: str) -> str:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    base = tmp_path / "srv"
    base.mkdir()
    bare_repo(base, "fleet.git")
    try:
        await asyncio.to_thread(wait_listening, port, api)
        with GitHttpServer(base, "platform-bot", token) as git:
            await platform.apply(
                {
                    "apiVersion": KRATIX,
                    "kind": "GitStateStore",
                    "metadata": {"name": "private"},
                    "spec": {
                        "url": git.url("fleet.git"),
                        "branch": "main",
                        "authMethod": "basicAuth",
                        "secretRef": {"name": "git-creds", "namespace": "default"},
                    },
                }
            )
            await platform.apply(destination("dev", store="private"))
            await eventually(
                lambda: platform.get("destination", "dev"),
                lambda d: "Secret git-creds not found" in condition(d, "Ready").get("message", ""),
            )

            # Written by the API process, read by the worker: only the Kubernetes API holds the value.
            created = await ktx(
                "create",
                "secret",
                "generic",
                "git-creds",
                "--from-literal=username=platform-bot",
                f"--from-literal=password={token}",
            )
            assert created.strip() == "secret/git-creds created"
            stored = kube.stored(NS, "ktx.default.git-creds")
            assert stored is not None and stored["data"]["password"] == b64(token.encode())
            await eventually(
                lambda: platform.get("destination", "dev"), lambda d: condition(d, "Ready").get("status") == "True"
            )
            assert (await platform.get("gitstatestore", "private"))["status"]["status"] == "Ready"
            assert git.authorized_requests > 0

            shown = json.loads(await ktx("get", "secret", "git-creds", "-o", "json"))
            assert shown["keys"] == ["password", "username"] and token not in json.dumps(shown)
            assert (
                await platform.apply(secret("git-creds", username="platform-bot", password=token))
            ).action == "unchanged"
            assert (await ktx("delete", "secret", "git-creds")).strip() == "secret/git-creds deleted"
            assert kube.stored(NS, "ktx.default.git-creds") is None
    finally:
        api.terminate()
        _, errors = api.communicate(timeout=30)
    assert token.encode() not in errors
    forms = (token.encode(), b64(token.encode()).encode())  # the file provider would have written base64
    assert [p for p in tmp_path.rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)] == []
    assert await histories_mention(platform.client, token) == []
