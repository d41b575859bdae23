"""What the Promise author's commands generate (`ktx init promise`, `add container`, `update ...`, `build promise`):
the files of a new Promise, pipeline containers and the edits to a Promise document, as `kratix` (syntasso/kratix-cli)
writes them. Pure: text and dicts in, text and dicts out; cli/author.py reads and writes the files.

Every name an author passes is checked by Kubernetes' grammar before it becomes a path component, a document field
or an argument of `podman build`: a Promise name as an object name that is also a label value, pipeline and container
names as DNS labels, images by the OCI reference grammar, destination selectors as labels.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from domain.crd_validation import admit_promise, validate_crd
from domain.documents import Promise
from domain.names import KRATIX_API_VERSION, LABEL_MAX, NAME_PATTERN
from domain.errors import FieldError, InvalidDocument
from domain.grammar import dns_label, image_reference
from domain.kube_yaml import marshal
from domain.labels import label_key_error, label_value_error
from domain.validation import validate_name

PROMISE_FILE = "promise.yaml"
API_FILE = "api.yaml"
DEPENDENCIES_FILE = "dependencies.yaml"
EXAMPLE_FILE = "example-resource.yaml"
README_FILE = "README.md"
WORKFLOW_FILE = "workflow.yaml"
LIFECYCLES = ("promise", "resource")
ACTIONS = ("configure", "delete")
PROPERTY_TYPES = ("string", "number", "integer", "object", "boolean")
# The base every image this project builds starts from (scripts/build-images.sh): Debian with python3 and PyYAML, made
# locally by mmdebstrap. A scaffolded container built on it runs here with no registry; Kratix's templates start from
# alpine (bash) and python:3.12-slim with kratix-sdk from PyPI (python), which need the network.
BASE_IMAGE = "localhost/ktx/python-base:bookworm"
# A property path: dotted names, each an identifier as OpenAPI authors write them (a YAML key only, never a path).
_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
_PROPERTY_DEPTH = 8

# `kratix init promise` marshals an empty JSONSchemaProps with `default: {}` as the spec's schema (go-yaml, sorted).
SPEC_SCHEMA: dict[str, Any] = {"default": {}, "type": "object"}

_PROMISE_TEMPLATE = """\
apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: {name}
  labels:
    kratix.io/promise-version: v0.0.1
spec:
  api:
{api}
  workflows:
    promise:
      configure:
        []
    resource:
      configure:
{resource}
"""

_CRD_TEMPLATE = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  names:
    kind: {kind}
    plural: {plural}
    singular: {singular}
  scope: Namespaced
  versions:
    - name: {version}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
{schema}
      served: true
      storage: true"""

_EXAMPLE_TEMPLATE = """\
apiVersion: {group}/{version}
kind: {kind}
metadata:
  name: example-{name}
"""

_README_TEMPLATE = """\
# Promise Template

This Promise was generated with:

```bash
ktx init {subcommand} {name} {extra} --group {group} --kind {kind}
```

## Updating API properties

Add or remove properties of the Promise's API with `ktx update api`:

```bash
ktx update api --property name:string --property region- --kind {kind}
```

## Updating Workflows

Add a container to a workflow's pipeline with `ktx add container`:

```bash
ktx add container resource/configure/pipeline0 --image localhost/my-org/{name}-pipeline:v0.1.0
```

### Building containers

After editing a container's scripts, build its image with `ktx build container`:

```bash
# build a specific container
ktx build container resource/configure/pipeline0 --name localhost-my-org-{name}-pipeline

# build all containers across all workflows
ktx build container --all
```

### Testing a pipeline

Run a workflow's containers on this machine, as the platform would, with no platform:

```bash
ktx test pipeline promise.yaml --input example-resource.yaml
```

## Updating Dependencies

Add dependencies to the Promise, in `spec.dependencies` or as a `promise.configure` workflow, with
`ktx update dependencies`:

```bash
ktx update dependencies /dependencies-path
```

## Updating Destination Selectors

Update the Destination Selectors of the Promise with `ktx update destination-selector`:

```bash
ktx update destination-selector env=dev
```
"""

