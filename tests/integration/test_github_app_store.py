"""GitHub App state stores against a stand-in of GitHub's token endpoint and a git smart-HTTP server that takes only
the tokens it issued: the JWT GitHub would accept, a token cached and renewed before it expires, a token refused
early replaced, a revoked App as the store's reason, and the key and tokens nowhere but in git's requests."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from activities.artifacts.store import ArtifactStore
from activities.stores.secrets import SecretStore
from activities.stores.state_stores import CheckStateStoreInput, StateStoreActivities, StoreTarget, WriteStateStoreInput
from activities.stores.writes import GroupWrite
from domain.documents import GitStateStoreSpec, SecretRef
from domain.layout import Slot
from tests.conftest import read_remote, remote_files
from tests.integration.test_destinations import KRATIX, destination, ready
from tests.integration.test_state_store_credentials import histories_mention, secret
from tests.kratix_documents import condition, eventually
from tests.servers.git_servers import GitHttpServer, bare_repo
from tests.servers.github_app import GitHubTokenServer, new_private_key, pem

APP_ID, INSTALLATION_ID = "123456", "98765432"


@contextlib.contextmanager
def github(tmp_path: Path, pkcs8: bool = False) -> Iterator[tuple[GitHubTokenServer, GitHttpServer, Path, dict]]:
    """The token endpoint, a git server trusting it, a bare repository, and the App's Secret data."""
    key = new_private_key()
    base = tmp_path / "srv"
    base.mkdir()
    remote = bare_repo(base, "fleet.git")
    with GitHubTokenServer(APP_ID, INSTALLATION_ID, key.public_key()) as api:
        with GitHttpServer(base, "x-access-token", authorize=api.accepts) as git:
            data = {
                "appID": APP_ID.encode(),
                "installationID": INSTALLATION_ID.encode(),
                "privateKey": pem(key, pkcs8),
                "apiURL": api.url.encode(),
            }
            yield api, git, remote, data


