"""What a platform team applies on a Destination's cluster so Flux or ArgoCD pulls that Destination from its store.

Kratix documents the shape (docs.kratix.io, "Installing a GitOps agent"): one source for the state store and two
Kustomizations / Applications, `dependencies/` first and `resources/` once it is applied. Objects here are named
per Destination (`ktx-<destination>-...`) instead of Kratix's fixed `kratix-workload-*`, so one cluster can pull
several Destinations. The directories come from `domain.layout`, so they follow the Destination's filepath mode.

Credentials never appear: the sources name a Secret the platform team creates on the worker cluster, in the
agent's namespace, with the agent's own key names (they differ from the state store's; see README.md), ideally
holding read-only credentials rather than the platform's write credentials.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from domain.documents import BucketStateStore, Destination, GitStateStore
from domain.errors import FieldError, InvalidDocument
from domain.layout import LEDGER_DIR, ROOT_DIRECTORY, agent_directories, join
from domain.names import GitOpsAgent

MANAGED_BY = "app.kubernetes.io/managed-by"
DESTINATION_LABEL = "ktx.io/destination"
ARGOCD_SYNC_WAVE = "argocd.argoproj.io/sync-wave"

FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
ARGOCD_API = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"

_MAX_NAME = 63  # Flux and ArgoCD copy object names into label values, so names must also fit a label
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?!//)(?P<path>.+)$")


def manifests(
    agent: GitOpsAgent, destination: Destination, store: GitStateStore | BucketStateStore
) -> list[dict[str, Any]]:
    if agent == "argocd":
        return argocd_manifests(destination, store)
    return flux_manifests(destination, store)


def flux_manifests(
    destination: Destination,
    store: GitStateStore | BucketStateStore,
    *,
    namespace: str = "flux-system",
    interval: str = "1m",
) -> list[dict[str, Any]]:
    """A GitRepository or Bucket source, then one Kustomization per agent directory, each depending on the one
    before."""
    dest = destination.metadata.name
    source_name = object_name(dest)
    spec: dict[str, Any] = {"interval": interval}
    if isinstance(store, GitStateStore):
        kind = "GitRepository"
        spec |= {"url": _flux_git_url(store), "ref": {"branch": store.spec.branch}}
        if store.spec.auth_method == "githubApp":
            spec["provider"] = "github"
        if store.spec.secret_ref is not None:
            # Flux's keys, in flux-system on the worker: username/password (basic auth), identity/known_hosts (ssh).
            spec["secretRef"] = {"name": store.spec.secret_ref.name}
    else:
        kind = "Bucket"
        host, plain_http = _bucket_endpoint(store.spec.endpoint)
        # IAM: the store writes with ambient credentials; Flux's `aws` provider reads the same way (node role, IRSA).
        spec |= {
            "provider": "aws" if store.spec.auth_method == "IAM" else "generic",
            "bucketName": store.spec.bucket_name,
            "endpoint": host,
            "insecure": store.spec.insecure or plain_http,
        }
        if store.spec.auth_method == "accessKey" and store.spec.secret_ref is not None:
            # Flux's keys are accesskey/secretkey, not the store's accessKeyID/secretAccessKey.
            spec["secretRef"] = {"name": store.spec.secret_ref.name}
    if destination.spec.filepath.mode == "none":
        # Flux builds a kustomization from every YAML file under the path, and the `.kratix/` state files of mode
        # `none` are not Kubernetes objects: the build would fail on them.
        spec["ignore"] = f"/{join(store.spec.path, destination.spec.path, LEDGER_DIR)}/"
    documents = [_document(FLUX_SOURCE_API, kind, source_name, namespace, dest, spec)]
    previous: str | None = None
    for directory, path in _agent_paths(destination, store):
        name = object_name(dest, directory)
        kustomization: dict[str, Any] = {
            "interval": interval,
            "prune": True,
            "sourceRef": {"kind": kind, "name": source_name},
            "path": f"./{path}",
        }
        if previous is not None:
            kustomization["dependsOn"] = [{"name": previous}]
        documents.append(_document(FLUX_KUSTOMIZE_API, "Kustomization", name, namespace, dest, kustomization))
        previous = name
    return documents


def argocd_manifests(
    destination: Destination,
    store: GitStateStore | BucketStateStore,
    *,
    namespace: str = "argocd",
    project: str = "default",
) -> list[dict[str, Any]]:
    """One Application per agent directory; sync waves order them when an app-of-apps parent syncs them."""
    if isinstance(store, BucketStateStore):
        raise InvalidDocument(
            [
                FieldError(
                    "spec.stateStoreRef.kind",
                    f"ArgoCD reads Git repositories only, and Destination {destination.metadata.name!r} uses "
                    "BucketStateStore "
                    f"{store.metadata.name!r}: use gitops=flux (its Bucket source reads S3) or a GitStateStore",
                )
            ]
        )
    dest = destination.metadata.name
    url = _remote_git_url(store)
    documents = []
    for wave, (directory, path) in enumerate(_agent_paths(destination, store)):
        directory_spec: dict[str, Any] = {"recurse": True}
        if destination.spec.filepath.mode == "none":
            directory_spec["exclude"] = f"{LEDGER_DIR}/*"  # the state files are not Kubernetes objects
        spec = {
            "project": project,
            "source": {
                "repoURL": url,
                "targetRevision": store.spec.branch,
                "path": path or ROOT_DIRECTORY,
                "directory": directory_spec,
            },
            # As Kratix's docs: the namespace only applies to namespaced objects that do not name their own.
            "destination": {"server": IN_CLUSTER, "namespace": "default"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        }
        document = _document(ARGOCD_API, "Application", object_name(dest, directory), namespace, dest, spec)
        document["metadata"]["annotations"] = {ARGOCD_SYNC_WAVE: str(wave)}
        documents.append(document)
    return documents


def object_name(destination: str, directory: str = ROOT_DIRECTORY) -> str:
    """`ktx-<destination>[-<directory>]` as a DNS-1123 label; a name that had to change keeps a hash of the original."""
    suffix = "" if directory == ROOT_DIRECTORY else directory
    wanted = "-".join(p for p in ("ktx", destination, suffix) if p)
    if len(wanted) <= _MAX_NAME and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", wanted):
        return wanted
    digest = hashlib.sha256(wanted.encode()).hexdigest()[:8]
    tail = f"-{digest}" + (f"-{suffix}" if suffix else "")
    head = re.sub(r"[^a-z0-9]+", "-", f"ktx-{destination}".lower())[: _MAX_NAME - len(tail)].rstrip("-")
    return head + tail


def _agent_paths(destination: Destination, store: GitStateStore | BucketStateStore) -> list[tuple[str, str]]:
    """(directory, path from the store's root) for each directory the agent applies, in order."""
    return [
        (d, join(store.spec.path, destination.spec.path, d)) for d in agent_directories(destination.spec.filepath.mode)
    ]


def _document(
    api_version: str, kind: str, name: str, namespace: str, destination: str, spec: dict[str, Any]
) -> dict[str, Any]:
    labels = {MANAGED_BY: "ktx", DESTINATION_LABEL: destination}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def _remote_git_url(store: GitStateStore) -> str:
    """The store's URL if a cluster elsewhere can reach it; a local path or file:// URL only exists on the platform."""
    url = store.spec.url
    scheme, sep, _ = url.partition("://")
    if (sep and scheme in ("http", "https", "ssh")) or (not sep and _SCP_LIKE.match(url)):
        return url
    raise InvalidDocument(
        [
            FieldError(
                "spec.url",
                f"GitStateStore {store.metadata.name!r} has url {url!r}, which a GitOps agent on another cluster "
                "cannot reach: it needs an http(s) or ssh URL",
            )
        ]
    )


def _flux_git_url(store: GitStateStore) -> str:
    """Flux only takes URL syntax: `git@host:org/repo.git` becomes `ssh://git@host/org/repo.git`."""
    url = _remote_git_url(store)
    scp = None if "://" in url else _SCP_LIKE.match(url)
    if scp is None:
        return url
    user = f"{scp['user']}@" if scp["user"] else ""
    return f"ssh://{user}{scp['host']}/{scp['path'].lstrip('/')}"


def _bucket_endpoint(endpoint: str) -> tuple[str, bool]:
    """ktx also accepts `http(s)://host:port`; Flux wants the bare host and says plain HTTP with `insecure`."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint.rstrip("/"), False
    return rest.rstrip("/"), scheme == "http"
