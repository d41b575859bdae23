"""Kratix's state-store directory layout (filepath mode nestedByMetadata), so existing Flux/ArgoCD setups keep working."""

from __future__ import annotations

import hashlib
import posixpath

ROOT_DIRECTORY = "."
CANARY_NAMESPACE_FILE = "kratix-canary-namespace.yaml"
CANARY_CONFIGMAP_FILE = "kratix-canary-configmap.yaml"


def group_id(directory: str) -> str:
    """Workload group id: md5 of the output sub-directory ('.' for the root)."""
    return hashlib.md5(directory.encode()).hexdigest()


def id5(directory: str) -> str:
    return group_id(directory)[:5]


def join(*parts: str) -> str:
    """Join path segments; '', '.' and '/' mean 'the root' (Kratix: a Destination path of '.' or '/' is the store root)."""
    kept = [p.strip("/") for p in parts if p and p.strip("/") not in ("", ".")]
    return posixpath.normpath(posixpath.join(*kept)) if kept else ""


def resource_dir(dest_path: str, namespace: str, promise: str, resource: str, pipeline: str, directory: str) -> str:
    return join(dest_path, "resources", namespace, promise, resource, pipeline, id5(directory))


def promise_dir(dest_path: str, promise: str, pipeline: str, directory: str) -> str:
    return join(dest_path, "dependencies", promise, pipeline, id5(directory))


def static_dependencies_dir(dest_path: str, promise: str) -> str:
    """Static `spec.dependencies` have no pipeline segment: <dest>/dependencies/<promise>/5058f/."""
    return join(dest_path, "dependencies", promise, id5(ROOT_DIRECTORY))


def static_dependencies_file(promise: str) -> str:
    return f"static/{promise}-dependencies.yaml"


def resource_root(dest_path: str, namespace: str, promise: str, resource: str) -> str:
    return join(dest_path, "resources", namespace, promise, resource)


def promise_root(dest_path: str, promise: str) -> str:
    return join(dest_path, "dependencies", promise)


def canary_files(dest_path: str) -> dict[str, str]:
    """The two canary documents a Destination gets so an operator can see that writes reach it."""
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kratix-worker-system\n"
    configmap = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kratix-info\n  namespace: kratix-worker-system\n"
        "data:\n  canary: the confirms your infrastructure is reading from Kratix state stores\n"
    )
    return {
        join(dest_path, "dependencies", CANARY_NAMESPACE_FILE): namespace,
        join(dest_path, "resources", CANARY_CONFIGMAP_FILE): configmap,
    }
