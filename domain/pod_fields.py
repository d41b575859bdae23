"""The Pod fields of a Pipeline that ktx reads itself: env sources, volumes and their mounts, image pull policy and
resources. Checked at apply (domain/pipeline_rules.py), read by the podman runner to build its command line, pure.

Kubernetes' own shapes and words (core/v1 EnvVarSource, EnvFromSource, Volume, VolumeMount, ResourceRequirements),
narrowed where the value becomes part of a podman option (a mount path with ',' or ':' would be a second mount
option) or where ktx serves nothing to read (ConfigMaps: refused, the field named, never accepted and ignored).
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from domain.errors import FieldError
from domain.grammar import dns_label, env_var_name
from domain.labels import label_key_error
from domain.names import NAME_PATTERN, SUBDOMAIN_MAX
from domain.validation import validate_name

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# What `podman run --pull` calls each policy.
PODMAN_PULL = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
# Kratix's built-in container resources (api/v1alpha1/pipeline_types.go DefaultResourceRequirements), used for every
# container that sets no `resources` unless the platform configuration says otherwise.
KRATIX_DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "128Mi"},
    "limits": {"cpu": "200m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
}
# Kratix's Container (api/v1alpha1/pipeline_types.go), decoded strictly by Kratix, and ktx's workingDir.
CONTAINER_FIELDS = {
    "name",
    "image",
    "args",
    "command",
    "env",
    "envFrom",
    "volumeMounts",
    "imagePullPolicy",
    "securityContext",
    "resources",
    "workingDir",
}
# Volume sources a runner may be given; configMap needs ConfigMaps, which ktx does not serve.
NOT_SERVED = {"configMap": "ConfigMaps are not served by ktx: put the data in a Secret (a `secret` volume)"}
# What the podman runner mounts itself; other sources (hostPath, persistentVolumeClaim, ...) need the Kubernetes runner.
PODMAN_VOLUMES = ("secret", "emptyDir")
# Secret keys (Kubernetes' IsConfigMapKey), also the file names of a secret volume's default items.
_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# A mount path becomes part of podman's `--volume=SRC:DST[:ro]`: absolute, plain characters, no ':' or ','.
_MOUNT_PATH = re.compile(r"/[A-Za-z0-9._/+@=-]*")
MOUNT_PATH_MAX = 1024
# Kratix's own mounts: a user mount there would hide the pipeline contract.
RESERVED_MOUNTS = ("/kratix/input", "/kratix/output", "/kratix/metadata")
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?")
_SUFFIX = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# The podman runner honours these resources; any other (ephemeral-storage, extended resources) is stated as ignored.
PODMAN_RESOURCES = ("cpu", "memory")
# The fieldRef paths Kubernetes gives an environment variable (its validEnvDownwardAPIFieldPathExpressions), besides
# `metadata.labels['<key>']` and `metadata.annotations['<key>']`.
ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
# What the podman runner gives exactly (activities/pipelines/downward_api.py); the others name a node or a Pod network
# address, which a container on the worker's host does not have.
PODMAN_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.serviceAccountName")
_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")
# Kubernetes' validEnvDownwardAPIResourceFieldPathExpressions, and its hugepages prefixes.
RESOURCE_FIELDS = tuple(
    f"{part}.{name}" for part in ("limits", "requests") for name in ("cpu", "memory", "ephemeral-storage")
)
HUGEPAGES_PREFIXES = ("limits.hugepages-", "requests.hugepages-")
# Kubernetes' validContainerResourceDivisorForCPU and ForMemory (ephemeral-storage and hugepages take memory's), as
# values: `1000m` is `1`, as the apiserver compares the canonical form.
CPU_DIVISORS = ("1m", "1")
MEMORY_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
MAX_QUANTITY_LENGTH = 64
MAX_MODE = 0o777


def quantity(value: object) -> Decimal:
    """A Kubernetes quantity (`100m`, `0.5`, `256Mi`, `1e3`) as a number; ValueError if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{value!r} is not a quantity")
    text = str(value)
    match = _QUANTITY.fullmatch(text) if len(text) <= MAX_QUANTITY_LENGTH else None
    if match is None:
        raise ValueError(f"{text!r} is not a quantity")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        # `E` and `Ei` are exa and exbi; an exponent is `e`/`E` followed by digits.
        scale = _SUFFIX[suffix] if suffix in _SUFFIX else Decimal(f"1{suffix}")
        amount = Decimal(number) * scale
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a quantity") from exc
    if amount < 0:
        raise ValueError(f"{text!r} must not be negative")
    return amount


