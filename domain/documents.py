"""Pydantic models of the Kratix kinds, parsed exactly as Kratix writes them (platform.kratix.io/v1alpha1)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from domain.actions import Action, check_unique
from domain.kube import KubeModel, SecretRef, StrictKubeModel
from domain.names import KRATIX_API_VERSION


class ObjectMeta(KubeModel):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class MatchLabels(KubeModel):
    match_labels: dict[str, str] = Field(default_factory=dict)


class EnvVar(KubeModel):
    name: str
    value: str | None = None
    value_from: dict[str, Any] | None = None


class Container(KubeModel):
    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[dict[str, Any]] = Field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)
    working_dir: str | None = None
    image_pull_policy: str | None = None
    security_context: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None


class JobOptions(StrictKubeModel):
    backoff_limit: int | None = None


class PipelineRbac(StrictKubeModel):
    service_account: str | None = None
    permissions: list[dict[str, Any]] = Field(default_factory=list)


class PipelineSpec(StrictKubeModel):
    containers: list[Container] = Field(default_factory=list)
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    image_pull_secrets: list[dict[str, Any]] = Field(default_factory=list)
    job_options: JobOptions | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    restart_policy: str | None = None
    rbac: PipelineRbac | None = None
    # ktx: off-platform actions run after the containers (see domain/actions.py); absent in plain Kratix Pipelines.
    actions: list[Action] = Field(default_factory=list)

    @field_validator("containers")
    @classmethod
    def _unique_container_names(cls, containers: list[Container]) -> list[Container]:
        names = [c.name for c in containers]
        if len(set(names)) != len(names):
            raise ValueError(f"container names must be unique, got {names}")
        return containers

    @field_validator("actions")
    @classmethod
    def _unique_action_names(cls, actions: list[Action]) -> list[Action]:
        return check_unique(actions)

    @model_validator(mode="after")
    def _does_something(self) -> "PipelineSpec":
        if not self.containers and not self.actions:
            raise ValueError("a Pipeline needs at least one container (or, in ktx, an action)")
        return self


class PipelineMeta(StrictKubeModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Pipeline(StrictKubeModel):
    api_version: Literal["platform.kratix.io/v1alpha1"]
    kind: Literal["Pipeline"]
    metadata: PipelineMeta
    spec: PipelineSpec


class WorkflowActions(KubeModel):
    configure: list[Pipeline] = Field(default_factory=list)
    delete: list[Pipeline] = Field(default_factory=list)


class WorkflowsConfig(KubeModel):
    pipeline_namespace: str | None = None
    reconciliation_interval: str | None = None


class PromiseWorkflows(KubeModel):
    config: WorkflowsConfig | None = None
    promise: WorkflowActions = Field(default_factory=WorkflowActions)
    resource: WorkflowActions = Field(default_factory=WorkflowActions)


class RequiredPromise(KubeModel):
    name: str
    version: str = ""


class PromiseSpec(KubeModel):
    api: dict[str, Any] | None = None
    dependencies: list[dict[str, Any]] = Field(default_factory=list)
    workflows: PromiseWorkflows = Field(default_factory=PromiseWorkflows)
    destination_selectors: list[MatchLabels] = Field(default_factory=list)
    required_promises: list[RequiredPromise] = Field(default_factory=list)

    @field_validator("api", mode="before")
    @classmethod
    def _empty_api_is_absent(cls, api: Any) -> Any:
        # Kratix treats nil, {} and null alike: a dependencies-only Promise.
        return api or None


class Promise(KubeModel):
    api_version: Literal["platform.kratix.io/v1alpha1"]
    kind: Literal["Promise"]
    metadata: ObjectMeta
    spec: PromiseSpec = Field(default_factory=PromiseSpec)


class StateStoreRef(KubeModel):
    kind: Literal["GitStateStore", "BucketStateStore"]
    name: str


class Filepath(KubeModel):
    mode: Literal["nestedByMetadata", "aggregatedYAML", "none"] = "nestedByMetadata"
    filename: str | None = None


class InitWorkloads(KubeModel):
    enabled: bool = True


class DestinationSpec(KubeModel):
    path: str
    state_store_ref: StateStoreRef
    strict_match_labels: bool = False
    filepath: Filepath = Field(default_factory=Filepath)
    cleanup: Literal["none", "all"] = "none"
    init_workloads: InitWorkloads = Field(default_factory=InitWorkloads)

    @field_validator("path")
    @classmethod
    def _path_required(cls, path: str) -> str:
        if not path.strip():
            raise ValueError("spec.path must not be empty")
        return path


class Destination(KubeModel):
    api_version: Literal["platform.kratix.io/v1alpha1"]
    kind: Literal["Destination"]
    metadata: ObjectMeta
    spec: DestinationSpec


class GitAuthor(KubeModel):
    name: str = "kratix"
    email: str = ""


# git check-ref-format's rules for a branch: what git itself refuses, and a leading '-' (an option to every command).
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
GIT_BRANCH_MAX = 255


class GitStateStoreSpec(KubeModel):
    url: str
    path: str = ""
    branch: str = "main"
    auth_method: Literal["basicAuth", "ssh", "githubApp"] = "basicAuth"
    secret_ref: SecretRef | None = None
    git_author: GitAuthor = Field(default_factory=GitAuthor)

    @field_validator("url")
    @classmethod
    def _url_not_an_option(cls, url: str) -> str:
        if not url.strip() or url.startswith("-"):
            raise ValueError("must be a repository URL, not empty and not starting with '-'")
        return url

    @field_validator("branch")
    @classmethod
    def _branch_name(cls, branch: str) -> str:
        """git check-ref-format --branch: a name git would refuse is refused at apply, where the field can be named."""
        parts = branch.split("/")
        if (
            not branch
            or len(branch) > GIT_BRANCH_MAX
            or branch.startswith("-")
            or branch == "@"
            or _REF_FORBIDDEN.search(branch)
            or branch.endswith(".")
            or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
        ):
            raise ValueError(
                f"must be a Git branch name of at most {GIT_BRANCH_MAX} characters (git check-ref-format): "
                "no leading '-', no '..', '@{', spaces, control characters or any of ~^:?*[\\, "
                "no empty component, none starting with '.' or ending with '.lock'"
            )
        return branch


class GitStateStore(KubeModel):
    api_version: Literal["platform.kratix.io/v1alpha1"]
    kind: Literal["GitStateStore"]
    metadata: ObjectMeta
    spec: GitStateStoreSpec


class BucketStateStoreSpec(KubeModel):
    bucket_name: str
    endpoint: str
    path: str = ""
    insecure: bool = False
    use_dual_stack: bool = False
    auth_method: Literal["accessKey", "IAM"] = "accessKey"
    secret_ref: SecretRef | None = None


class BucketStateStore(KubeModel):
    api_version: Literal["platform.kratix.io/v1alpha1"]
    kind: Literal["BucketStateStore"]
    metadata: ObjectMeta
    spec: BucketStateStoreSpec


StateStore = GitStateStore | BucketStateStore

# A URL longer than this is no marketplace address; browsers and proxies commonly stop near 2 KB too.
RELEASE_URL_MAX = 2048


class SourceRef(KubeModel):
    """Where a PromiseRelease fetches its Promise: Kratix knows one type, an HTTP(S) GET of `url`, with an optional
    Secret whose key `authorizationHeader` is sent as the Authorization header."""

    type: Literal["http"] = "http"
    url: str = ""
    secret_ref: SecretRef | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url:
            raise ValueError("sourceRef.url must be set")  # Kratix's webhook's words
        scheme, sep, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if (
            len(url) > RELEASE_URL_MAX
            or not sep
            or scheme.lower() not in ("http", "https")
            or not host
            or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url)
        ):
            raise ValueError(
                f"must be an http:// or https:// URL with a host, at most {RELEASE_URL_MAX} characters, no spaces"
            )
        return url


class PromiseReleaseSpec(KubeModel):
    version: str = ""
    source_ref: SourceRef

    @field_validator("version")
    @classmethod
    def _version_is_a_label_value(cls, version: str) -> str:
        # Compared with the Promise's kratix.io/promise-version label, so it is one: at most 63 characters.
        if len(version) > 63:
            raise ValueError("must be no more than 63 characters (it is compared with a label value)")
        return version


class PromiseRelease(KubeModel):
    api_version: Literal["platform.kratix.io/v1alpha1"]
    kind: Literal["PromiseRelease"]
    metadata: ObjectMeta
    spec: PromiseReleaseSpec


PLATFORM_KINDS: dict[str, type[KubeModel]] = {
    "Promise": Promise,
    "Destination": Destination,
    "GitStateStore": GitStateStore,
    "BucketStateStore": BucketStateStore,
    "PromiseRelease": PromiseRelease,
}
# Every kind the platform serves itself, in the one version it serves it; all other kinds are Promise APIs.
BUILTIN_API_VERSIONS: dict[str, str] = {
    **{
        kind: KRATIX_API_VERSION
        for kind in [*PLATFORM_KINDS, "HealthRecord", "DryRun", "PromiseRevision", "ResourceBinding"]
    },
    "Secret": "v1",
}
# What users type for them (kind, plural, short name), lower-cased; these win over a Promise kind of the same name.
PLATFORM_KIND_NAMES = {
    "promise": "Promise",
    "promises": "Promise",
    "promiserelease": "PromiseRelease",
    "promisereleases": "PromiseRelease",
    "healthrecord": "HealthRecord",
    "healthrecords": "HealthRecord",
    "dryrun": "DryRun",
    "dryruns": "DryRun",
    "promiserevision": "PromiseRevision",
    "promiserevisions": "PromiseRevision",
    "resourcebinding": "ResourceBinding",
    "resourcebindings": "ResourceBinding",
    "destination": "Destination",
    "destinations": "Destination",
    "dest": "Destination",
    "dests": "Destination",
    "gitstatestore": "GitStateStore",
    "gitstatestores": "GitStateStore",
    "bucketstatestore": "BucketStateStore",
    "bucketstatestores": "BucketStateStore",
    "secret": "Secret",
    "secrets": "Secret",
}


def builtin_kind(document: dict[str, Any]) -> str | None:
    """The platform kind a document is, judged by its group so a wrong version is still that kind; None for a
    Promise API's kind, since a Promise may serve a kind of the same name in a group of its own."""
    kind = document.get("kind")
    expected = BUILTIN_API_VERSIONS.get(kind) if isinstance(kind, str) else None
    if expected is None or str(document.get("apiVersion")).rpartition("/")[0] != expected.rpartition("/")[0]:
        return None
    return kind


class ResourceRequest(KubeModel):
    """An instance of a Promise's API; its spec is checked against the Promise's schema, not here."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any] = Field(default_factory=dict)
