"""Kratix's state-store layout for the three filepath modes, so existing Flux/ArgoCD setups keep working.

Paths here are relative to the state store's own `path`; the writers put that prefix in front.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Literal

from pydantic import BaseModel

from domain.kube_yaml import marshal
from domain.parsing import MalformedInput, load_metadata

FilepathMode = Literal["nestedByMetadata", "aggregatedYAML", "none"]

ROOT_DIRECTORY = "."
# nestedByMetadata splits a Destination in two so Promise-level output can be applied before the resources using it.
DEPENDENCIES_DIR = "dependencies"
RESOURCES_DIR = "resources"
# filepath mode `none`: where the per-WorkPlacement state files live, under the Destination path.
LEDGER_DIR = ".kratix"
CANARY_NAMESPACE_FILE = "kratix-canary-namespace.yaml"
CANARY_CONFIGMAP_FILE = "kratix-canary-configmap.yaml"
DEFAULT_AGGREGATE_FILE = "aggregated.yaml"
# Kratix's platform namespace: the WorkPlacement namespace of Promise-level output.
PLATFORM_NAMESPACE = "kratix-platform-system"


def group_id(directory: str) -> str:
    """Workload group id: md5 of the output sub-directory ('.' for the root)."""
    return hashlib.md5(directory.encode()).hexdigest()


def id5(directory: str) -> str:
    return group_id(directory)[:5]


def join(*parts: str) -> str:
    """Join path segments; '', '.' and '/' mean 'the root' (Kratix: a Destination path of '.' or '/' is the store
    root)."""
    kept = [p.strip("/") for p in parts if p and p.strip("/") not in ("", ".")]
    return posixpath.normpath(posixpath.join(*kept)) if kept else ""


def nested_dir(dest_path: str, nested_root: str, directory: str) -> str:
    """nestedByMetadata: <dest>/<root>/<first 5 of the group id>/, replaced wholesale on each write."""
    return join(dest_path, nested_root, id5(directory))


def resource_nested_root(namespace: str, promise: str, resource: str, pipeline: str) -> str:
    return join(RESOURCES_DIR, namespace, promise, resource, pipeline)


def promise_nested_root(promise: str, pipeline: str) -> str:
    return join(DEPENDENCIES_DIR, promise, pipeline)


def static_nested_root(promise: str) -> str:
    """Static `spec.dependencies` have no pipeline segment: <dest>/dependencies/<promise>/5058f/."""
    return join(DEPENDENCIES_DIR, promise)


def static_dependencies_file(promise: str) -> str:
    return f"static/{promise}-dependencies.yaml"


def work_name(identifier: str) -> str:
    """Kratix names a Work `<identifier>-<5 random chars>`, stable once created; ours is derived, so it is stable by
    construction."""
    return f"{identifier}-{hashlib.sha256(identifier.encode()).hexdigest()[:5]}"


def workplacement_name(work: str, destination: str, directory: str) -> str:
    return f"{work}.{destination}-{id5(directory)}"


class Slot(BaseModel):
    """Where one workload group lives in a store, per the Destination's filepath mode.

    nestedByMetadata: `path` is the group's own directory, replaced wholesale on each write.
    none: `path` is the Destination directory the files are written flat into; `key` is the `.kratix/` state file
    listing them, so a later write or a delete removes exactly what this group wrote.
    aggregatedYAML: `path` is the Destination's single file; `key` is the WorkPlacement whose documents it holds.
    """

    mode: FilepathMode = "nestedByMetadata"
    path: str
    key: str = ""


def group_slot(
    mode: FilepathMode, dest_path: str, nested_dir: str, namespace: str, workplacement: str, filename: str | None = None
) -> Slot:
    if mode == "none":
        return Slot(
            mode=mode, path=join(dest_path), key=join(dest_path, LEDGER_DIR, f"{namespace}-{workplacement}.yaml")
        )
    if mode == "aggregatedYAML":
        return Slot(mode=mode, path=join(dest_path, filename or DEFAULT_AGGREGATE_FILE), key=workplacement)
    return Slot(mode=mode, path=nested_dir)


# The canary documents as Kratix's Destination controller marshals its typed v1.Namespace and v1.ConfigMap with
# sigs.k8s.io/yaml: keys sorted, the Namespace's `spec` and `status` structs kept as `{}` (JSON omitempty never drops
# a struct), and no `creationTimestamp` (apimachinery 0.36 tags it omitzero, where it used to write `null`).
_CANARY_NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "kratix-worker-system"},
    "spec": {},
    "status": {},
}
_CANARY_CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "kratix-info", "namespace": "kratix-worker-system"},
    "data": {"canary": "this confirms your infrastructure is reading from Kratix state stores"},
}


def canary_files(dest_path: str, mode: FilepathMode = "nestedByMetadata") -> dict[str, str]:
    """The two canary documents a Destination gets so an operator can see that writes reach it."""
    nested = mode == "nestedByMetadata"
    return {
        join(dest_path, DEPENDENCIES_DIR if nested else "", CANARY_NAMESPACE_FILE): marshal(_CANARY_NAMESPACE),
        join(dest_path, RESOURCES_DIR if nested else "", CANARY_CONFIGMAP_FILE): marshal(_CANARY_CONFIGMAP),
    }


def agent_directories(mode: FilepathMode) -> list[str]:
    """The directories under a Destination path a GitOps agent applies, in the order it must apply them.

    Kratix asks for dependencies/ before resources/ in nestedByMetadata (its canary Namespace and a Promise's CRDs are
    there); the other modes write everything flat under the Destination path, so there is nothing to order.
    """
    return [DEPENDENCIES_DIR, RESOURCES_DIR] if mode == "nestedByMetadata" else [ROOT_DIRECTORY]


def walk_order(path: str) -> list[str]:
    """Sort key of the order Kratix's pipeline adapter lists an output in: os.ReadDir (by name) depth first."""
    return path.split("/")