def pull_policy(image: str, own: str | None, default: str | None) -> str:
    """The container's policy, else the platform's default, else Kubernetes' defaulting: Always for `:latest` or no
    tag, IfNotPresent for any other tag or a digest."""
    if own or default:
        return own or default or ""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def effective_resources(own: dict[str, Any] | None, default: dict[str, Any] | None) -> dict[str, Any]:
    """Kratix's rule: a container without `resources` gets the default ones whole; one with `resources` (even `{}`)
    keeps its own."""
    if own is not None:
        return own
    return default if default is not None else KRATIX_DEFAULT_RESOURCES


def check_pod_fields(
    container: dict[str, Any], volumes: list[dict[str, Any]], field: str, containers: tuple[str, ...] = ()
) -> list[FieldError]:
    """One container's env sources, mounts, pull policy and resources (`container` as its document; `containers` the
    names of its Pipeline's containers, which a resourceFieldRef may name)."""
    errors = [
        FieldError(f"{field}.{key}", "Forbidden: not a field of a Kratix Pipeline container")
        for key in container
        if key not in CONTAINER_FIELDS
    ]
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        errors.append(
            FieldError(f"{field}.imagePullPolicy", f"Unsupported value: {policy!r}: supported values: {PULL_POLICIES}")
        )
    for index, env in enumerate(_items(container.get("env"))):
        errors += unknown_keys(env, {"name", "value", "valueFrom"}, f"{field}.env[{index}]")
        source = env.get("valueFrom") if isinstance(env, dict) else None
        if source is not None:
            errors += _value_from(source, f"{field}.env[{index}].valueFrom", containers)
    for index, source in enumerate(_items(container.get("envFrom"))):
        errors += _env_from(source, f"{field}.envFrom[{index}]")
    declared = {v.get("name") for v in volumes if isinstance(v, dict)}
    for index, mount in enumerate(_items(container.get("volumeMounts"))):
        errors += _mount(mount, declared, f"{field}.volumeMounts[{index}]")
    if container.get("resources") is not None:
        errors += check_resources(container["resources"], f"{field}.resources")
    return errors


