"""Kratix's claim stage: the request as a claim of the XRD's kind (XRD_GROUP/XRD_VERSION, XRD_KIND), with the
request's name, labels, annotations and spec, in namespace `default`, written to object.yaml."""

import os
import sys

import yaml

INPUT = os.environ.get("KRATIX_INPUT_FILE", "/kratix/input/object.yaml")
OUTPUT = os.environ.get("KRATIX_OUTPUT_FILE", "/kratix/output/object.yaml")


def main() -> int:
    wanted = {k: os.environ.get(k, "") for k in ("XRD_GROUP", "XRD_VERSION", "XRD_KIND")}
    missing = [k for k, v in wanted.items() if not v]
    if missing:
        print(f"Expected {missing[0]} to be set", file=sys.stderr)
        return 1
    with open(INPUT) as f:
        request = yaml.safe_load(f)
    metadata = request.get("metadata") or {}
    claim_metadata = {"name": metadata.get("name"), "namespace": "default"}
    for key in ("labels", "annotations"):
        if metadata.get(key):
            claim_metadata[key] = metadata[key]
    claim = {
        "apiVersion": f"{wanted['XRD_GROUP']}/{wanted['XRD_VERSION']}",
        "kind": wanted["XRD_KIND"],
        "metadata": claim_metadata,
        "spec": request.get("spec") or {},
    }
    with open(OUTPUT, "w") as f:
        yaml.safe_dump(claim, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