_BASH_CONTAINERFILE = f"""\
FROM {BASE_IMAGE}

ADD scripts/pipeline.sh /usr/bin/pipeline.sh
ADD resources resources

RUN chmod +x /usr/bin/pipeline.sh

CMD [ "sh", "-c", "pipeline.sh" ]
ENTRYPOINT []
"""

# Kratix's reads the object with yq; the base image has python3 and PyYAML instead.
_BASH_SCRIPT = """\
#!/usr/bin/env sh

set -xe

field() {
  python3 -c 'import sys, yaml
print(yaml.safe_load(open("/kratix/input/object.yaml"))["metadata"].get(sys.argv[1], ""))' "$1"
}
name="$(field name)"
namespace="$(field namespace)"

echo "Hello from ${name} ${namespace}"
"""

_PYTHON_CONTAINERFILE = f"""\
FROM {BASE_IMAGE}

WORKDIR /app
COPY scripts/pipeline.py /app/pipeline.py
ADD resources resources

ENTRYPOINT ["python3", "-u", "/app/pipeline.py"]
"""

# Kratix's uses kratix-sdk from PyPI; this reads the same files and variables the SDK reads, with PyYAML only.
_PYTHON_SCRIPT = """\
import os

import yaml


def main():
    if os.environ.get("KRATIX_WORKFLOW_TYPE") == "promise":
        print(f"Hello from {os.environ['KRATIX_PROMISE_NAME']}")
    else:
        with open("/kratix/input/object.yaml") as f:
            metadata = yaml.safe_load(f)["metadata"]
        print(f"Hello from {metadata['name']} {metadata.get('namespace', '')}")


if __name__ == "__main__":
    main()
"""

LANGUAGES = {
    "bash": ("pipeline.sh", _BASH_CONTAINERFILE, _BASH_SCRIPT),
    "python": ("pipeline.py", _PYTHON_CONTAINERFILE, _PYTHON_SCRIPT),
}
# What `update dependencies --image` puts in its container's script, as Kratix's does.
DEPENDENCIES_SCRIPT = "#!/usr/bin/env sh\n\ncp /resources/* /kratix/output"
DEPENDENCIES_PIPELINE = "dependencies"
DEPENDENCIES_CONTAINER = "configure-deps"


def _refuse(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidDocument(errors)


def _indent(text: str, width: int) -> str:
    """Sprig's `indent`: every line, including the empty one after a final newline, gets the padding."""
    pad = " " * width
    return pad + text.replace("\n", "\n" + pad)


def check_promise_name(name: str) -> None:
    _refuse(validate_name("NAME", name, max_length=LABEL_MAX, pattern=NAME_PATTERN))


def promise_files(
    name: str,
    group: str,
    kind: str,
    version: str = "",
    plural: str = "",
    split: bool = False,
    *,
    subcommand: str = "promise",
    extra: str = "",
    schema: dict[str, Any] | None = None,
    resource_configure: list[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """`kratix init promise`: promise.yaml (or api.yaml and an empty dependencies.yaml with --split),
    example-resource.yaml and README.md, by file name. The generated Promise passes the platform's admission.

    The other generators (`init helm-promise`) give the spec's schema and the resource.configure pipelines; with
    --split those go to workflows/resource/configure/workflow.yaml."""
    check_promise_name(name)
    version = version or "v1alpha1"
    plural = plural or f"{kind.lower()}s"
    values = {"name": name, "group": group, "kind": kind, "version": version, "plural": plural}
    # Checked as Kubernetes checks a CRD before any of them becomes text in a template.
    _refuse(validate_crd(crd_of(group, kind, version, plural)))
    crd = _CRD_TEMPLATE.format(singular=kind.lower(), schema=_indent(marshal(schema or SPEC_SCHEMA), 14), **values)
    pipelines = resource_configure or []
    resource = _indent(marshal(pipelines), 8) if pipelines else _indent("[]", 8)
    flags = " ".join(f for f in (extra, "--split" if split else "") if f)
    files = {
        EXAMPLE_FILE: _EXAMPLE_TEMPLATE.format(**values),
        README_FILE: readme(subcommand, name, flags, group, kind),
    }
    if split:
        files[API_FILE] = crd + "\n"
        files[DEPENDENCIES_FILE] = ""
        if pipelines:
            files[f"workflows/resource/configure/{WORKFLOW_FILE}"] = marshal(pipelines)
    else:
        files[PROMISE_FILE] = _PROMISE_TEMPLATE.format(name=name, api=_indent(crd, 4), resource=resource)
    parts = {k: yaml.safe_load(v) for k, v in files.items() if k in (API_FILE, PROMISE_FILE)}
    check_admitted(assemble(name, parts, {"resource": {"configure": pipelines}} if pipelines else {}))
    return files


def readme(subcommand: str, name: str, flags: str, group: str, kind: str) -> str:
    """Every generator's README.md: how it was generated, and the commands that change what it wrote."""
    return _README_TEMPLATE.format(subcommand=subcommand, name=name, extra=flags, group=group, kind=kind)


def crd_of(group: str, kind: str, version: str, plural: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API a generator writes, as a document: `init promise`'s default spec schema (the template's text is
    Kratix's layout of the same) unless `schema` (the openAPIV3Schema another source gives, e.g. an XRD's)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "schema": {
                        "openAPIV3Schema": schema
                        if schema is not None
                        else {"type": "object", "properties": {"spec": SPEC_SCHEMA}}
                    },
                    "served": True,
                    "storage": True,
                }
            ],
        },
    }


