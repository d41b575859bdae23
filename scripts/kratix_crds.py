"""Regenerates domain/kube/kratix_crds.json: the CustomResourceDefinitions of the Kratix kinds ktx serves, as
Kratix's controller-gen writes them (config/crd/bases), so `kubectl explain promise.spec`, `kubectl get crd` and the
printer columns say what Kratix's say. Run by hand against a Kratix checkout when Kratix's API changes; the API
process reads only the JSON it writes, never the checkout.

    python scripts/kratix_crds.py /path/to/kratix.git [commit]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

KINDS = (
    "promises",
    "promisereleases",
    "destinations",
    "gitstatestores",
    "bucketstatestores",
    "healthrecords",
    "works",
    "workplacements",
    "promiserevisions",
    "resourcebindings",
)
OUT = Path(__file__).resolve().parents[1] / "domain" / "kube" / "kratix_crds.json"


def main(repo: str, commit: str = "HEAD") -> None:
    sha = subprocess.run(["git", "-C", repo, "rev-parse", commit], check=True, capture_output=True, text=True)
    crds = {}
    for plural in KINDS:
        shown = subprocess.run(
            ["git", "-C", repo, "show", f"{commit}:config/crd/bases/platform.kratix.io_{plural}.yaml"],
            check=True,
            capture_output=True,
            text=True,
        )
        crd = yaml.safe_load(shown.stdout)
        meta = {k: v for k, v in crd["metadata"].items() if k in ("name", "annotations")}
        crds[crd["spec"]["names"]["kind"]] = {"metadata": meta, "spec": crd["spec"]}
    document = {"source": f"syntasso/kratix@{sha.stdout.strip()} config/crd/bases", "crds": crds}
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
