"""A configurable Kratix pipeline container for the tests, driven only by the Kratix file contract and env vars.

GATE_LABEL  when the object carries this label, CONTROL and FAIL are skipped (Kratix's tests gate on a ConfigMap)
REQUIRE_STATUS  key=value that the input object's status must hold, else exit 1 (status handed between pipelines)
FILES       YAML map of output path -> document, strings templated with {name} {namespace} {spec[..]} {env[..]} {now}
STATUS      YAML map written to /kratix/metadata/status.yaml (templated)
SELECTORS   YAML list written to /kratix/metadata/destination-selectors.yaml
CONTROL     YAML map written to /kratix/metadata/workflow-control.yaml
FAIL        exit code to exit with
SLEEP       seconds to take (templated: {spec[sleep]} lets each request say how long it hangs)
ACTIONS     YAML list written to /kratix/metadata/actions.yaml (templated): ktx off-platform actions requested at
            run time
GENERATE    COUNTxBYTES: write COUNT ConfigMaps of about BYTES each under generated/ (large-output tests)
LINKS       YAML map of path under /kratix/ -> symlink target, made after everything else (link-following tests)
RAW         YAML map of path under /kratix/ -> text written as it is (hostile metadata: aliases, lists, huge files)
BIG         PATH=BYTES: write a YAML file of that many bytes under /kratix/, a MiB at a time (large-file tests)
PRINT       BYTES: print that many bytes of log lines to stdout (log-bounding tests)
SPEC_FILES  a field of the object's spec holding a map of output path -> text, written as it is: each request says
            what its pipeline writes (hostile-tenant tests forge bookkeeping files this way)
"""

import os
import sys
import time

import yaml

with open("/kratix/input/object.yaml") as f:
    obj = yaml.safe_load(f)
meta = obj.get("metadata") or {}
labels = meta.get("labels") or {}
values = {
    "name": meta.get("name"),
    "namespace": meta.get("namespace", ""),
    "spec": obj.get("spec") or {},
    "env": dict(os.environ),
    "now": time.time_ns(),
}


def render(node):
    if isinstance(node, str):
        return node.format_map(values)
    if isinstance(node, dict):
        return {render(k): render(v) for k, v in node.items()}
    if isinstance(node, list):
        return [render(v) for v in node]
    return node


def load(var):
    text = os.environ.get(var)
    return render(yaml.safe_load(text)) if text else None


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        yaml.safe_dump(data, out, sort_keys=False)


print(
    f"{os.environ['KRATIX_WORKFLOW_TYPE']}/{os.environ['KRATIX_WORKFLOW_ACTION']} "
    f"{os.environ['KRATIX_PIPELINE_NAME']} for {meta.get('name')}",
    flush=True,  # before any SLEEP, so a run's log shows it while it runs
)
if os.environ.get("SLEEP"):
    time.sleep(float(render(os.environ["SLEEP"])))
required = os.environ.get("REQUIRE_STATUS")
if required:
    key, expected = required.split("=", 1)
    found = str((obj.get("status") or {}).get(key))
    if found != expected:
        print(f"status.{key} is {found!r}, expected {expected!r}", file=sys.stderr)
        sys.exit(1)
for path, document in (load("FILES") or {}).items():
    write(os.path.join("/kratix/output", path), document)
if os.environ.get("SPEC_FILES"):
    for path, text in (values["spec"].get(os.environ["SPEC_FILES"]) or {}).items():
        os.makedirs(os.path.dirname(os.path.join("/kratix/output", path)), exist_ok=True)
        with open(os.path.join("/kratix/output", path), "w") as out:
            out.write(text)
if os.environ.get("GENERATE"):
    count, size = (int(v) for v in os.environ["GENERATE"].split("x"))
    os.makedirs("/kratix/output/generated", exist_ok=True)
    for i in range(count):
        body = (f"{i:08d}" * (size // 8 + 1))[:size]
        with open(f"/kratix/output/generated/cm-{i:05d}.yaml", "w") as out:
            out.write(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05d}\ndata:\n  blob: {body}\n")
for var, name in (("STATUS", "status.yaml"), ("SELECTORS", "destination-selectors.yaml"), ("ACTIONS", "actions.yaml")):
    data = load(var)
    if data is not None:
        write(f"/kratix/metadata/{name}", data)
for path, text in (yaml.safe_load(os.environ.get("RAW") or "{}") or {}).items():
    os.makedirs(os.path.dirname(os.path.join("/kratix", path)), exist_ok=True)
    with open(os.path.join("/kratix", path), "w") as out:
        out.write(text)
if os.environ.get("BIG"):
    path, size = os.environ["BIG"].split("=")
    remaining = int(size)
    line = b"# " + b"x" * 1021 + b"\n"
    with open(os.path.join("/kratix", path), "wb") as out:
        out.write(b"big: true\n")
        while remaining > 0:
            chunk = line * min(1024, remaining // len(line) + 1)
            out.write(chunk[:remaining])
            remaining -= len(chunk[:remaining])
if os.environ.get("PRINT"):
    remaining = int(os.environ["PRINT"])
    line = "log line " + "y" * 1013 + "\n"
    while remaining > 0:
        sys.stdout.write(line[:remaining])
        remaining -= len(line)
    sys.stdout.write("the end of the output\n")
    sys.stdout.flush()
for path, target in (load("LINKS") or {}).items():
    os.makedirs(os.path.dirname(os.path.join("/kratix", path)), exist_ok=True)
    os.symlink(target, os.path.join("/kratix", path))
gate_open = os.environ.get("GATE_LABEL") in labels
if not gate_open:
    control = load("CONTROL")
    if control is not None:
        write("/kratix/metadata/workflow-control.yaml", control)
    if os.environ.get("FAIL"):
        print(f"failing on purpose with exit code {os.environ['FAIL']}", file=sys.stderr)
        sys.exit(int(os.environ["FAIL"]))
