"""The Flux and ArgoCD objects that make a Destination's cluster pull its directory: paths per filepath mode and store
kind, ordering, credentials by reference, and every document valid against the agents' APIs (tests/schemas)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from referencing import Registry, Resource

from domain.documents import BucketStateStore, Destination, GitStateStore
from domain.errors import InvalidDocument
from domain.gitops import argocd_manifests, flux_manifests, manifests, object_name
from domain.layout import canary_files, join, nested_dir, resource_nested_root

KRATIX = "platform.kratix.io/v1alpha1"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
_RESOURCES = [Resource.from_contents(json.loads(p.read_text())) for p in sorted(SCHEMAS.glob("*.json"))]
REGISTRY = Registry().with_resources((r.id(), r) for r in _RESOURCES)
SCHEMA_OF = {
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): "urn:ktx:schemas:flux-gitrepository",
    ("source.toolkit.fluxcd.io/v1", "Bucket"): "urn:ktx:schemas:flux-bucket",
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): "urn:ktx:schemas:flux-kustomization",
    ("argoproj.io/v1alpha1", "Application"): "urn:ktx:schemas:argocd-application",
}


def validate(document: dict[str, Any]) -> None:
    schema = REGISTRY.contents(SCHEMA_OF[(document["apiVersion"], document["kind"])])
    jsonschema.Draft202012Validator(
        schema, registry=REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    # kubernetes-validate only knows built-in kinds, but ObjectMeta is the same everywhere: check ours as a ConfigMap's.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document["metadata"]},
        kubernetes_validate.latest_version(),
        strict=True,
    )


def destination(
    name: str = "dev",
    path: str = "/clusters/dev/",
    mode: str = "nestedByMetadata",
    store: tuple[str, str] = ("GitStateStore", "fleet"),
) -> Destination:
    return Destination.model_validate(
        {
            "apiVersion": KRATIX,
            "kind": "Destination",
            "metadata": {"name": name},
            "spec": {"path": path, "stateStoreRef": {"kind": store[0], "name": store[1]}, "filepath": {"mode": mode}},
        }
    )


def git(
    url: str = "https://git.example.com/platform/fleet.git", path: str = "/platform/", **spec: Any
) -> GitStateStore:
    return GitStateStore.model_validate(
        {
            "apiVersion": KRATIX,
            "kind": "GitStateStore",
            "metadata": {"name": "fleet"},
            "spec": {"url": url, "path": path, "branch": "release", **spec},
        }
    )


def bucket(path: str = "/platform/", **spec: Any) -> BucketStateStore:
    return BucketStateStore.model_validate(
        {
            "apiVersion": KRATIX,
            "kind": "BucketStateStore",
            "metadata": {"name": "fleet"},
            "spec": {"bucketName": "kratix", "endpoint": "minio.example.com:9000", "path": path, **spec},
        }
    )


GIT_STORES = {
    "basicAuth": (
        git(authMethod="basicAuth", secretRef={"name": "git-creds"}),
        "https://git.example.com/platform/fleet.git",
        "git-creds",
    ),
    "ssh": (
        git(url="git@github.com:org/fleet.git", authMethod="ssh", secretRef={"name": "git-ssh"}),
        "ssh://git@github.com/org/fleet.git",
        "git-ssh",
    ),
    "ssh-url": (
        git(url="ssh://git@git.example.com:2222/org/fleet.git", authMethod="ssh", secretRef={"name": "git-ssh"}),
        "ssh://git@git.example.com:2222/org/fleet.git",
        "git-ssh",
    ),
    "public": (git(url="https://github.com/org/fleet"), "https://github.com/org/fleet", None),
}
BUCKET_STORES = {
    "accessKey": (
        bucket(authMethod="accessKey", secretRef={"name": "s3-creds", "namespace": "default"}),
        {
            "provider": "generic",
            "endpoint": "minio.example.com:9000",
            "insecure": False,
            "secretRef": {"name": "s3-creds"},
        },
    ),
    "IAM": (
        bucket(authMethod="IAM", endpoint="s3.eu-west-1.amazonaws.com"),
        {"provider": "aws", "endpoint": "s3.eu-west-1.amazonaws.com", "insecure": False},
    ),
    "insecure": (
        bucket(insecure=True, secretRef={"name": "s3-creds"}),
        {
            "provider": "generic",
            "endpoint": "minio.example.com:9000",
            "insecure": True,
            "secretRef": {"name": "s3-creds"},
        },
    ),
    "http-endpoint": (
        bucket(endpoint="http://minio.minio.svc:9000/", secretRef={"name": "s3-creds"}),
        {
            "provider": "generic",
            "endpoint": "minio.minio.svc:9000",
            "insecure": True,
            "secretRef": {"name": "s3-creds"},
        },
    ),
}
# (mode, store path, destination path) -> the paths the agent applies, in order, from the store's root.
LAYOUTS = [
    (
        "nestedByMetadata",
        "/platform/",
        "/clusters/dev/",
        ["platform/clusters/dev/dependencies", "platform/clusters/dev/resources"],
    ),
    ("nestedByMetadata", "", "/", ["dependencies", "resources"]),
    ("nestedByMetadata", "platform", ".", ["platform/dependencies", "platform/resources"]),
    ("none", "/platform/", "clusters//dev/", ["platform/clusters/dev"]),
    ("none", "", "/", [""]),
    ("aggregatedYAML", "/platform/", "/clusters/dev", ["platform/clusters/dev"]),
    ("aggregatedYAML", "", "dev/", ["dev"]),
]


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


@pytest.mark.parametrize("store_case", sorted(GIT_STORES))
@pytest.mark.parametrize("mode, store_path, dest_path, paths", LAYOUTS)
def test_flux_on_a_git_store(store_case: str, mode: str, store_path: str, dest_path: str, paths: list[str]) -> None:
    store, url, secret = GIT_STORES[store_case]
    store = store.model_copy(update={"spec": store.spec.model_copy(update={"path": store_path})})
    documents = flux_manifests(destination(path=dest_path, mode=mode), store)
    for document in documents:
        validate(document)
    [source] = by_kind(documents, "GitRepository")
    assert documents[0] is source  # the source comes first, so one `kubectl apply` creates it before its users
    assert source["metadata"]["name"] == "ktx-dev" and source["metadata"]["namespace"] == "flux-system"
    assert source["spec"]["url"] == url and source["spec"]["ref"] == {"branch": "release"}
    assert source["spec"].get("secretRef") == ({"name": secret} if secret else None)
    assert_flux_kustomizations(documents, "GitRepository", mode, paths)
    if mode == "none":
        assert source["spec"]["ignore"] == f"/{join(paths[0], '.kratix')}/"
    else:
        assert "ignore" not in source["spec"]


@pytest.mark.parametrize("store_case", sorted(BUCKET_STORES))
@pytest.mark.parametrize("mode, store_path, dest_path, paths", LAYOUTS)
def test_flux_on_a_bucket_store(store_case: str, mode: str, store_path: str, dest_path: str, paths: list[str]) -> None:
    store, expected = BUCKET_STORES[store_case]
    store = store.model_copy(update={"spec": store.spec.model_copy(update={"path": store_path})})
    documents = flux_manifests(destination(path=dest_path, mode=mode, store=("BucketStateStore", "fleet")), store)
    for document in documents:
        validate(document)
    [source] = by_kind(documents, "Bucket")
    assert documents[0] is source
    spec = {k: v for k, v in source["spec"].items() if k != "ignore"}
    assert spec == {"interval": "1m", "bucketName": "kratix", **expected}
    assert_flux_kustomizations(documents, "Bucket", mode, paths)


def assert_flux_kustomizations(documents: list[dict[str, Any]], source_kind: str, mode: str, paths: list[str]) -> None:
    kustomizations = by_kind(documents, "Kustomization")
    assert [k["spec"]["path"] for k in kustomizations] == [f"./{p}" for p in paths]
    assert all(
        k["spec"]["prune"] is True and k["spec"]["sourceRef"] == {"kind": source_kind, "name": "ktx-dev"}
        for k in kustomizations
    )
    if mode == "nestedByMetadata":
        dependencies, resources = kustomizations
        assert dependencies["metadata"]["name"] == "ktx-dev-dependencies" and "dependsOn" not in dependencies["spec"]
        assert resources["metadata"]["name"] == "ktx-dev-resources"
        assert resources["spec"]["dependsOn"] == [{"name": "ktx-dev-dependencies"}]
    else:
        [single] = kustomizations
        assert single["metadata"]["name"] == "ktx-dev" and "dependsOn" not in single["spec"]
    for document in documents:
        assert document["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ktx", "ktx.io/destination": "dev"}


@pytest.mark.parametrize("store_case", sorted(GIT_STORES))
@pytest.mark.parametrize("mode, store_path, dest_path, paths", LAYOUTS)
def test_argocd_on_a_git_store(store_case: str, mode: str, store_path: str, dest_path: str, paths: list[str]) -> None:
    store, _, _ = GIT_STORES[store_case]
    store = store.model_copy(update={"spec": store.spec.model_copy(update={"path": store_path})})
    applications = argocd_manifests(destination(path=dest_path, mode=mode), store)
    for document in applications:
        validate(document)
    assert {a["kind"] for a in applications} == {"Application"}
    # ArgoCD takes scp-like URLs as they are, and finds credentials by URL, not by a reference on the Application.
    assert all(a["spec"]["source"]["repoURL"] == store.spec.url for a in applications)
    assert [a["spec"]["source"]["path"] for a in applications] == [p or "." for p in paths]
    assert all(
        a["metadata"]["namespace"] == "argocd"
        and a["spec"]["source"]["targetRevision"] == "release"
        and a["spec"]["source"]["directory"]["recurse"] is True
        and a["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
        and a["spec"]["syncPolicy"] == {"automated": {"prune": True, "selfHeal": True}}
        for a in applications
    )
    waves = [int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for a in applications]
    assert waves == sorted(waves) and len(set(waves)) == len(waves)  # dependencies sync in an earlier wave
    names = [a["metadata"]["name"] for a in applications]
    assert names == (["ktx-dev-dependencies", "ktx-dev-resources"] if mode == "nestedByMetadata" else ["ktx-dev"])
    assert [a["spec"]["source"]["directory"].get("exclude") for a in applications] == [
        ".kratix/*" if mode == "none" else None
    ] * len(paths)


@pytest.mark.parametrize("mode", ["nestedByMetadata", "none", "aggregatedYAML"])
def test_the_agent_paths_hold_everything_the_platform_writes_there(mode: str) -> None:
    """Cross-check against the writers' layout: each canary and a resource's output fall under the path meant for it."""
    store = git(path="/platform/")
    dest = destination(path="/clusters/dev/", mode=mode)
    kustomizations = by_kind(flux_manifests(dest, store), "Kustomization")
    watched = [k["spec"]["path"].removeprefix("./") for k in kustomizations]
    written = [join(store.spec.path, f) for f in canary_files(dest.spec.path, mode)]
    written.append(
        join(
            store.spec.path,
            nested_dir(dest.spec.path, resource_nested_root("default", "p", "r", "write"), "."),
            "cm.yaml",
        )
    )
    for path in written:
        assert sum(path.startswith(w + "/") for w in watched) == 1, (path, watched)
    if mode == "nestedByMetadata":  # the canary Namespace is applied before the ConfigMap in it
        assert written[0].startswith(watched[0] + "/") and written[1].startswith(watched[1] + "/")


def test_argocd_cannot_read_a_bucket() -> None:
    with pytest.raises(InvalidDocument) as refused:
        manifests("argocd", destination(store=("BucketStateStore", "fleet")), bucket(secretRef={"name": "s3-creds"}))
    [error] = refused.value.errors
    assert error.field == "spec.stateStoreRef.kind" and "ArgoCD reads Git repositories only" in error.reason
    assert "gitops=flux" in error.reason


@pytest.mark.parametrize(
    "url",
    ["/var/lib/ktx/state/kratix.git", "file:///srv/fleet.git", "relative/fleet.git", "git://git.example.com/fleet.git"],
)
@pytest.mark.parametrize("agent", ["flux", "argocd"])
def test_a_store_only_the_platform_can_reach_is_refused(url: str, agent: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        manifests(agent, destination(), git(url=url))  # type: ignore[arg-type]
    assert refused.value.errors[0].field == "spec.url" and "http(s) or ssh" in refused.value.errors[0].reason


def test_github_app_stores_use_the_github_provider() -> None:
    [source, *_] = flux_manifests(destination(), git(authMethod="githubApp", secretRef={"name": "gh-app"}))
    validate(source)
    assert source["spec"]["provider"] == "github" and source["spec"]["secretRef"] == {"name": "gh-app"}


def test_names_are_dns_labels_and_deterministic() -> None:
    long_a, long_b = "a" * 30 + "." + "b" * 32, "a" * 30 + "." + "c" * 32
    for name in (long_a, long_b, "dev.eu-west-1", "x"):
        for directory in ("dependencies", "resources", "."):
            made = object_name(name, directory)
            assert len(made) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", made), made
            assert made == object_name(name, directory)
            if directory != ".":
                assert made.endswith(f"-{directory}")
    assert object_name(long_a, "resources") != object_name(long_b, "resources")
    assert object_name("dev.eu", ".") != object_name("dev-eu", ".")  # a changed name keeps a hash of the original
    assert object_name("dev", "dependencies") == "ktx-dev-dependencies"
    for document in [*flux_manifests(destination(long_a), git()), *argocd_manifests(destination(long_a), git())]:
        validate(document)
        assert document["metadata"]["labels"]["ktx.io/destination"] == long_a


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["spec"].update(prun=d["spec"].pop("prune")),
        lambda d: d["spec"].update(dependOn=[{"name": "x"}]),
        lambda d: d["spec"]["sourceRef"].update(kind="Gitrepository"),
        lambda d: d["spec"].update(interval="1 minute"),
        lambda d: d["metadata"].update(name="ktx_dev"),
        lambda d: d["metadata"]["labels"].update({"ktx.io/destination": "x" * 64}),
    ],
)
def test_the_schemas_catch_typos(mutate: Any) -> None:
    kustomization = by_kind(flux_manifests(destination(), git()), "Kustomization")[1]
    validate(kustomization)
    broken = copy.deepcopy(kustomization)
    mutate(broken)
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(broken)
