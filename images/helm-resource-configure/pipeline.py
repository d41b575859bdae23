"""Kratix's helm stage: `helm template <request name> <chart> --values <the request's spec>` into object.yaml.

The chart is CHART_URL (a path or an archive in the image, or a chart repository's URL with CHART_NAME), at
CHART_VERSION when given, rendered for TARGET_NAMESPACE when given, as Kratix's pipeline.sh reads them. Every value
is passed so that none can be read as an option: flags as `--flag=value`, the two positionals after `--`.
"""

import os
import subprocess
import sys
import tempfile

import yaml

INPUT = os.environ.get("KRATIX_INPUT", "/kratix/input")
OUTPUT = os.environ.get("KRATIX_OUTPUT", "/kratix/output")


def main() -> int:
    with open(os.path.join(INPUT, "object.yaml")) as f:
        request = yaml.safe_load(f)
    chart = os.environ.get("CHART_URL", "")
    if not chart:
        print("URL is not set. Please set the URL.", file=sys.stderr)
        return 1
    flags = []
    if os.environ.get("CHART_NAME"):
        flags.append(f"--repo={chart}")
        chart = os.environ["CHART_NAME"]
    if os.environ.get("CHART_VERSION"):
        flags.append(f"--version={os.environ['CHART_VERSION']}")
    if os.environ.get("TARGET_NAMESPACE"):
        flags.append(f"--namespace={os.environ['TARGET_NAMESPACE']}")
    # Helm keeps its cache and configuration under HOME; a pipeline's may not be writable.
    scratch = tempfile.mkdtemp()
    env = {**os.environ, "HOME": scratch, "HELM_CACHE_HOME": scratch, "HELM_CONFIG_HOME": scratch}
    values = os.path.join(scratch, "values.yaml")
    with open(values, "w") as f:
        yaml.safe_dump(request.get("spec") or {}, f)
    name = request["metadata"]["name"]
    with open(os.path.join(OUTPUT, "object.yaml"), "w") as out:
        done = subprocess.run(
            ["helm", "template", *flags, f"--values={values}", "--", name, chart], stdout=out, env=env
        )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
