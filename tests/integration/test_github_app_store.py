"""GitHub App state stores against a stand-in of GitHub's token endpoint and a git smart-HTTP server that takes only
the tokens it issued: the JWT GitHub would accept, a token cached and renewed before it expires, a token refused
early replaced, a revoked App as the store's reason, and the key and tokens nowhere but in git's requests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.stores.secrets import SecretStore
from activities.stores.state_stores import CheckStateStoreInput, StateStoreActivities, StoreTarget, WriteStateStoreInput
from activities.stores.writes import GroupWrite
from domain.documents import GitStateStoreSpec, SecretRef
from domain.layout import Slot
from tests.conftest import read_remote
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
        cases = {
            "installationID": (b"1/../../user", "installationID in secret default/app must be a number"),
            "privateKey": (b"-----BEGIN RSA PRIVATE KEY-----\nnot a key\n", "is not an unencrypted PEM private key"),
            "apiURL": (b"file:///etc/passwd", "apiURL in secret default/app must be an http(s) URL"),
        }
        for key, (value, reason) in cases.items():
            stores = stores_with(tmp_path / key, {**data, key: value})
            readiness = await stores.check_state_store(CheckStateStoreInput(store=store))
            assert (readiness.reason, readiness.ready) == ("ErrorInitialisingWriter", False)
            assert reason in readiness.message and value.decode() not in readiness.message
        stores = stores_with(tmp_path / "missing", {k: v for k, v in data.items() if k != "privateKey"})
        readiness = await stores.check_state_store(CheckStateStoreInput(store=store))
        assert readiness.message == "Secret app has no privateKey"
        assert api.exchanges == 0


async def test_the_key_jwt_and_token_stay_out_of_git_config_and_results(tmp_path: Path) -> None:
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
    for secret in (token, data["privateKey"].decode().splitlines()[1]):
        assert secret not in shown and secret.encode() not in on_disk