def check_admitted(promise: dict[str, Any]) -> None:
    """The platform's own admission of a Promise (its CRD, names, pipelines), so what is written installs."""
    admit_promise(Promise.model_validate(promise))


@dataclass(frozen=True)
class PipelinePath:
    lifecycle: str
    action: str
    pipeline: str

    @property
    def directory(self) -> str:
        return f"workflows/{self.lifecycle}/{self.action}"

    def __str__(self) -> str:
        return f"{self.lifecycle}/{self.action}/{self.pipeline}"


def parse_pipeline_path(value: str) -> PipelinePath:
    parts = value.split("/")
    if len(parts) != 3:
        raise InvalidDocument(
            [FieldError("LIFECYCLE/ACTION/PIPELINE", f"invalid pipeline format: {value!r}, expected three parts")]
        )
    lifecycle, action, pipeline = parts
    errors = []
    if lifecycle not in LIFECYCLES:
        errors.append(FieldError("LIFECYCLE", f"invalid lifecycle: {lifecycle!r}, expected one of: promise, resource"))
    if action not in ACTIONS:
        errors.append(FieldError("ACTION", f"invalid action: {action!r}, expected one of: configure, delete"))
    _refuse(errors + dns_label("PIPELINE", pipeline))
    return PipelinePath(lifecycle, action, pipeline)


def default_container_name(image: str) -> str:
    """Kratix's: the image without its tag, '/' and '.' as '-', cut to 63 characters with a hash when longer."""
    name = image.split(":")[0].replace("/", "-").replace(".", "-").strip("-")
    if len(name) <= 63:
        return name
    suffix = hashlib.sha1(name.encode()).hexdigest()[:7]
    return f"{name[: 63 - len(suffix) - 1].rstrip('-')}-{suffix}"


def check_container(name: str, image: str) -> None:
    _refuse(dns_label("--name", name) + image_reference("--image", image))


def workflow_pipelines(promise: dict[str, Any], path: PipelinePath) -> list[dict[str, Any]]:
    workflows = (promise.get("spec") or {}).get("workflows") or {}
    return list(((workflows.get(path.lifecycle) or {}).get(path.action)) or [])


def with_container(
    pipelines: list[dict[str, Any]], path: PipelinePath, name: str, image: str, overwrite: bool = False
) -> list[dict[str, Any]]:
    """The pipelines with the container added to the named one (created at the end if there is none)."""
    check_container(name, image)
    pipelines = copy.deepcopy(pipelines)
    container = {"name": name, "image": image}
    for pipeline in pipelines:
        if (pipeline.get("metadata") or {}).get("name") != path.pipeline:
            continue
        containers = pipeline.setdefault("spec", {}).setdefault("containers", [])
        for index, existing in enumerate(containers):
            if existing.get("name") == name:
                if not overwrite:
                    raise InvalidDocument(
                        [FieldError("--name", f"container {name!r} already exists in Pipeline {path.pipeline!r}")]
                    )
                containers[index] = container
                return pipelines
        containers.append(container)
        return pipelines
    pipelines.append(
        {
            "apiVersion": KRATIX_API_VERSION,
            "kind": "Pipeline",
            "metadata": {"name": path.pipeline},
            "spec": {"containers": [container]},
        }
    )
    return pipelines