def check_volumes(volumes: list[dict[str, Any]], field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, volume in enumerate(volumes):
        where = f"{field}[{index}]"
        name = volume.get("name")
        errors += dns_label(f"{where}.name", name)
        if name in seen:
            errors.append(FieldError(f"{where}.name", f"Duplicate value: {name!r}"))
        seen.add(str(name))
        sources = [k for k in volume if k != "name"]
        if len(sources) != 1:
            errors.append(FieldError(where, "must specify exactly 1 volume source"))
            continue
        kind = sources[0]
        if kind in NOT_SERVED:
            errors.append(FieldError(f"{where}.{kind}", f"Forbidden: {NOT_SERVED[kind]}"))
        elif kind == "secret":
            errors += _secret_volume(volume["secret"], f"{where}.secret")
    return errors


def unknown_keys(value: object, known: set[str], field: str) -> list[FieldError]:
    """Kubernetes decodes these strictly, as Kratix does its Pipeline: a field it does not know is an error."""
    if not isinstance(value, dict):
        return []
    return [FieldError(f"{field}.{key}", "Forbidden: unknown field") for key in value if key not in known]


def _items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _secret_ref(ref: object, field: str, key_required: bool) -> list[FieldError]:
    if not isinstance(ref, dict):
        return [FieldError(field, "must be an object")]
    errors = unknown_keys(ref, {"name", "key", "optional"} if key_required else {"name", "optional"}, field)
    errors += validate_name(f"{field}.name", ref.get("name"), max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN)
    if key_required:
        key = ref.get("key")
        if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > SUBDOMAIN_MAX:
            errors.append(
                FieldError(f"{field}.key", "Invalid value: a valid Secret key is letters, digits, '-', '_' or '.'")
            )
    if not isinstance(ref.get("optional", False), bool):
        errors.append(FieldError(f"{field}.optional", "must be a boolean"))
    return errors


def _value_from(source: object, field: str, containers: tuple[str, ...]) -> list[FieldError]:
    if not isinstance(source, dict) or len(source) != 1:
        return [FieldError(field, "may not have more than one field specified at a time")]
    kind = next(iter(source))
    if kind == "configMapKeyRef":
        return [FieldError(f"{field}.configMapKeyRef", f"Forbidden: {NOT_SERVED['configMap']}")]
    if kind == "secretKeyRef":
        return _secret_ref(source[kind], f"{field}.secretKeyRef", key_required=True)
    if kind == "fieldRef":
        return _field_ref(source[kind], f"{field}.fieldRef")
    if kind == "resourceFieldRef":
        return _resource_field_ref(source[kind], f"{field}.resourceFieldRef", containers)
    return [FieldError(f"{field}.{kind}", "Unsupported value: not an environment variable source")]


def _field_ref(ref: object, field: str) -> list[FieldError]:
    """Kubernetes' validateObjectFieldSelector for an environment variable."""
    if not isinstance(ref, dict):
        return [FieldError(field, "must be an object")]
    errors = unknown_keys(ref, {"apiVersion", "fieldPath"}, field)
    if ref.get("apiVersion", "v1") != "v1":
        errors.append(FieldError(f"{field}.apiVersion", f"Unsupported value: {ref.get('apiVersion')!r}: only 'v1'"))
    path = ref.get("fieldPath")
    if not isinstance(path, str) or not path:
        return [*errors, FieldError(f"{field}.fieldPath", "Required value")]
    subscript = _SUBSCRIPT.fullmatch(path)
    if subscript is not None:
        reason = label_key_error(subscript.group(2))
        if reason:
            errors.append(FieldError(f"{field}.fieldPath", reason))
    elif path not in ENV_FIELD_PATHS:
        errors.append(
            FieldError(
                f"{field}.fieldPath",
                f"Unsupported value: {path[:256]!r}: supported values: {', '.join(ENV_FIELD_PATHS)}, "
                "metadata.labels['<key>'], metadata.annotations['<key>']",
            )
        )
    return errors


def _resource_field_ref(ref: object, field: str, containers: tuple[str, ...]) -> list[FieldError]:
    """Kubernetes' validateContainerResourceFieldSelector for an environment variable; a containerName must name a
    container of the same Pipeline (kubelet fails the container otherwise)."""
    if not isinstance(ref, dict):
        return [FieldError(field, "must be an object")]
    errors = unknown_keys(ref, {"containerName", "resource", "divisor"}, field)
    name = ref.get("containerName")
    if name and containers and name not in containers:
        errors.append(FieldError(f"{field}.containerName", f"Not found: {str(name)[:256]!r}: no such container"))
    resource = ref.get("resource")
    if not isinstance(resource, str) or not resource:
        return [*errors, FieldError(f"{field}.resource", "Required value")]
    if resource not in RESOURCE_FIELDS and not resource.startswith(HUGEPAGES_PREFIXES):
        return [
            *errors,
            FieldError(
                f"{field}.resource",
                f"Unsupported value: {resource[:256]!r}: supported values: {', '.join(RESOURCE_FIELDS)}, "
                "limits.hugepages-<size>, requests.hugepages-<size>",
            ),
        ]
    given = ref.get("divisor")
    if given is not None:
        allowed = CPU_DIVISORS if resource.endswith(".cpu") else MEMORY_DIVISORS
        try:
            ok = quantity(given) in {quantity(d) for d in allowed}
        except ValueError:
            ok = False
        if not ok:
            errors.append(
                FieldError(
                    f"{field}.divisor",
                    f"Invalid value: {str(given)[:64]!r}: only divisor's values {', '.join(allowed)} are supported "
                    f"with the {resource.split('.', 1)[1]} resource",
                )
            )
    return errors


def resource_value(ref: dict[str, Any], resources: dict[str, Any], capacity: dict[str, Decimal]) -> str:
    """kubelet's value of a resourceFieldRef for a container with `resources`: the quantity divided by the divisor
    (default 1), rounded up, cpu in millicores first. Kubernetes defaults a request to its limit; an unset limit is
    the node's allocatable amount (`capacity`); an unset request 0."""
    part, name = str(ref["resource"]).split(".", 1)
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if part == "limits":
        amount = quantity(limits[name]) if name in limits else capacity.get(name, Decimal(0))
    else:
        given = requests.get(name, limits.get(name))
        amount = quantity(given) if given is not None else Decimal(0)
    by = quantity(ref["divisor"]) if ref.get("divisor") is not None else Decimal(0)
    by = by or Decimal(1)
    if name == "cpu":
        amount, by = (amount * 1000).to_integral_value(ROUND_CEILING), (by * 1000).to_integral_value(ROUND_CEILING)
    else:
        amount, by = amount.to_integral_value(ROUND_CEILING), by.to_integral_value(ROUND_CEILING)
    return str(int((amount / by).to_integral_value(ROUND_CEILING)))


def label_subscript(path: str) -> tuple[str, str] | None:
    """`metadata.labels['k']` as ("labels", "k"), the annotations' likewise; None for any other path."""
    match = _SUBSCRIPT.fullmatch(path)
    return (match.group(1), match.group(2)) if match else None


def podman_refusals(spec: dict[str, Any], field: str) -> list[FieldError]:
    """What the podman runner can never honour in a Pipeline's spec (its document), named by field: refused at apply
    where the platform runs pipelines with podman, rather than accepted and failed at every run. Volume sources other
    than secret and emptyDir need a host path or a cluster; fieldRefs to a node or a Pod IP name what a container on
    the worker's host does not have; hugepages are not given."""
    errors = []
    for index, volume in enumerate(_items(spec.get("volumes"))):
        kinds = [k for k in volume if k != "name"] if isinstance(volume, dict) else []
        for kind in kinds:
            if kind not in PODMAN_VOLUMES and kind not in NOT_SERVED:
                errors.append(
                    FieldError(
                        f"{field}.volumes[{index}].{kind}",
                        "Forbidden: not available on the podman runner (secret and emptyDir volumes only); "
                        "the kubernetes runner mounts it",
                    )
                )
    for index, container in enumerate(_items(spec.get("containers"))):
        for env_index, env in enumerate(_items(container.get("env") if isinstance(container, dict) else None)):
            source = env.get("valueFrom") if isinstance(env, dict) else None
            if not isinstance(source, dict):
                continue
            where = f"{field}.containers[{index}].env[{env_index}].valueFrom"
            reason = podman_env_refusal(source)
            if reason:
                errors.append(FieldError(f"{where}.{next(iter(source))}", f"Forbidden: {reason}"))
    return errors


def podman_env_refusal(source: dict[str, Any]) -> str | None:
    """Why the podman runner cannot give this env source, or None."""
    ref = source.get("fieldRef")
    if isinstance(ref, dict):
        path = str(ref.get("fieldPath", ""))
        if path not in PODMAN_FIELD_PATHS and _SUBSCRIPT.fullmatch(path) is None:
            return (
                f"{path[:256]} is not available on the podman runner (no node or Pod IP on the worker's host; it "
                f"gives {', '.join(PODMAN_FIELD_PATHS)}, metadata.labels['<key>'] and metadata.annotations['<key>']); "
                "the kubernetes runner gives it"
            )
    resource = source.get("resourceFieldRef")
    if isinstance(resource, dict) and str(resource.get("resource", "")).startswith(HUGEPAGES_PREFIXES):
        return "hugepages are not available on the podman runner; the kubernetes runner gives them"
    return None


def _env_from(source: object, field: str) -> list[FieldError]:
    if not isinstance(source, dict):
        return [FieldError(field, "must be an object")]
    errors = []
    prefix = source.get("prefix")
    if prefix is not None:
        errors += env_var_name(f"{field}.prefix", prefix) if prefix else []
    refs = [k for k in source if k != "prefix"]
    if refs == ["configMapRef"]:
        errors.append(FieldError(f"{field}.configMapRef", f"Forbidden: {NOT_SERVED['configMap']}"))
    elif refs == ["secretRef"]:
        errors += _secret_ref(source["secretRef"], f"{field}.secretRef", key_required=False)
    else:
        errors.append(FieldError(field, "must specify exactly one of secretRef or configMapRef"))
    return errors


def _secret_volume(source: object, field: str) -> list[FieldError]:
    if not isinstance(source, dict):
        return [FieldError(field, "must be an object")]
    errors = unknown_keys(source, {"secretName", "items", "defaultMode", "optional"}, field)
    errors += validate_name(
        f"{field}.secretName", source.get("secretName"), max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN
    )
    errors += _mode(source.get("defaultMode"), f"{field}.defaultMode")
    if not isinstance(source.get("optional", False), bool):
        errors.append(FieldError(f"{field}.optional", "must be a boolean"))
    for index, item in enumerate(_items(source.get("items"))):
        where = f"{field}.items[{index}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        errors += unknown_keys(item, {"key", "path", "mode"}, where)
        key = item.get("key")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            errors.append(
                FieldError(f"{where}.key", "Invalid value: a valid Secret key is letters, digits, '-', '_' or '.'")
            )
        errors += relative_path_errors(item.get("path"), f"{where}.path")
        errors += _mode(item.get("mode"), f"{where}.mode")
    return errors


def _mode(value: object, field: str) -> list[FieldError]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MODE:
        return [
            FieldError(field, f"Invalid value: {value!r}: must be a number between 0 and 0777 (octal), both inclusive")
        ]
    return []


def relative_path_errors(value: object, field: str) -> list[FieldError]:
    """Kubernetes' validateLocalDescendingPath: relative, no '..' component; and plain characters, as a file name in
    a workspace directory."""
    if not isinstance(value, str) or not value:
        return [FieldError(field, "Required value")]
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or len(value) > MOUNT_PATH_MAX or not _MOUNT_PATH.fullmatch("/" + value):
        return [
            FieldError(
                field,
                f"Invalid value: {value!r}: must be a relative path without '..', of letters, digits and ._+@=-/",
            )
        ]
    return []


def _mount(mount: object, declared: set[Any], field: str) -> list[FieldError]:
    if not isinstance(mount, dict):
        return [FieldError(field, "must be an object")]
    errors = []
    if mount.get("name") not in declared:
        errors.append(FieldError(f"{field}.name", f"Not found: {mount.get('name')!r}: no such volume in spec.volumes"))
    path = mount.get("mountPath")
    if (
        not isinstance(path, str)
        or len(path) > MOUNT_PATH_MAX
        or not _MOUNT_PATH.fullmatch(path)
        or ".." in path.split("/")
    ):
        errors.append(
            FieldError(
                f"{field}.mountPath",
                f"Invalid value: {path!r}: must be an absolute path without '..', of letters, digits and ._+@=-/",
            )
        )
    elif any(
        path.rstrip("/") == r or path.startswith(r + "/") or r.startswith(path.rstrip("/") + "/")
        for r in RESERVED_MOUNTS
    ):
        errors.append(
            FieldError(f"{field}.mountPath", f"Invalid value: {path!r}: Kratix mounts {', '.join(RESERVED_MOUNTS)}")
        )
    if mount.get("subPath"):
        errors += relative_path_errors(mount["subPath"], f"{field}.subPath")
    if not isinstance(mount.get("readOnly", False), bool):
        errors.append(FieldError(f"{field}.readOnly", "must be a boolean"))
    for key in set(mount) - {"name", "mountPath", "subPath", "readOnly"}:
        errors.append(FieldError(f"{field}.{key}", "Forbidden: not supported by ktx"))
    return errors


def check_resources(resources: object, field: str) -> list[FieldError]:
    if not isinstance(resources, dict):
        return [FieldError(field, "must be an object")]
    errors = [
        FieldError(f"{field}.{k}", "Forbidden: only limits and requests")
        for k in resources
        if k not in ("limits", "requests")
    ]
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        if not isinstance(values, dict):
            errors.append(FieldError(f"{field}.{part}", "must be a map of resource names to quantities"))
            continue
        for name, value in values.items():
            try:
                quantity(value)
            except ValueError as exc:
                errors.append(FieldError(f"{field}.{part}.{name}", f"Invalid value: {exc}"))
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if isinstance(limits, dict) and isinstance(requests, dict):
        for name in set(limits) & set(requests):
            try:
                if quantity(requests[name]) > quantity(limits[name]):
                    errors.append(
                        FieldError(
                            f"{field}.requests.{name}", f"Invalid value: must be less than or equal to {name} limit"
                        )
                    )
            except ValueError:
                pass  # reported above
    return errors
