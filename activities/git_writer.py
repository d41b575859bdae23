"""One writer per Git repository and branch: serialises concurrent writes and batches them into few commits.

Kratix makes one commit and push per WorkPlacement under a lock, which storms the remote. Here every change
that arrives while a commit is being pushed waits in a queue and goes out together in the next commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import git

from activities.artifacts import ArtifactStore

_PUSH_ATTEMPTS = 5


@dataclass
class ChangeSet:
    """Paths are relative to the repository root (the state store's `path` already applied)."""

    message: str
    delete: list[str] = field(default_factory=list)
    replace_dirs: dict[str, dict[str, bytes | tuple[str, str]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class WriteOutcome:
    commit: str
    changed: bool


class PushRejected(RuntimeError):
    pass


class GitRepoWriter:
    def __init__(self, url: str, branch: str, author_name: str, author_email: str, workdir: Path, artifacts: ArtifactStore,
                 min_fetch_interval: float = 5.0):
        self.url = url
        self.branch = branch
        self.actor = git.Actor(author_name, author_email)
        self.workdir = workdir
        self.artifacts = artifacts
        self.min_fetch_interval = min_fetch_interval
        self._repo: git.Repo | None = None
        self._last_sync = 0.0
        self._pending: list[tuple[ChangeSet, asyncio.Future[WriteOutcome]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.commits_made = 0

    async def write(self, change: ChangeSet) -> WriteOutcome:
        future: asyncio.Future[WriteOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((change, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcome = await asyncio.to_thread(self._commit_batch, [change for change, _ in batch])
            except Exception as exc:  # every waiter learns why its write failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(outcome)

    # --- everything below runs in a worker thread, one batch at a time ---

    def _commit_batch(self, changes: list[ChangeSet]) -> WriteOutcome:
        last_error: Exception | None = None
        for attempt in range(_PUSH_ATTEMPTS):
            repo = self._sync(force_fetch=attempt > 0)
            for change in changes:
                self._apply(repo, change)
            repo.git.add(A=True)
            if not repo.is_dirty(index=True, untracked_files=True):
                return WriteOutcome(commit=self._head(repo), changed=False)
            repo.index.commit(self._message(changes), author=self.actor, committer=self.actor)
            try:
                repo.git.push("origin", f"HEAD:refs/heads/{self.branch}")
            except git.GitCommandError as exc:
                # Someone else moved the branch: start again from a fresh fetch, never force-push over them.
                last_error = exc
                continue
            self.commits_made += 1
            return WriteOutcome(commit=self._head(repo), changed=True)
        raise PushRejected(f"push to {self.url} ({self.branch}) failed after {_PUSH_ATTEMPTS} attempts: {last_error}")

    def _sync(self, force_fetch: bool) -> git.Repo:
        repo = self._repo
        if repo is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir.mkdir(parents=True)
            repo = git.Repo.init(self.workdir)
            repo.create_remote("origin", self.url)
            self._repo = repo
            force_fetch = True
        if force_fetch or time.monotonic() - self._last_sync > self.min_fetch_interval:
            try:
                repo.git.fetch("origin", f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}", depth=1)
            except git.GitCommandError as exc:
                if "couldn't find remote ref" not in str(exc):
                    raise
                # A brand-new repository: the first commit creates the branch.
                repo.git.symbolic_ref("HEAD", f"refs/heads/{self.branch}")
                repo.git.rm("-r", "-q", "--cached", "--ignore-unmatch", ".")
                repo.git.clean("-ffdx")
                self._last_sync = time.monotonic()
                return repo
            self._last_sync = time.monotonic()
        if f"origin/{self.branch}" in [r.name for r in repo.remotes.origin.refs]:
            # Discard anything local that the remote does not have (failed pushes, stray files).
            repo.git.checkout("-q", "-B", self.branch, f"origin/{self.branch}")
            repo.git.reset("--hard", "-q", f"origin/{self.branch}")
            repo.git.clean("-ffdx", "-q")
        return repo

    def _target(self, relpath: str) -> Path:
        root = self.workdir.resolve()
        target = (root / relpath).resolve()
        if target == root or root not in target.parents:
            raise ValueError(f"refusing to write outside the repository: {relpath!r}")
        if ".git" in target.relative_to(root).parts:
            raise ValueError(f"refusing to write into .git: {relpath!r}")
        return target

    def _apply(self, repo: git.Repo, change: ChangeSet) -> None:
        for relpath in change.delete:
            target = self._target(relpath)
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for directory, files in change.replace_dirs.items():
            target_dir = self._target(directory)
            shutil.rmtree(target_dir, ignore_errors=True)
            for relpath, content in files.items():
                self._write_file(self._target(f"{directory}/{relpath}"), content)
        for relpath, content in change.files.items():
            self._write_file(self._target(relpath), content)

    def _write_file(self, target: Path, content: bytes | tuple[str, str]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            digest, relpath = content
            shutil.copyfile(self.artifacts.path(digest, relpath), target)
        else:
            target.write_bytes(content)

    @staticmethod
    def _head(repo: git.Repo) -> str:
        return repo.head.commit.hexsha if repo.head.is_valid() else ""

    @staticmethod
    def _message(changes: list[ChangeSet]) -> str:
        subjects = [c.message for c in changes]
        if len(subjects) == 1:
            return subjects[0]
        return f"{subjects[0]} (+{len(subjects) - 1} more)\n\n" + "\n".join(subjects)


def writer_key(url: str, branch: str) -> str:
    return hashlib.sha256(f"{url}\0{branch}".encode()).hexdigest()[:16]
