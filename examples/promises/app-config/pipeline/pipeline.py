"""Example Kratix pipeline: renders a ConfigMap for each AppConfig request, using only the Kratix file contract."""

import os
import sys

import yaml

ACTION = os.environ["KRATIX_WORKFLOW_ACTION"]
TYPE = os.environ["KRATIX_WORKFLOW_TYPE"]


def write(path, documents):
    full = os.path.join("/kratix/output", path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as out:
        yaml.safe_dump_all(documents, out, sort_keys=False)


with open("/kratix/input/object.yaml") as f:
    obj = yaml.safe_load(f)

if TYPE == "promise":
    write("namespace.yaml", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app-config-system"}}])
    with open("/kratix/metadata/status.yaml", "w") as f:
        yaml.safe_dump({"message": "app-config system namespace rendered"}, f)
    sys.exit(0)

name, spec = obj["metadata"]["name"], obj["spec"]
if ACTION == "delete":
    print(f"tearing down {name} for team {spec['team']}")
    sys.exit(0)

replicas = {"small": 1, "medium": 2, "large": 3}[spec.get("size", "small")] * spec.get("replicas", 1)
configmap = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": f"{name}-config", "namespace": obj["metadata"]["namespace"], "labels": {"team": spec["team"]}},
    "data": {
        "team": spec["team"],
        "size": spec.get("size", "small"),
        "replicas": str(replicas),
        "logLevel": os.environ.get("DEFAULT_LOG_LEVEL", "info"),
    },
}
write("configmap.yaml", [configmap])
print(f"rendered {name}: {replicas} replicas for team {spec['team']}")
with open("/kratix/metadata/status.yaml", "w") as f:
    yaml.safe_dump({"replicas": replicas, "team": spec["team"]}, f)