def set_workflow(promise: dict[str, Any], path: PipelinePath, pipelines: list[dict[str, Any]]) -> dict[str, Any]:
    promise = copy.deepcopy(promise)
    workflows = promise.setdefault("spec", {}).setdefault("workflows", {})
    workflows.setdefault(path.lifecycle, {})[path.action] = pipelines
    return promise


def container_files(language: str) -> dict[str, str]:
    """A container's directory: its Containerfile (named Dockerfile, as Kratix names it) and script."""
    script, containerfile, body = LANGUAGES[language]
    return {"Dockerfile": containerfile, f"scripts/{script}": body}


def find_container(pipeline: dict[str, Any], directories: list[str], name: str | None) -> dict[str, Any]:
    """Kratix's choice of the container to build: the only directory of the pipeline, or the one `--name` gives."""
    if not directories:
        raise InvalidDocument([FieldError("--name", "no container found in the pipeline's directory")])
    if len(directories) == 1:
        if name and name != directories[0]:
            raise InvalidDocument([FieldError("--name", f"container {name} not found in the pipeline's directory")])
        name = directories[0]
    if not name:
        raise InvalidDocument(
            [FieldError("--name", "more than one container exists for this pipeline, give one with --name")]
        )
    if name not in directories:
        raise InvalidDocument([FieldError("--name", f"no directory for container {name}")])
    for container in (pipeline.get("spec") or {}).get("containers") or []:
        if container.get("name") == name:
            check_container(name, str(container.get("image")))
            return container
    raise InvalidDocument([FieldError("--name", f"container {name} not found in the pipeline")])


def find_pipeline(pipelines: list[dict[str, Any]], path: PipelinePath) -> dict[str, Any]:
    for pipeline in pipelines:
        if (pipeline.get("metadata") or {}).get("name") == path.pipeline:
            return pipeline
    raise InvalidDocument([FieldError("LIFECYCLE/ACTION/PIPELINE", f"no pipeline {path} in the Promise")])


def _crd_spec_properties(crd: dict[str, Any]) -> dict[str, Any]:
    versions = (crd.get("spec") or {}).get("versions") or []
    if not versions:
        raise InvalidDocument([FieldError("spec.api.spec.versions", "the API has no version to update")])
    schema = versions[0].setdefault("schema", {}).setdefault("openAPIV3Schema", {"type": "object"})
    spec = schema.setdefault("properties", {}).setdefault("spec", {"type": "object"})
    if spec.get("properties") is None:
        spec.clear()
        spec.update(type="object", properties={})
    return spec["properties"]


def _property_path(name: str) -> list[str]:
    parts = name.split(".")
    errors = [
        FieldError("--property", f"invalid property name {part!r}: letters, digits, '_' and '-', from a letter or '_'")
        for part in parts
        if not _PROPERTY.fullmatch(part)
    ]
    if len(parts) > _PROPERTY_DEPTH:
        errors.append(FieldError("--property", f"{name!r} nests more than {_PROPERTY_DEPTH} levels"))
    _refuse(errors)
    return parts


