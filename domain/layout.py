"""Kratix's state-store layout for the three filepath modes, so existing Flux/ArgoCD setups keep working.

Paths here are relative to the state store's own `path`; the writers put that prefix in front.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Literal

import yaml
from pydantic import BaseModel

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
    """Join path segments; '', '.' and '/' mean 'the root' (Kratix: a Destination path of '.' or '/' is the store root)."""
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
    """Kratix names a Work `<identifier>-<5 random chars>`, stable once created; ours is derived, so it is stable by construction."""
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


def group_slot(mode: FilepathMode, dest_path: str, nested_dir: str, namespace: str, workplacement: str,
               filename: str | None = None) -> Slot:
    if mode == "none":
        return Slot(mode=mode, path=join(dest_path), key=join(dest_path, LEDGER_DIR, f"{namespace}-{workplacement}.yaml"))
    if mode == "aggregatedYAML":
        return Slot(mode=mode, path=join(dest_path, filename or DEFAULT_AGGREGATE_FILE), key=workplacement)
    return Slot(mode=mode, path=nested_dir)


def canary_files(dest_path: str, mode: FilepathMode = "nestedByMetadata") -> dict[str, str]:
    """The two canary documents a Destination gets so an operator can see that writes reach it."""
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kratix-worker-system\n"
    configmap = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kratix-info\n  namespace: kratix-worker-system\n"
        "data:\n  canary: the confirms your infrastructure is reading from Kratix state stores\n"
    )
    nested = mode == "nestedByMetadata"
    return {
        join(dest_path, DEPENDENCIES_DIR if nested else "", CANARY_NAMESPACE_FILE): namespace,
        join(dest_path, RESOURCES_DIR if nested else "", CANARY_CONFIGMAP_FILE): configmap,
    }


def agent_directories(mode: FilepathMode) -> list[str]:
    """The directories under a Destination path a GitOps agent applies, in the order it must apply them.

    Kratix asks for dependencies/ before resources/ in nestedByMetadata (its canary Namespace and a Promise's CRDs are
    there); the other modes write everything flat under the Destination path, so there is nothing to order.
    """
    return [DEPENDENCIES_DIR, RESOURCES_DIR] if mode == "nestedByMetadata" else [ROOT_DIRECTORY]


# --- filepath mode `none`: the state file of one WorkPlacement ---

def ledger_text(files: list[str]) -> str:
    return yaml.safe_dump({"files": sorted(files)}, sort_keys=False)


def ledger_files(text: bytes | None) -> list[str]:
    if not text:
        return []
    data = yaml.safe_load(text) or {}
    return [str(f) for f in data.get("files") or []] if isinstance(data, dict) else []


# --- filepath mode `aggregatedYAML` ---
# Kratix joins every workload of every WorkPlacement, sorted by WorkPlacement name, with "\n---\n". Each block here
# also starts with a YAML comment naming its WorkPlacement and file, which Kubernetes tools ignore, so one group's
# documents can be replaced or removed without a separate ledger and without the whole Destination in memory.

_MARKER = "# ktx.io/source: "
_BLOCK = re.compile(r"(?:\A|\n---\n)" + re.escape(_MARKER) + r"([^\n]*)\n")


def parse_aggregate(text: bytes | None) -> dict[tuple[str, str], str]:
    """{(workplacement, filepath): content} from an aggregate file written by `compose_aggregate`."""
    if not text:
        return {}
    body = text.decode()
    blocks: dict[tuple[str, str], str] = {}
    matches = list(_BLOCK.finditer(body))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        owner, _, filepath = match.group(1).partition(" ")
        blocks[(owner, filepath)] = body[match.end():end].rstrip("\n")
    return blocks


def compose_aggregate(blocks: dict[tuple[str, str], str]) -> str:
    parts = [f"{_MARKER}{owner} {filepath}\n{content.rstrip(chr(10))}" for (owner, filepath), content in sorted(blocks.items())]
    return "\n---\n".join(parts) + "\n" if parts else ""
