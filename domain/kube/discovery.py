"""Discovery documents, pure: what /api and /apis answer, in the aggregated v2 shape (apidiscovery.k8s.io/v2,
what kubectl asks for first) and the legacy shapes (APIVersions, APIGroupList, APIGroup, APIResourceList)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Protocol

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
# The version ktx claims: the kubectl it is tested with (1.37), so kubectl prints no version-skew warning.
VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0+ktx",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "1970-01-01T00:00:00Z",
    "goVersion": "",
    "compiler": "ktx",
    "platform": "linux/amd64",
}
STATUS_VERBS = ("get", "patch", "update")


class Described(Protocol):
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    subresources: tuple[str, ...]


def wants_aggregated(accept: str) -> bool:
    """Whether the Accept header asks for APIGroupDiscoveryList v2 (client-go sends it first, JSON as fallback)."""
    for offer in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in offer.split(";")[1:])}
        if (params.get("g"), params.get("v"), params.get("as")) == (
            "apidiscovery.k8s.io",
            "v2",
            "APIGroupDiscoveryList",
        ):
            return True
    return False


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order (GA, then beta, then alpha, higher numbers first; others last, by name): the first
    is the group's preferred version."""
    found = _KUBE_VERSION.match(version)
    if not found:
        return (3, 0, 0, version)
    major, stage, minor = found.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def _by_group(resources: Iterable[Described]) -> dict[str, dict[str, list[Described]]]:
    groups: dict[str, dict[str, list[Described]]] = {}
    for r in resources:
        groups.setdefault(r.group, {}).setdefault(r.version, []).append(r)
    return {
        g: {v: versions[v] for v in sorted(versions, key=version_priority)}
        for g, versions in sorted(groups.items(), key=lambda kv: kv[0])
    }


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(resources: Iterable[Described]) -> dict[str, Any]:
    groups = [api_group(g, list(versions)) for g, versions in _by_group(resources).items() if g]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group_versions(resources: Iterable[Described], group: str) -> list[str]:
    return list(_by_group(resources).get(group, {}))


def api_resource_list(resources: Iterable[Described], group: str, version: str) -> dict[str, Any]:
    listed: list[dict[str, Any]] = []
    for r in resources:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        listed.append(entry)
        for sub in r.subresources:
            listed.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(STATUS_VERBS),
                }
            )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(group, version), "resources": listed}


def _resource_discovery(r: Described) -> dict[str, Any]:
    kind = {"group": r.group, "version": r.version, "kind": r.kind}
    entry: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": kind,
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {"subresource": sub, "responseKind": kind, "verbs": list(STATUS_VERBS)} for sub in r.subresources
        ]
    return entry


def aggregated(resources: Iterable[Described], core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (the core group only) or /apis (every named group)."""
    items = [
        {
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {"version": v, "resources": [_resource_discovery(r) for r in listed], "freshness": "Current"}
                for v, listed in versions.items()
            ],
        }
        for group, versions in _by_group(resources).items()
        if (group == "") == core
    ]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