def update_crd(
    crd: dict[str, Any],
    properties: list[str],
    group: str = "",
    kind: str = "",
    version: str = "",
    plural: str = "",
) -> dict[str, Any]:
    """`kratix update api`: `name:type` adds (dotted names nest in objects), `name-` removes; a new GVK renames."""
    crd = copy.deepcopy(crd)
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if kind:
        names["kind"], names["singular"] = kind, kind.lower()
    if version:
        _crd_spec_properties(crd)
        spec["versions"][0]["name"] = version
    if group:
        spec["group"] = group
    if plural:
        names["plural"] = plural
    if group or kind or version or plural:
        crd.setdefault("metadata", {})["name"] = f"{names.get('plural')}.{spec.get('group')}"
    properties_at = _crd_spec_properties(crd)
    for item in properties:
        name, sep, type_ = item.partition(":")
        if not sep:
            if not item.endswith("-"):
                raise InvalidDocument([FieldError("--property", f"invalid property format: {item!r}")])
            *parents, last = _property_path(item[:-1])
            current: dict[str, Any] | None = properties_at
            for parent in parents:
                current = (current or {}).get(parent, {}).get("properties")
            if current is not None:
                current.pop(last, None)
            continue
        if type_ not in PROPERTY_TYPES:
            raise InvalidDocument(
                [FieldError("--property", f"unsupported property type: {type_!r}: one of {', '.join(PROPERTY_TYPES)}")]
            )
        *parents, last = _property_path(name)
        current = properties_at
        for parent in parents:
            node = current.get(parent)
            if node is None or node.get("properties") is None and node.get("type") == "object":
                node = current[parent] = {"type": "object", "properties": {}}
            if node.get("type") != "object":
                raise InvalidDocument([FieldError("--property", f"nested field {parent} is not an object")])
            current = node["properties"]
        current[last] = {"type": type_}
    return crd


def example_for(example: dict[str, Any], crd: dict[str, Any]) -> dict[str, Any]:
    """The example resource with the API's new group, version and kind."""
    example = copy.deepcopy(example)
    spec = crd.get("spec") or {}
    example["apiVersion"] = f"{spec.get('group')}/{spec['versions'][0]['name']}"
    example["kind"] = (spec.get("names") or {}).get("kind")
    return example


def update_destination_selector(promise: dict[str, Any], item: str) -> dict[str, Any]:
    """`kratix update destination-selector`: `KEY=VALUE` sets the label in the first selector, `KEY-` removes it."""
    promise = copy.deepcopy(promise)
    spec = promise.setdefault("spec", {})
    key, sep, value = item.partition("=")
    if sep:
        reason = label_key_error(key) or label_value_error(value)
        if reason:
            raise InvalidDocument([FieldError("KEY=VALUE", reason)])
        selectors = spec.setdefault("destinationSelectors", [])
        if not selectors:
            selectors.append({"matchLabels": {}})
        selectors[0].setdefault("matchLabels", {})[key] = value
        return promise
    if not item.endswith("-"):
        raise InvalidDocument([FieldError("KEY=VALUE", f"invalid destination key: {item!r}")])
    reason = label_key_error(item[:-1])
    if reason:
        raise InvalidDocument([FieldError("KEY-", reason)])
    for selector in spec.get("destinationSelectors") or []:
        (selector.get("matchLabels") or {}).pop(item[:-1], None)
        break
    return promise


def dependencies_of(documents: list[Any], source: str, namespaced: bool = True) -> list[dict[str, Any]]:
    """Every document as a dependency, its namespace defaulted to `default` as Kratix's `update dependencies` does
    (`init crossplane-promise` keeps its documents as they are: namespaced=False)."""
    found = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict) or not document.get("kind") or not document.get("apiVersion"):
            raise InvalidDocument([FieldError(f"{source}[{index}]", "not a Kubernetes object (apiVersion and kind)")])
        document = copy.deepcopy(document)
        if namespaced:
            document.setdefault("metadata", {}).setdefault("namespace", "default")
            if not document["metadata"]["namespace"]:
                document["metadata"]["namespace"] = "default"
        found.append(document)
    return found


def assemble(name: str, parts: dict[str, Any], workflows: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    """The Promise from its files: promise.yaml as it is, or (split) api.yaml, dependencies.yaml and each
    workflows/<lifecycle>/<action>/workflow.yaml, as `kratix build promise` joins them."""
    if parts.get(PROMISE_FILE):
        return parts[PROMISE_FILE]
    spec: dict[str, Any] = {}
    if parts.get(API_FILE):
        spec["api"] = parts[API_FILE]
    if parts.get(DEPENDENCIES_FILE):
        spec["dependencies"] = parts[DEPENDENCIES_FILE]
    if workflows:
        spec["workflows"] = workflows
    return {"apiVersion": KRATIX_API_VERSION, "kind": "Promise", "metadata": {"name": name}, "spec": spec}


def dump(document: Any) -> str:
    """As Kratix's CLI rewrites a file: go-yaml, keys sorted."""
    return marshal(document)
