"""`ktx init crossplane-promise`: a Promise from a Crossplane CompositeResourceDefinition (XRD), as
`kratix init crossplane-promise` makes it (kratix-cli cmd/init_crossplane_promise.go).

The Promise's API is the XRD's first served version's schema, under the group, kind and plural given (its `spec`
defaulted from its required fields' own defaults, when every one has one); its dependencies are the Functions, the
Compositions and the XRD itself (unless skipped), for Destinations labelled `crossplane: enabled`; its one
resource.configure pipeline turns each request into a claim of the XRD's claim kind (or its composite kind), in
Kratix's `from-api-to-crossplane-claim` image. Pure: the CLI reads the files and writes what this returns.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from domain import scaffold as sc
from domain.names import KRATIX_API_VERSION, NAME_PATTERN, SUBDOMAIN_MAX
from domain.errors import FieldError, InvalidDocument
from domain.grammar import dns_label
from domain.kube_yaml import marshal
from domain.validation import validate_name

# Kratix's claim stage and its names (init_crossplane_promise.go, init_operator_promise.go's pipeline).
CLAIM_IMAGE = "ghcr.io/syntasso/kratix-cli/from-api-to-crossplane-claim:v0.2.2"
CLAIM_CONTAINER = "from-api-to-crossplane-claim"
PIPELINE = "instance-configure"
DESTINATION_SELECTORS = [{"matchLabels": {"crossplane": "enabled"}}]
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")


def _xrd_fields(xrd: Any) -> tuple[str, str, dict[str, Any]]:
    """(group, claim kind, served version) of an XRD, each checked before it becomes a pipeline's env."""
    if not isinstance(xrd, dict) or xrd.get("kind") != "CompositeResourceDefinition":
        raise InvalidDocument([FieldError("--xrd", "not a Crossplane CompositeResourceDefinition")])
    spec = xrd.get("spec") if isinstance(xrd.get("spec"), dict) else {}
    names = spec.get("claimNames") if isinstance(spec.get("claimNames"), dict) else spec.get("names")
    kind = names.get("kind") if isinstance(names, dict) else None
    group = spec.get("group")
    errors = validate_name("--xrd: spec.group", group, max_length=SUBDOMAIN_MAX, pattern=NAME_PATTERN)
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        errors.append(FieldError("--xrd: spec.names.kind", f"Invalid value: {kind!r}: a kind is letters and digits"))
    versions = spec.get("versions") if isinstance(spec.get("versions"), list) else []
    served = next((v for v in versions if isinstance(v, dict) and v.get("served")), None)
    if served is None:
        errors.append(FieldError("--xrd: spec.versions", "no served version found in XRD"))
    else:
        errors += dns_label("--xrd: spec.versions[].name", served.get("name"))
        schema = served.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("openAPIV3Schema"), dict):
            errors.append(FieldError("--xrd: spec.versions[].schema", f"version {served.get('name')} has no schema"))
    if errors:
        raise InvalidDocument(errors)
    return group, kind, served  # type: ignore[return-value]


def _spec_default(spec: dict[str, Any]) -> dict[str, Any] | None:
    """buildSpecDefault: the required fields' own defaults; none when a required field has none."""
    properties = spec.get("properties") if isinstance(spec.get("properties"), dict) else {}
    default = {}
    for field in spec.get("required") or []:
        prop = properties.get(field)
        if not isinstance(prop, dict) or "default" not in prop:
            return None
        default[field] = prop["default"]
    return default


def crd_from_xrd(served: dict[str, Any], group: str, kind: str, plural: str) -> dict[str, Any]:
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    properties = schema.setdefault("properties", {})
    spec = properties.get("spec") if isinstance(properties.get("spec"), dict) else {}
    default = _spec_default(spec)
    if default is not None:
        spec["default"] = default
    properties["spec"] = spec
    return sc.crd_of(group, kind, served["name"], plural, schema)


def _required(crd: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    properties = spec.get("properties") if isinstance(spec.get("properties"), dict) else {}
    required = [f for f in spec.get("required") or [] if isinstance(f, str)]
    example = {f: f"# type {(properties.get(f) or {}).get('type', '')}" for f in required}
    return example, [f for f in required if "default" not in (properties.get(f) or {})]


def warnings(crd: dict[str, Any]) -> list[str]:
    """Kratix's warning for each top-level required field with no default (the API needs one to be valid)."""
    return [
        f'warning: required field "{field}" has no default value; a default is required for top level required '
        "fields in a CRD\nYou will need to add a default to make the Promise API valid."
        for field in _required(crd)[1]
    ]


def promise_files(
    name: str,
    xrd: Any,
    group: str,
    kind: str,
    plural: str,
    split: bool,
    dependencies: list[dict[str, Any]],
    flags: str,
) -> tuple[dict[str, str], dict[str, Any]]:
    """The files by name (promise.yaml, or with --split api.yaml, dependencies.yaml and the workflow), and the CRD."""
    sc.check_promise_name(name)
    plural = plural or f"{kind.lower()}s"
    xrd_group, xrd_kind, served = _xrd_fields(xrd)
    crd = crd_from_xrd(served, group, kind, plural)
    env = [
        {"name": "XRD_GROUP", "value": xrd_group},
        {"name": "XRD_VERSION", "value": served["name"]},
        {"name": "XRD_KIND", "value": xrd_kind},
    ]
    pipelines = [
        {
            "apiVersion": KRATIX_API_VERSION,
            "kind": "Pipeline",
            "metadata": {"name": PIPELINE},
            "spec": {"containers": [{"env": env, "image": CLAIM_IMAGE, "name": CLAIM_CONTAINER}]},
        }
    ]
    example_spec, _ = _required(crd)
    example = {
        "apiVersion": f"{group}/{served['name']}",
        "kind": kind,
        "metadata": {"name": "example-request", "namespace": "default"},
        **({"spec": example_spec} if example_spec else {}),
    }
    promise = {
        "apiVersion": KRATIX_API_VERSION,
        "kind": "Promise",
        "metadata": {"labels": {"kratix.io/promise-version": "v0.0.1"}, "name": name},
        "spec": {
            "api": crd,
            **({"dependencies": dependencies} if dependencies else {}),
            "destinationSelectors": DESTINATION_SELECTORS,
            "workflows": {"resource": {"configure": pipelines}},
        },
    }
    sc.check_admitted(promise)
    files = {
        sc.EXAMPLE_FILE: marshal(example),
        sc.README_FILE: sc.readme("crossplane-promise", name, f"{flags} --split" if split else flags, group, kind),
    }
    if split:
        files[sc.API_FILE] = marshal(crd)
        files[sc.DEPENDENCIES_FILE] = marshal(dependencies) if dependencies else ""
        files[f"workflows/resource/configure/{sc.WORKFLOW_FILE}"] = marshal(pipelines)
    else:
        files[sc.PROMISE_FILE] = marshal(promise)
    return files, crd
