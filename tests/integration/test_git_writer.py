"""The Git writer against real git servers: batching, no-op writes, races with outside commits, force-pushes,
refusals, and credentials over smart HTTP."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.stores.git_writer import GitCredentials, GitRepoWriter
from activities.stores.secrets import SecretStore
from activities.stores.state_stores import CheckStateStoreInput, StateStoreActivities, StoreTarget, WriteStateStoreInput
from activities.stores.write_batcher import Pacing
from activities.stores.writes import GroupWrite, StoreChange
from domain.documents import GitStateStoreSpec, SecretRef
from domain.layout import Slot
from tests.conftest import push_by_hand, read_remote, remote_commits, remote_files
from tests.servers.git_servers import GitDaemon, GitHttpServer, GitSshServer, bare_repo, refuse_pushes
from worker.settings import Settings


def writer(
    url: str, tmp: Path, name: str = "w", credentials: GitCredentials | None = None, pacing: Pacing = Pacing()
) -> GitRepoWriter:
    return GitRepoWriter(
        url, "main", "kratix", "k@x", tmp / name, ArtifactStore(tmp / "artifacts"), credentials, pacing=pacing
    )


def nested(message: str, path: str, files: dict[str, str]) -> StoreChange:
    return StoreChange(message=message, replace=[GroupWrite(slot=Slot(path=path), inline=files)])


async def test_concurrent_writes_are_batched_into_few_commits(git_remote: Path, tmp_path: Path) -> None:
    with GitDaemon(git_remote.parent) as daemon:
        w = writer(daemon.url(git_remote.name), tmp_path)
        before = remote_commits(git_remote)
        changes = [nested(f"Update from: r{i}", f"dest/r{i}", {"cm.yaml": f"n: {i}\n"}) for i in range(40)]
        outcomes = await asyncio.gather(*[w.write(c) for c in changes])
    made = remote_commits(git_remote) - before
    assert 1 <= made <= 3  # the first write goes alone, everything queued behind it shares a commit
    assert w.batches_committed == made
    assert all(o.version_id and o.error is None for o in outcomes)
    assert sum(f.startswith("dest/") for f in remote_files(git_remote)) == 40


async def test_writes_trickling_in_share_one_paced_commit(git_remote: Path, tmp_path: Path) -> None:
    # An hour's interval: the first write, to an idle store, goes at once; the 99 that trickle in after it (each
    # queued in its own turn of the event loop) wait together, and filling a batch starts it without the hour.
    w = writer(str(git_remote), tmp_path, pacing=Pacing(interval_s=3600, max_batch=99))
    before = remote_commits(git_remote)
    first = await asyncio.wait_for(w.write(nested("Update from: r0", "dest/r0", {"cm.yaml": "n: 0\n"})), 60)
    assert first.changed and remote_commits(git_remote) - before == 1
    pending = []
    for i in range(1, 100):
        pending.append(
            asyncio.ensure_future(w.write(nested(f"Update from: r{i}", f"dest/r{i}", {"cm.yaml": "n: 1\n"})))
        )
        await asyncio.sleep(0)  # one write per turn of the loop: they arrive apart, not in one gather
    outcomes = await asyncio.wait_for(asyncio.gather(*pending), 60)
    assert remote_commits(git_remote) - before == 2 == w.batches_committed
    assert all(o.changed and o.error is None for o in outcomes)
    assert sum(f.startswith("dest/") for f in remote_files(git_remote)) == 100


async def test_a_backlog_goes_out_in_batches_of_at_most_max_batch(git_remote: Path, tmp_path: Path) -> None:
    w = writer(str(git_remote), tmp_path, pacing=Pacing(interval_s=3600, max_batch=50))
    before = remote_commits(git_remote)
    changes = [nested(f"Update from: r{i}", f"dest/r{i}", {"cm.yaml": f"n: {i}\n"}) for i in range(250)]
    outcomes = await asyncio.wait_for(asyncio.gather(*[w.write(c) for c in changes]), 120)
    # All 250 queue before the first batch starts: five full batches, none waiting out the interval.
    assert remote_commits(git_remote) - before == 5 == w.batches_committed
    assert len({o.version_id for o in outcomes}) == 5


async def test_unchanged_content_makes_no_commit(git_remote: Path, tmp_path: Path) -> None:
    w = writer(str(git_remote), tmp_path)
    change = nested("Update from: x", "d/x", {"a.yaml": "a: 1\n"})
    first = await w.write(change)
    second = await w.write(change)
    assert first.changed and not second.changed
    assert first.version_id == second.version_id


async def test_outside_commit_racing_a_write_is_kept(git_remote: Path, tmp_path: Path) -> None:
    with GitDaemon(git_remote.parent) as daemon:
        w = writer(daemon.url(git_remote.name), tmp_path)
        await w.write(nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"}))
        # Someone commits by hand between our writes; our clone does not know yet, so our push is rejected first.
        push_by_hand(git_remote, tmp_path / "other", "manual.yaml", "by: hand\n", "manual")
        outcome = await w.write(nested("Update from: b", "d/b", {"b.yaml": "b: 1\n"}))
    assert outcome.changed and outcome.error is None
    assert read_remote(git_remote, "manual.yaml") == "by: hand\n"
    assert read_remote(git_remote, "d/b/b.yaml") == "b: 1\n"
    assert read_remote(git_remote, "d/a/a.yaml") == "a: 1\n"


async def test_a_force_pushed_remote_is_written_on_top_of_its_new_history(git_remote: Path, tmp_path: Path) -> None:
    with GitDaemon(git_remote.parent) as daemon:
        w = writer(daemon.url(git_remote.name), tmp_path)
        await w.write(nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"}))
        rewritten = tmp_path / "rewrite"
        subprocess.run(["git", "init", "-q", "-b", "main", str(rewritten)], check=True)
        (rewritten / "other.yaml").write_text("history: rewritten\n")
        git = ["git", "-C", str(rewritten), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "new root"], check=True)
        subprocess.run([*git, "push", "-q", "--force", str(git_remote), "HEAD:main"], check=True)
        outcome = await w.write(nested("Update from: b", "d/b", {"b.yaml": "b: 1\n"}))
    assert outcome.error is None
    assert set(remote_files(git_remote)) == {"other.yaml", "d/b/b.yaml"}


async def test_a_refused_push_is_an_error_not_a_lost_write(git_remote: Path, tmp_path: Path) -> None:
    with GitDaemon(git_remote.parent) as daemon:
        w = writer(daemon.url(git_remote.name), tmp_path)
        refuse_pushes(git_remote, "branch main is protected")
        outcome = await w.write(nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"}))
        assert not outcome.changed
        assert "pre-receive hook declined" in (outcome.error or "") and "branch main is protected" in (
            outcome.error or ""
        )
        (git_remote / "hooks" / "pre-receive").unlink()
        retried = await w.write(nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"}))
    assert retried.changed and retried.error is None
    assert read_remote(git_remote, "d/a/a.yaml") == "a: 1\n"


async def test_first_write_to_an_empty_repository_creates_the_branch(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, "empty.git", seed=False)
    outcome = await writer(str(remote), tmp_path).write(
        StoreChange(message="Update from: c", files={"x/c.yaml": b"c: 1\n"})
    )
    assert outcome.changed
    assert read_remote(remote, "x/c.yaml") == "c: 1\n"


async def test_basic_auth_credentials_reach_the_server_only_as_a_header(tmp_path: Path) -> None:
    base = tmp_path / "srv"
    base.mkdir()
    remote = bare_repo(base, "private.git")
    with GitHttpServer(base, "platform", "s3cret-token") as server:
        anonymous = writer(server.url("private.git"), tmp_path, "anon", GitCredentials({"GIT_TERMINAL_PROMPT": "0"}))
        denied = await anonymous.write(nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"}))
        assert "could not read Username" in (denied.error or "")  # the server asked for credentials and got none
        header = "Authorization: Basic cGxhdGZvcm06czNjcmV0LXRva2Vu"  # platform:s3cret-token
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": header,
        }
        w = writer(server.url("private.git"), tmp_path, "auth", GitCredentials(env))
        outcome = await w.write(nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"}))
        assert outcome.error is None and outcome.changed
        assert server.authorized_requests > 0
    assert read_remote(remote, "d/a/a.yaml") == "a: 1\n"
    config = (tmp_path / "auth" / ".git" / "config").read_text()
    assert "s3cret" not in config and "cGxhdGZvcm06" not in config


async def test_ssh_credentials_with_strict_host_checking(tmp_path: Path) -> None:
    """The store's activity resolves `sshPrivateKey` and `knownHosts` from the Secret; a wrong host key is refused."""
    remote = bare_repo(tmp_path, "fleet.git")
    secrets = SecretStore(tmp_path / "secrets")
    with GitSshServer(tmp_path / "sshd") as server:
        stores = StateStoreActivities(ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache", secrets)
        spec = GitStateStoreSpec(
            url=server.url(remote), auth_method="ssh", secret_ref=SecretRef(name="ssh", namespace="default")
        )
        target = StoreTarget(kind="GitStateStore", name="fleet", git=spec)
        write = WriteStateStoreInput(
            store=target,
            message="Update from: ssh",
            replace=[GroupWrite(slot=Slot(path="d/a"), inline={"a.yaml": "a: 1\n"})],
        )
        missing = await stores.write_state_store(write)
        assert missing.error == "SecretNotFound: Secret ssh not found in namespace default"
        wrong_host = (
            server.known_hosts.split(" ")[0]
            + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
        )
        secrets.put(
            "default", "ssh", {"sshPrivateKey": server.client_key.read_bytes(), "knownHosts": wrong_host.encode()}
        )
        refused = await stores.write_state_store(write)
        assert "Host key verification failed" in (refused.error or "")
        secrets.put(
            "default",
            "ssh",
            {"sshPrivateKey": server.client_key.read_bytes(), "knownHosts": server.known_hosts.encode()},
        )
        written = await stores.write_state_store(write)
        assert written.error is None and written.changed
        assert (await stores.check_state_store(CheckStateStoreInput(store=target))).ready
    assert read_remote(remote, "d/a/a.yaml") == "a: 1\n"


async def test_a_rewrite_right_after_an_outside_delete_restores_the_file(git_remote: Path, tmp_path: Path) -> None:
    """Within the fetch throttle the clone still has the file; "unchanged" must be judged against the remote."""
    w = writer(str(git_remote), tmp_path)
    change = nested("Update from: a", "d/a", {"a.yaml": "a: 1\n"})
    await w.write(change)
    clone = tmp_path / "vandal"
    subprocess.run(["git", "clone", "-q", str(git_remote), str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "rm", "-q", "-r", "d/a"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "oops"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
    restored = await w.write(change)
    assert restored.changed and read_remote(git_remote, "d/a/a.yaml") == "a: 1\n"


@pytest.mark.parametrize(("setting", "fetches"), [("0", 3), ("1h", 1)])
async def test_the_minimum_fetch_interval_setting_decides_how_often_a_write_fetches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, fetches: int
) -> None:
    """Kratix's `git.minimumFetchInterval`: 0 fetches before every write, an hour lets three writes go on one fetch."""
    monkeypatch.setenv("KTX_GIT_MINIMUM_FETCH_INTERVAL", setting)
    base = tmp_path / "srv"
    base.mkdir()
    remote = bare_repo(base, "fleet.git")
    secrets = SecretStore(tmp_path / "secrets")
    secrets.put("default", "creds", {"username": b"bot", "password": b"pw"})
    with GitHttpServer(base, "bot", "pw") as server:
        stores = StateStoreActivities(
            ArtifactStore(tmp_path / "artifacts"),
            tmp_path / "cache",
            secrets,
            Settings.from_env().git_minimum_fetch_interval_s,
        )
        spec = GitStateStoreSpec(url=server.url("fleet.git"), secret_ref=SecretRef(name="creds", namespace="default"))
        store = StoreTarget(kind="GitStateStore", name="fleet", git=spec)
        for n in range(3):
            change = [GroupWrite(slot=Slot(path="d/a"), inline={"a.yaml": f"a: {n}\n"})]
            outcome = await stores.write_state_store(WriteStateStoreInput(store=store, message="m", replace=change))
            assert outcome.error is None and outcome.changed
        assert server.services.count("GET git-upload-pack") == fetches
        assert server.services.count("POST git-receive-pack") == 3
    assert read_remote(remote, "d/a/a.yaml") == "a: 2\n"
