"""State-store activities: write a batch of group changes to one store, and check that a store can be written.

Writers are cached per store identity and credentials version, so every Destination and resource sharing a
repository or bucket shares one queue (and its batching); a changed Secret rebuilds the writer, as in Kratix.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import activity

from activities.artifacts.store import ArtifactStore
from activities.stores.bucket_writer import BucketCredentials, BucketWriter
from activities.stores.git_writer import (
    CredentialsError,
    GitCredentials,
    GitRepoWriter,
    basic_auth_env,
    writer_key,
)
from activities.stores.github_app import GitHubApp, InstallationTokens
from activities.metrics import observe_state_store_write
from activities.stores.secrets import SecretNotFound, SecretProvider
from activities.stores.writes import GroupWrite, StoreChange, UnsafePath
from activities.stores.write_batcher import BatchingWriter, Pacing
from domain.config import DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S
from domain.documents import BucketStateStore, BucketStateStoreSpec, GitStateStore, GitStateStoreSpec
from domain.layout import Slot, join


class StoreTarget(BaseModel):
    kind: Literal["GitStateStore", "BucketStateStore"]
    name: str
    git: GitStateStoreSpec | None = None
    bucket: BucketStateStoreSpec | None = None

    @classmethod
    def of(cls, store: GitStateStore | BucketStateStore) -> "StoreTarget":
        if isinstance(store, GitStateStore):
            return cls(kind="GitStateStore", name=store.metadata.name, git=store.spec)
        return cls(kind="BucketStateStore", name=store.metadata.name, bucket=store.spec)


class WriteStateStoreInput(BaseModel):
    store: StoreTarget
    message: str
    replace: list[GroupWrite] = Field(default_factory=list)
    remove: list[Slot] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    delete_files: list[str] = Field(default_factory=list)


class WriteStateStoreResult(BaseModel):
    version_id: str
    changed: bool
    # A refusal a retry would not fix (hook, protected branch, credentials, missing Secret), for status.
    error: str | None = None


class CheckStateStoreInput(BaseModel):
    store: StoreTarget


class StoreReadiness(BaseModel):
    ready: bool
    reason: str
    message: str


class StoreNotReady(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def store_secret(
    secrets: SecretProvider, spec: GitStateStoreSpec | BucketStateStoreSpec, required: list[str]
) -> dict[str, bytes]:
    """The store's Secret with every key its authMethod needs; a refusal names the Secret and keys, never a value."""
    if spec.secret_ref is None:
        raise StoreNotReady("SecretNotFound", "spec.secretRef is required for this authMethod")
    try:
        data = secrets.get(spec.secret_ref)
    except SecretNotFound as exc:
        raise StoreNotReady("SecretNotFound", str(exc)) from exc
    missing = [k for k in required if not data.get(k)]
    if missing:
        raise StoreNotReady("ErrorInitialisingWriter", f"Secret {spec.secret_ref.name} has no {', '.join(missing)}")
    return data


def bucket_credentials(secrets: SecretProvider, spec: BucketStateStoreSpec) -> BucketCredentials | None:
    """The access keys of an `accessKey` store; None for IAM, where boto3 finds the ambient credentials."""
    if spec.auth_method != "accessKey":
        return None
    data = store_secret(secrets, spec, ["accessKeyID", "secretAccessKey"])
    return BucketCredentials(data["accessKeyID"].decode(), data["secretAccessKey"].decode())