def pem_of_an_ec_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def stores_with(tmp_path: Path, data: dict[str, bytes]) -> StateStoreActivities:
    secrets = SecretStore(tmp_path / "secrets")
    secrets.put("default", "app", data)
    return StateStoreActivities(ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache", secrets)


def target(url: str) -> StoreTarget:
    spec = GitStateStoreSpec(url=url, auth_method="githubApp", secret_ref=SecretRef(name="app", namespace="default"))
    return StoreTarget(kind="GitStateStore", name="fleet", git=spec)


def write(store: StoreTarget, path: str, text: str) -> WriteStateStoreInput:
    return WriteStateStoreInput(
        store=store, message=f"Update from: {path}", replace=[GroupWrite(slot=Slot(path=path), inline={"a.yaml": text})]
    )


@pytest.mark.parametrize("pkcs8", [False, True], ids=["pkcs1", "pkcs8"])
async def test_writes_with_an_installation_token_kept_until_it_nears_expiry(tmp_path: Path, pkcs8: bool) -> None:
    with github(tmp_path, pkcs8) as (api, git, remote, data):
        stores = stores_with(tmp_path, data)
        store = target(git.url("fleet.git"))
        assert (await stores.check_state_store(CheckStateStoreInput(store=store))).ready
        assert api.refusals == [] and api.exchanges == 1
        for n in range(3):
            outcome = await stores.write_state_store(write(store, f"d/{n}", f"n: {n}\n"))
            assert outcome.error is None and outcome.changed
        assert api.exchanges == 1  # an hour-long token serves every operation
        assert git.refused_requests == 0 and "POST git-receive-pack" in git.services
        # A token with less than the refresh margin left is never used: each operation gets a new one first.
        api.token_lifetime_s = 120
        api.expire_tokens()  # (and the one cached is dead already, so a use of it would be refused)
        git.refused_requests = 0
        await stores.write_state_store(write(store, "d/3", "n: 3\n"))
        first = api.exchanges
        outcome = await stores.write_state_store(write(store, "d/4", "n: 4\n"))
        assert outcome.error is None and api.exchanges == first + 1
    assert read_remote(remote, "d/4/a.yaml") == "n: 4\n"


async def test_a_token_refused_before_its_expiry_is_replaced_and_the_write_lands(tmp_path: Path) -> None:
    with github(tmp_path) as (api, git, remote, data):
        stores = stores_with(tmp_path, data)
        store = target(git.url("fleet.git"))
        assert (await stores.write_state_store(write(store, "d/a", "a: 1\n"))).error is None
        api.expire_tokens()  # the cached token still has most of its hour, as far as the writer knows
        outcome = await stores.write_state_store(write(store, "d/a", "a: 2\n"))
        assert outcome.error is None and outcome.changed
        assert git.refused_requests >= 1 and api.exchanges == 2
        api.expire_tokens()
        assert (await stores.check_state_store(CheckStateStoreInput(store=store))).ready
        assert api.exchanges == 3
    assert read_remote(remote, "d/a/a.yaml") == "a: 2\n"


@pytest.mark.parametrize("status", [404, 401])
async def test_a_revoked_app_is_the_stores_reason_and_the_writes_error(tmp_path: Path, status: int) -> None:
    with github(tmp_path) as (api, git, remote, data):
        stores = stores_with(tmp_path, data)
        store = target(git.url("fleet.git"))
        assert (await stores.write_state_store(write(store, "d/a", "a: 1\n"))).error is None
        api.revoked = status
        api.expire_tokens()
        readiness = await stores.check_state_store(CheckStateStoreInput(store=store))
        assert not readiness.ready and readiness.reason == "ErrorInitialisingWriter"
        assert f"failed to get GitHub installation token: GitHub API error: status={status}" in readiness.message
        refused = await stores.write_state_store(write(store, "d/a", "a: 2\n"))
        assert f"status={status}" in (refused.error or "") and not refused.changed
        api.revoked = None  # reinstalled: the next write exchanges again and lands
        assert (await stores.write_state_store(write(store, "d/a", "a: 3\n"))).error is None
    assert read_remote(remote, "d/a/a.yaml") == "a: 3\n"


async def test_bad_app_secrets_are_named_without_their_values(tmp_path: Path) -> None:
    with github(tmp_path) as (api, git, remote, data):
        store = target(git.url("fleet.git"))
        cases = [
            ("installationID", b"1/../../user", "installationID in secret default/app must be a number"),
            ("appID", b"-1", "appID in secret default/app must be a number"),
            ("privateKey", b"-----BEGIN RSA PRIVATE KEY-----\nnot a key\n", "is not an unencrypted PEM private key"),
            ("privateKey", pem_of_an_ec_key(), "must be an RSA key"),
            ("apiURL", b"file:///etc/passwd", "apiURL in secret default/app must be an http(s) URL"),
            ("apiURL", b"http://[::1", "apiURL in secret default/app must be an http(s) URL"),
            ("apiURL", b"https://bot:pw@ghe.example/api/v3", "apiURL in secret default/app must be an http(s) URL"),
        ]
        for n, (key, value, reason) in enumerate(cases):
            stores = stores_with(tmp_path / str(n), {**data, key: value})
            readiness = await stores.check_state_store(CheckStateStoreInput(store=store))
            assert (readiness.reason, readiness.ready) == ("ErrorInitialisingWriter", False)
            assert reason in readiness.message and value.decode() not in readiness.message
        stores = stores_with(tmp_path / "missing", {k: v for k, v in data.items() if k != "privateKey"})
        readiness = await stores.check_state_store(CheckStateStoreInput(store=store))
        assert readiness.message == "Secret app has no privateKey"
        assert api.exchanges == 0


async def test_the_key_jwt_and_token_stay_out_of_git_config_results_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # GitPython logs every command line, httpx every request, at this level
    with github(tmp_path) as (api, git, remote, data):
        stores = stores_with(tmp_path, data)
        store = target(git.url("fleet.git"))
        outcome = await stores.write_state_store(write(store, "d/a", "a: 1\n"))
        [token] = api.tokens
        api.revoked = 401
        api.expire_tokens()
        refused = await stores.write_state_store(write(store, "d/a", "a: 2\n"))
        shown = outcome.model_dump_json() + refused.model_dump_json()
        on_disk = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert "Popen(" in caplog.text and "HTTP Request: POST" in caplog.text  # the logs were captured
    for hidden in (token, data["privateKey"].decode().splitlines()[1], "Bearer ", "Basic "):
        assert hidden not in shown and hidden.encode() not in on_disk and hidden not in caplog.text


async def test_a_revoked_app_shows_in_the_stores_status_and_no_workflow_fails(platform, tmp_path: Path) -> None:
    """On the platform: a githubApp store becomes Ready and its Destination's canaries land through the token; the
    App revoked, the store says why, the Destination's write fails in its status, every workflow keeps running, and
    no history holds the key or a token."""
    with github(tmp_path) as (api, git, remote, data):
        values = {k: v.decode() for k, v in data.items()}
        await platform.apply(secret("app", **values))
        store = {
            "apiVersion": KRATIX,
            "kind": "GitStateStore",
            "metadata": {"name": "gh"},
            "spec": {
                "url": git.url("fleet.git"),
                "authMethod": "githubApp",
                "secretRef": {"name": "app", "namespace": "default"},
            },
        }
        await platform.apply(store)
        await platform.apply(destination("dev", store="gh"))
        await ready(platform, "dev")
        assert "dev/dependencies/kratix-canary-namespace.yaml" in remote_files(remote)
        assert (await platform.get("gitstatestore", "gh"))["status"]["status"] == "Ready"

        api.revoked = 404
        api.expire_tokens()
        await platform.apply(secret("app", **values, note="rotated"))  # a changed Secret: the store checks again
        shown = await eventually(
            lambda: platform.get("gitstatestore", "gh"),
            lambda s: condition(s, "Ready").get("reason") == "ErrorInitialisingWriter",
            what="the store's reason",
        )
        assert "GitHub API error: status=404, message=Not Found" in condition(shown, "Ready")["message"]
        assert shown["status"]["status"] == "NotReady"
        await platform.reconcile("destination", "dev")
        await eventually(
            lambda: platform.get("destination", "dev"),
            lambda d: condition(d, "Ready").get("status") == "False",
            what="the Destination not ready on a store that is not",
        )
        for workflow_id in ("gitstatestore/gh", "destination/dev"):
            description = await platform.client.get_workflow_handle(workflow_id).describe()
            assert description.status is not None and description.status.name == "RUNNING"
        tokens = list(api.tokens)
    assert tokens
    for text in [*tokens, data["privateKey"].decode().splitlines()[1]]:
        assert await histories_mention(platform.client, text) == []
