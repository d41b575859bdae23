"""`ktx init helm-promise` from a local chart: the Promise's API from the chart's values, as `kratix init helm-promise`
makes it, and a resource.configure pipeline that renders the chart with the request's spec as its values.

Kratix's pipeline image (syntasso/kratix-cli's helm stage) runs `helm template <request> $CHART_URL --values <spec>`
and fetches the chart from its URL when it runs. A local chart is not at any URL a container can reach, so here the
chart is copied into the pipeline's own image, built FROM Kratix's, and CHART_URL names it there.
"""

from __future__ import annotations

import re
from typing import Any

from domain.names import KRATIX_API_VERSION
from domain.errors import FieldError, InvalidDocument

# Kratix's helm stage image and its pipeline's names (kratix-cli cmd/init_helm_promise.go).
HELM_STAGE_IMAGE = "ghcr.io/syntasso/kratix-cli/helm-resource-configure:v0.2.0"
HELM_PIPELINE = "instance-configure"
CHART_MOUNT = "/chart"
# A values.yaml nests far less than this; the bound keeps the schema's recursion finite on any file.
MAX_VALUES_DEPTH = 32
# The chart's directory or archive name, one path component inside the image (never '.', '..' or an option).
_CHART_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

CONTAINERFILE = f"""\
FROM {HELM_STAGE_IMAGE}

COPY resources {CHART_MOUNT}
"""


def values_schema(values: Any) -> dict[str, Any]:
    """Kratix's HelmValuesToSchema: the spec is an object defaulting to {} with a property per value. Helm reads
    values through JSON, so every number is a `number`; a map keeps unknown fields; a list takes the schema of its
    first item (int-or-string when empty); a null is an open object."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise InvalidDocument([FieldError("values.yaml", "must be a map of values")])
    return _object({str(k): _schema(v, f"values.yaml.{k}", 1) for k, v in values.items()}, default={})


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    # Go's JSON leaves an empty map of properties out (omitempty), so Kratix's schema has none.
    return {"type": "object", **({"properties": properties} if properties else {}), **extra}


def _schema(value: Any, field: str, depth: int) -> dict[str, Any]:
    if depth > MAX_VALUES_DEPTH:
        raise InvalidDocument([FieldError(field, f"nests more than {MAX_VALUES_DEPTH} levels")])
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, (int, float)):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, dict):
        properties = {str(k): _schema(v, f"{field}.{k}", depth + 1) for k, v in value.items()}
        return _object(properties, **{"x-kubernetes-preserve-unknown-fields": True})
    if isinstance(value, list):
        items = _schema(value[0], f"{field}[0]", depth + 1) if value else {"x-kubernetes-int-or-string": True}
        return {"type": "array", "items": items}
    if value is None:
        return _object({}, **{"x-kubernetes-preserve-unknown-fields": True})
    # YAML's dates and binary values: Helm reads them as strings.
    return {"type": "string"}


def _pipelines(image: str, env: list[dict[str, str]]) -> list[dict[str, Any]]:
    container = {"name": HELM_PIPELINE, "image": image, "env": env}
    return [
        {
            "apiVersion": KRATIX_API_VERSION,
            "kind": "Pipeline",
            "metadata": {"name": HELM_PIPELINE},
            "spec": {"containers": [container]},
        }
    ]


def helm_pipelines(image: str, chart: str) -> list[dict[str, Any]]:
    """A local chart's resource.configure workflow: Kratix's pipeline and container names, the chart copied into the
    pipeline's image at CHART_URL."""
    if not _CHART_FILE.fullmatch(chart):
        raise InvalidDocument(
            [FieldError("--chart-url", f"the chart's file name {chart!r} must be letters, digits, '.', '_' or '-'")]
        )
    return _pipelines(image, [{"name": "CHART_URL", "value": f"{CHART_MOUNT}/{chart}"}])


def remote_pipelines(url: str, name: str = "", version: str = "") -> list[dict[str, Any]]:
    """A fetched chart's, exactly Kratix's: its helm stage image, which fetches the chart from the URL when it runs
    (a chart repository with CHART_NAME, at CHART_VERSION when given)."""
    env = [{"name": "CHART_URL", "value": url}]
    env += [{"name": "CHART_NAME", "value": name}] if name else []
    env += [{"name": "CHART_VERSION", "value": version}] if version else []
    return _pipelines(HELM_STAGE_IMAGE, env)