class StateStoreActivities:
    def __init__(
        self,
        artifacts: ArtifactStore,
        cache_dir: Path,
        secrets: SecretProvider,
        git_minimum_fetch_interval_s: float = DEFAULT_GIT_MINIMUM_FETCH_INTERVAL_S,
        pacing: Pacing = Pacing(),
    ):
        self.artifacts = artifacts
        self.cache_dir = cache_dir
        self.secrets = secrets
        self.git_minimum_fetch_interval_s = git_minimum_fetch_interval_s
        self.pacing = pacing
        self._writers: dict[str, BatchingWriter] = {}

    def writer(self, store: StoreTarget) -> BatchingWriter:
        if store.git is not None:
            return self._git_writer(store.git)
        if store.bucket is not None:
            return self._bucket_writer(store.bucket)
        raise StoreNotReady("ErrorInitialisingWriter", f"{store.kind}/{store.name} has no spec")

    def _git_writer(self, spec: GitStateStoreSpec) -> BatchingWriter:
        version = self.secrets.version(spec.secret_ref) if spec.secret_ref else ""
        key = writer_key("git", spec.url, spec.branch, spec.auth_method, version)
        if key not in self._writers:
            self._writers[key] = GitRepoWriter(
                spec.url,
                spec.branch,
                spec.git_author.name,
                spec.git_author.email,
                self.cache_dir / key,
                self.artifacts,
                self._git_credentials(spec, key),
                self.git_minimum_fetch_interval_s,
                self.pacing,
            )
        return self._writers[key]

    def _git_credentials(self, spec: GitStateStoreSpec, key: str) -> GitCredentials | None:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if spec.secret_ref is None and spec.auth_method == "basicAuth":
            return GitCredentials(env)  # a public or local repository
        if spec.auth_method == "basicAuth":
            data = store_secret(self.secrets, spec, ["password"])
            username = data.get("username", b"").decode() or ("x-access-token" if "github" in spec.url else "")
            return GitCredentials({**env, **basic_auth_env(username, data["password"].decode())})
        if spec.auth_method == "githubApp":
            data = store_secret(self.secrets, spec, ["appID", "installationID", "privateKey"])
            assert spec.secret_ref is not None  # store_secret refuses a store without one
            try:
                app = GitHubApp.from_secret(data, f"{spec.secret_ref.namespace}/{spec.secret_ref.name}")
            except CredentialsError as exc:
                raise StoreNotReady("ErrorInitialisingWriter", str(exc)) from None
            # The token is exchanged on the writer's thread before its first fetch, never here on the event loop.
            return GitCredentials(env, tokens=InstallationTokens(app))
        if spec.auth_method == "ssh":
            data = store_secret(self.secrets, spec, ["sshPrivateKey", "knownHosts"])
            keys_dir = self.cache_dir / f"{key}-ssh"
            keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for filename, value in (("id", data["sshPrivateKey"]), ("known_hosts", data["knownHosts"])):
                fd = os.open(keys_dir / filename, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(value if value.endswith(b"\n") else value + b"\n")
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {keys_dir / 'id'} -o IdentitiesOnly=yes -o UserKnownHostsFile={keys_dir / 'known_hosts'}"
                " -o StrictHostKeyChecking=yes -o BatchMode=yes"
            )
            return GitCredentials(env)
        raise StoreNotReady("ErrorInitialisingWriter", f"authMethod {spec.auth_method} is not supported")

    def _bucket_writer(self, spec: BucketStateStoreSpec) -> BatchingWriter:
        version = self.secrets.version(spec.secret_ref) if spec.secret_ref else ""
        key = writer_key("s3", spec.endpoint, spec.bucket_name, spec.auth_method, version)
        if key not in self._writers:
            self._writers[key] = BucketWriter(
                spec.endpoint,
                spec.bucket_name,
                spec.insecure,
                bucket_credentials(self.secrets, spec),
                self.artifacts,
                spec.path,
                spec.use_dual_stack,
                self.pacing,
            )
        return self._writers[key]

    @activity.defn
    async def write_state_store(self, input: WriteStateStoreInput) -> WriteStateStoreResult:
        """Idempotent: the same input always leaves the store in the same state, and changes nothing the second time."""
        kind, started = ("git" if input.store.kind == "GitStateStore" else "bucket"), time.monotonic()
        try:
            result = await self._write(input)
        except Exception:
            observe_state_store_write(kind, "failed", time.monotonic() - started)
            raise
        outcome = "failed" if result.error else "committed" if result.changed else "unchanged"
        observe_state_store_write(kind, outcome, time.monotonic() - started)
        return result

    async def _write(self, input: WriteStateStoreInput) -> WriteStateStoreResult:
        spec = input.store.git or input.store.bucket
        change = StoreChange(
            message=input.message,
            root=join(spec.path) if spec is not None else "",
            replace=input.replace,
            remove=input.remove,
            files={path: text.encode() for path, text in input.files.items()},
            delete_files=input.delete_files,
        )
        try:
            outcome = await self.writer(input.store).write(change)
        except StoreNotReady as exc:
            return WriteStateStoreResult(version_id="", changed=False, error=f"{exc.reason}: {exc}")
        except UnsafePath as exc:
            return WriteStateStoreResult(version_id="", changed=False, error=str(exc))
        return WriteStateStoreResult(version_id=outcome.version_id, changed=outcome.changed, error=outcome.error)

    @activity.defn
    async def check_state_store(self, input: CheckStateStoreInput) -> StoreReadiness:
        """Kratix's readiness: the Secret exists, the writer initialises, and a write-permission probe passes."""
        try:
            writer = self.writer(input.store)
        except StoreNotReady as exc:
            return StoreReadiness(ready=False, reason=exc.reason, message=str(exc))
        try:
            await writer.check()
        except CredentialsError as exc:
            # Kratix exchanges a first token when it builds the writer: a revoked App fails there.
            return StoreReadiness(ready=False, reason="ErrorInitialisingWriter", message=str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure is the store's readiness message
            return StoreReadiness(
                ready=False,
                reason="ErrorValidatingPermissions",
                message=f"Error validating state store permissions: {exc}",
            )
        return StoreReadiness(ready=True, reason="StateStoreReady", message="State store is ready")
