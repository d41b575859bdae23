"""The Git state-store writer: a shallow clone per repository and branch, reset to the remote before every batch.

A rejected push (someone else moved the branch, by a commit or a force-push) starts the batch again from a fresh
fetch, so the platform's files are re-applied on top of whatever the remote now holds and nothing is force-pushed
over other people's work. A refusal that a retry cannot fix (a pre-receive hook, a protected branch, bad
credentials) is returned as the write's error, for the Destination's and the resource's status.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import git

from activities.artifacts.store import ArtifactStore
from activities.stores.writes import Content, StoreChange, apply_change
from activities.stores.write_batcher import BatchingWriter, Pacing, WriteOutcome
from domain.config import DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S

_PUSH_ATTEMPTS = 5
_RACE_MARKERS = ("fetch first", "non-fast-forward", "stale info", "cannot lock ref", "failed to update ref")
# What git says when the server refuses the credentials it sent (with prompts off, a 401 asks for a username).
_REFUSED_MARKERS = ("could not read Username", "Authentication failed", "returned error: 401", "returned error: 403")


class CredentialsError(Exception):
    """The credentials themselves could not be had (a GitHub App's token exchange failed): the store's reason."""


class TokenSource(Protocol):
    def token(self) -> str:
        """A password valid now; raises CredentialsError."""
        ...

    def invalidate(self) -> None:
        """The server refused the last token: the next one must be new."""
        ...


def basic_auth_env(username: str, password: str) -> dict[str, str]:
    """Credentials as a forced Basic header through the environment, as Kratix sends them (KRATIX_GIT_AUTH_HEADER),
    so they are never in the URL, argv or .git/config."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }


@dataclass
class GitCredentials:
    """Environment for git commands: credentials travel in env and private files, never argv, config or logs.

    With a token source (a GitHub App), the password is asked for before every operation, so a renewed token is
    used as soon as there is one."""

    env: dict[str, str]
    tokens: TokenSource | None = None
    username: str = field(default="x-access-token")

    def environment(self) -> dict[str, str]:
        if self.tokens is None:
            return self.env
        return {**self.env, **basic_auth_env(self.username, self.tokens.token())}


class LocalTree:
    """A working tree seen as a store of paths."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def _target(self, relpath: str) -> Path:
        target = (self.root / relpath).resolve()
        if target == self.root or self.root not in target.parents or ".git" in target.relative_to(self.root).parts:
            raise ValueError(f"refusing to write outside the repository: {relpath!r}")
        return target

    def read(self, path: str) -> bytes | None:
        target = self._target(path)
        return target.read_bytes() if target.is_file() else None

    def write(self, path: str, content: Content) -> None:
        target = self._target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)  # in chunks: an output file may be hundreds of MB
        else:
            target.write_bytes(content)

    def delete(self, path: str) -> None:
        target = self._target(path)
        if target.is_file() or target.is_symlink():
            target.unlink()

    def delete_dir(self, path: str) -> None:
        target = self._target(path)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def list(self, path: str) -> list[str]:
        target = self._target(path)
        if not target.is_dir():
            return []
        return sorted(
            f"{path}/{child.name}" for child in target.iterdir() if child.is_file() and not child.is_symlink()
        )


class GitRepoWriter(BatchingWriter):
    def __init__(
        self,
        url: str,
        branch: str,
        author_name: str,
        author_email: str,
        workdir: Path,
        artifacts: ArtifactStore,
        credentials: GitCredentials | None = None,
        min_fetch_interval: float = DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S,
        pacing: Pacing = Pacing(),
    ):
        super().__init__(pacing)
        self.url = url
        self.branch = branch
        self.actor = git.Actor(author_name, author_email)
        self.workdir = workdir
        self.artifacts = artifacts
        self.credentials = credentials
        self.min_fetch_interval = min_fetch_interval
        self._repo: git.Repo | None = None
        self._last_sync = 0.0

    def _commit_batch(self, changes: list[StoreChange]) -> WriteOutcome:
        outcome = self._attempt(changes)
        if outcome.error and self._token_refused(outcome.error):
            outcome = self._attempt(changes)
        return outcome

    def _attempt(self, changes: list[StoreChange]) -> WriteOutcome:
        try:
            return self._commit_with_retries(changes)
        except (git.GitCommandError, CredentialsError) as exc:
            # Unreachable remote, bad credentials, a failed token exchange: the write's error, shown in status and
            # retried by the workflow.
            self._forget_local_commit()
            reason = _git_error(exc) if isinstance(exc, git.GitCommandError) else str(exc)
            return WriteOutcome(version_id="", changed=False, error=f"{self.url} ({self.branch}): {reason}")

    def _token_refused(self, error: str) -> bool:
        """A token the server refused is dropped, once per operation: GitHub revokes or expires one before its time
        when the App is reinstalled or its key rotated; a fresh exchange says whether the App itself still may."""
        tokens = self.credentials.tokens if self.credentials is not None else None
        if tokens is None or not any(marker in error for marker in _REFUSED_MARKERS):
            return False
        tokens.invalidate()
        self._forget_local_commit()
        return True

    def _commit_with_retries(self, changes: list[StoreChange]) -> WriteOutcome:
        last_error = ""
        for attempt in range(_PUSH_ATTEMPTS):
            repo, fetched = self._sync(force_fetch=attempt > 0)
            tree = LocalTree(self.workdir)
            for change in changes:
                apply_change(tree, change, self.artifacts)
            repo.git.add(A=True)
            if not repo.is_dirty(index=True, untracked_files=True):
                if not fetched:
                    # Judged against a clone up to min_fetch_interval old: someone may have deleted or edited these
                    # files since (drift). Only the remote itself can say the write changes nothing.
                    continue
                return WriteOutcome(version_id=self._head(repo), changed=False)
            repo.index.commit(self._message(changes), author=self.actor, committer=self.actor)
            try:
                repo.git.push("--porcelain", "origin", f"HEAD:refs/heads/{self.branch}")
            except git.GitCommandError as exc:
                last_error = _git_error(exc)
                if any(marker in last_error for marker in _RACE_MARKERS):
                    continue  # someone else moved the branch: redo the batch on top of it
                self._forget_local_commit()
                return WriteOutcome(
                    version_id="", changed=False, error=f"push to {self.url} ({self.branch}) refused: {last_error}"
                )
            return WriteOutcome(version_id=self._head(repo), changed=True)
        self._forget_local_commit()
        return WriteOutcome(
            version_id="",
            changed=False,
            error=f"push to {self.url} ({self.branch}) kept losing races after {_PUSH_ATTEMPTS} attempts: {last_error}",
        )

    def check_permissions(self) -> None:
        """Kratix pushes a no-op; a dry-run push of a probe commit proves the same (auth, receive-pack) on empty remotes
        too."""
        try:
            self._probe_push()
        except (PermissionError, git.GitCommandError) as exc:
            if not self._token_refused(str(exc)):
                raise
            self._probe_push()

    def _probe_push(self) -> None:
        repo, _ = self._sync(force_fetch=True)
        empty_tree = repo.git.hash_object("-t", "tree", "/dev/null")
        probe = repo.git.commit_tree(empty_tree, m="ktx write-permission check")
        try:
            repo.git.push(
                "--dry-run", "--porcelain", "origin", f"{probe}:refs/heads/{self.branch}-ktx-permission-check"
            )
        except git.GitCommandError as exc:
            raise PermissionError(f"cannot push to {self.url}: {_git_error(exc)}") from exc

    def _forget_local_commit(self) -> None:
        # The next batch starts from the remote again; force the fetch so a refused commit is not retried from cache.
        self._last_sync = 0.0

    def _sync(self, force_fetch: bool) -> tuple[git.Repo, bool]:
        """The clone reset to the remote's branch, and whether it was fetched just now."""
        repo = self._repo
        if repo is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir.mkdir(parents=True)
            repo = git.Repo.init(self.workdir)
            repo.create_remote("origin", self.url)
            self._repo = repo
            force_fetch = True
        if self.credentials is not None:
            # Every sync: a token source may have a new token since the last one.
            repo.git.update_environment(**self.credentials.environment())
        if force_fetch or time.monotonic() - self._last_sync > self.min_fetch_interval:
            try:
                repo.git.fetch("origin", f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}", depth=1)
            except git.GitCommandError as exc:
                if "couldn't find remote ref" not in str(exc):
                    raise
                # A brand-new repository: the first commit creates the branch.
                repo.git.symbolic_ref("HEAD", f"refs/heads/{self.branch}")
                repo.git.update_ref("-d", f"refs/heads/{self.branch}")  # drop a refused first commit
                repo.git.rm("-r", "-q", "--cached", "--ignore-unmatch", ".")
                repo.git.clean("-ffdx", "-q")
                self._last_sync = time.monotonic()
                return repo, True
            self._last_sync = time.monotonic()
            fetched = True
        else:
            fetched = False
        if f"origin/{self.branch}" in [r.name for r in repo.remotes.origin.refs]:
            # Discard anything local that the remote does not have (refused commits, stray files, a rewritten history).
            # The branch was checked at apply (GitStateStoreSpec); `--` ends the revisions all the same, so nothing
            # after them is read as a path or an option.
            repo.git.checkout("-q", "-B", self.branch, f"origin/{self.branch}", "--")
            repo.git.reset("--hard", "-q", f"origin/{self.branch}", "--")
            repo.git.clean("-ffdx", "-q")
        return repo, fetched

    @staticmethod
    def _head(repo: git.Repo) -> str:
        return repo.head.commit.hexsha if repo.head.is_valid() else ""

    @staticmethod
    def _message(changes: list[StoreChange]) -> str:
        subjects = [c.message for c in changes]
        if len(subjects) == 1:
            return subjects[0]
        return f"{subjects[0]} (+{len(subjects) - 1} more)\n\n" + "\n".join(subjects)


def _git_error(exc: git.GitCommandError) -> str:
    # With --porcelain the per-ref verdict is on stdout and the remote's explanation on stderr; show both.
    text = f"{exc.stdout or ''}\n{exc.stderr or ''}" if (exc.stdout or exc.stderr) else str(exc)
    lines = [line.strip() for line in text.replace("stdout:", "").replace("stderr:", "").splitlines()]
    return " ".join(line for line in lines if line.strip("'\"") and line != "Done")[-600:]


def writer_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