# --- filepath mode `none`: the state file of one WorkPlacement ---


def ledger_text(files: list[str]) -> str:
    """As Kratix's `yaml.Marshal(StateFile{Files: ...})`: the paths in the order its WorkPlacement holds the files."""
    return marshal({"files": sorted(files, key=walk_order)})


def ledger_files(text: bytes | None, dest_path: str) -> list[str]:
    """The files a state file lists that its own placement may remove: paths in their normal form under its
    Destination path, none of them bookkeeping (`reserved_output_path`).

    Pipelines cannot write state files (their output may not hold `.kratix/`), but a state file written before that
    rule, or by hand, still must not make a delete reach the repository's own files, another Destination, or another
    placement's record: anything else it lists is left where it is. A state file that cannot be read lists nothing,
    for the same reason: what is not known to be this placement's stays.
    """
    if not text:
        return []
    try:
        data = load_metadata(text.decode("utf-8", errors="replace"))
    except MalformedInput:
        return []
    listed = data.get("files") if isinstance(data, dict) else None
    root = join(dest_path)
    owned = []
    for path in listed if isinstance(listed, list) else []:
        if (
            not isinstance(path, str)
            or path in (".", "..")
            or path.startswith(("/", "../"))
            or posixpath.normpath(path) != path
        ):
            continue
        if root and not path.startswith(f"{root}/"):
            continue
        if reserved_output_path(path[len(root) + 1 :] if root else path) is None:
            owned.append(path)
    return owned


# --- filepath mode `aggregatedYAML` ---
# Kratix rebuilds the file from its WorkPlacement objects on every write: the workloads of every live WorkPlacement of
# the Destination, WorkPlacements by name, each one's files in the order its pipeline adapter walked the output
# (os.ReadDir, depth first, so by path segment), the contents joined by "\n---\n" as they are, nothing added.
# ktx has no WorkPlacement objects to list, and the file alone cannot say which block is whose, so an index beside
# it lists each block's WorkPlacement, file and length. The index lives under `.ktx/aggregated/` at the store's
# path, outside the Destination's path that the GitOps agent reads, so that path holds exactly Kratix's bytes; it is
# committed with the file, so the two change together (a Destination at the store's root does see the index).

AGGREGATE_INDEX_DIR = ".ktx/aggregated"
_SEPARATOR = b"\n---\n"

AggregateBlocks = dict[tuple[str, str], bytes]


def aggregate_index_path(aggregate_path: str) -> str:
    return join(AGGREGATE_INDEX_DIR, f"{aggregate_path}.index")


def parse_aggregate(content: bytes | None, index: bytes | None) -> AggregateBlocks:
    """{(workplacement, filepath): content} of an aggregate file, read through the index `compose_aggregate` wrote.

    A file that no longer matches its index (edited outside ktx) yields nothing: the groups written next replace it,
    and the others come back with their next write (at the latest the Destination's periodic re-sync).
    """
    if content is None or not index:
        return {}
    blocks: AggregateBlocks = {}
    offset = 0
    try:
        for number, line in enumerate(index.decode().splitlines()):
            length, owner, filepath = line.split(" ", 2)
            if number and content[offset : offset + len(_SEPARATOR)] != _SEPARATOR:
                return {}
            offset += len(_SEPARATOR) if number else 0
            blocks[(owner, filepath)] = content[offset : offset + int(length)]
            offset += int(length)
    except ValueError:
        return {}
    return blocks if offset == len(content) else {}


def compose_aggregate(blocks: AggregateBlocks) -> tuple[bytes, bytes]:
    """(the aggregate file as Kratix writes it, its index)."""
    ordered = sorted(blocks.items(), key=lambda item: (item[0][0], walk_order(item[0][1])))
    content = _SEPARATOR.join(text for _, text in ordered)
    index = "".join(f"{len(text)} {owner} {filepath}\n" for (owner, filepath), text in ordered)
    return content, index.encode()


# --- what a pipeline may not write ---
# The records deletes are computed from (Kratix's `.kratix/` state files, ktx's `.ktx/` indexes), the Destination's
# own canary documents and the repository's `.git` are bookkeeping: a pipeline that could write them could make
# another placement's delete remove any file, or its own documents outlive it. Any path segment counts, not only the
# first: Destinations may share a store at nested paths, so a directory of one can be the root of another.
_RESERVED_DIRS = (LEDGER_DIR, AGGREGATE_INDEX_DIR.split("/")[0], ".git")
_RESERVED_FILES = (CANARY_NAMESPACE_FILE, CANARY_CONFIGMAP_FILE)


def reserved_output_path(path: str) -> str | None:
    """Why a pipeline may not write `path` (relative to its output directory), or None when it may."""
    parts = path.split("/")
    reserved = next((part for part in parts if part in _RESERVED_DIRS), None)
    if reserved is not None:
        return f"{reserved}/ holds the state store's own records, which a pipeline may not write"
    if parts[-1] in _RESERVED_FILES:
        return f"{parts[-1]} is the Destination's canary file, which a pipeline may not write"
    # State files and indexes list one path a line, and the path of a file is text in every record that names it.
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "has a control character in its name"
    return None
