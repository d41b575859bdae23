"""The Promise author's commands with no stack at all (no Temporal, no API, an empty KTX_HOME), through the real CLI:
`ktx test pipeline` runs the example Promise's pipelines on real podman through the worker's runner, and shows what
they write, the merged status and the scheduling as the platform would make them; the scaffold commands refuse bad
names before writing; `ktx init helm-promise` reads charts locally and over HTTP (docs/authoring.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from cli.stack import free_port
from tests.conftest import ROOT
from tests.servers.oci_registry import OciRegistry
from tests.servers.static_files import StaticFiles

EXAMPLE = ROOT / "examples" / "promises" / "app-config"


def _ktx(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KTX_HOME": str(tmp_path / "home"),
        # Nothing listens there: a command that needed the stack would fail.
        "KTX_API_PORT": str(free_port()),
        "KTX_TEMPORAL_PORT": str(free_port()),
        # Run from the author's directory, with this checkout's code.
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def test_the_example_promise_s_pipelines_run_with_no_stack(tmp_path: Path, pipeline_images) -> None:
    promise, request = str(EXAMPLE / "promise.yaml"), str(EXAMPLE / "resource-request.yaml")
    result = _ktx(tmp_path, "test", "pipeline", promise, "--input", request, "--show-files", "--save", "out")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Pipeline render: Succeeded" in out
    assert "container render (localhost/ktx-examples/app-config-pipeline:v0.1.0): exit code 0" in out
    # The request was defaulted by the Promise's schema (replicas: 1) before the pipeline read it, as the API does.
    assert "    | rendered checkout: 2 replicas for team payments" in out
    assert "    .: environment=dev (promise; 1 files)" in out
    status = yaml.safe_load(out.split("\nStatus:\n", 1)[1])
    assert (status["replicas"], status["team"], status["workflowsSucceeded"]) == (2, "payments", 1)
    assert status["kratix"]["workflows"]["pipelines"] == [
        {
            "name": "render",
            "phase": "Succeeded",
            "lastTransitionTime": status["kratix"]["workflows"]["pipelines"][0]["lastTransitionTime"],
        }
    ]
    configmap = yaml.safe_load((tmp_path / "out" / "render" / "configmap.yaml").read_text())
    assert configmap["data"] == {"team": "payments", "size": "medium", "replicas": "2", "logLevel": "info"}
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())

    own = _ktx(tmp_path, "test", "pipeline", promise, "--workflow", "promise.configure", "--show-files")
    assert own.returncode == 0, own.stderr
    assert "Pipeline setup: Succeeded" in own.stdout and "    namespace.yaml\n" in own.stdout
    assert "name: app-config-system" in own.stdout and "  message: app-config system namespace rendered\n" in own.stdout

    teardown = _ktx(tmp_path, "test", "pipeline", promise, "--workflow", "resource.delete", "--input", request)
    assert teardown.returncode == 0, teardown.stderr
    assert "tearing down checkout for team payments" in teardown.stdout


def test_a_request_the_schema_refuses_is_refused_before_any_container_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: example.ktx.io/v1alpha1\nkind: AppConfig\nmetadata: {name: x}\nspec: {team: x, size: huge}\n"
    )
    result = _ktx(tmp_path, "test", "pipeline", str(EXAMPLE / "promise.yaml"), "--input", str(bad))
    assert result.returncode == 1
    assert "spec.size: Unsupported value" in result.stderr and "Pipeline" not in result.stdout
    request = str(EXAMPLE / "resource-request.yaml")
    missing = _ktx(
        tmp_path, "test", "pipeline", str(EXAMPLE / "promise.yaml"), "--input", request, "--pipeline", "nope"
    )
    assert missing.returncode == 1 and "has no pipeline 'nope'" in missing.stderr
    none = _ktx(tmp_path, "test", "pipeline", str(EXAMPLE / "promise.yaml"), "--workflow", "promise.delete")
    assert none.returncode == 1 and "has no pipeline" in none.stderr
    # What the podman runner can never give is refused before any container runs, the field named.
    promise = yaml.safe_load((EXAMPLE / "promise.yaml").read_text())
    container = promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]
    container["env"] = [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    (tmp_path / "node.yaml").write_text(yaml.safe_dump(promise))
    node = _ktx(tmp_path, "test", "pipeline", str(tmp_path / "node.yaml"), "--input", request)
    assert node.returncode == 1 and "Pipeline" not in node.stdout, node.stdout
    assert "spec.workflows.resource.configure[0].spec.containers[0].env[0].valueFrom.fieldRef" in node.stderr


HOSTILE_PROMISE = """\
apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata: {name: probe}
spec:
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: probes.example.ktx.io}
    spec:
      group: example.ktx.io
      names: {kind: Probe, plural: probes, singular: probe}
      scope: Namespaced
      versions:
        - name: v1alpha1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
  workflows:
    resource:
      configure:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: gate}
          spec:
            containers:
              - name: gate
                image: localhost/ktx/python-base:bookworm
                command: [sh, -c]
                args:
                  - |
                    mkdir -p /kratix/output/db
                    echo 'kind: Database' > /kratix/output/db/db.yaml
                    cd /kratix/metadata
                    printf -- '- directory: db\\n  matchLabels: {tier: data}\\n' > destination-selectors.yaml
                    printf 'suspend: true\\nmessage: waiting for approval\\n' > /kratix/metadata/workflow-control.yaml
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: after}
          spec:
            containers:
              - name: after
                image: localhost/ktx/python-base:bookworm
                command: [sh, -c, 'echo ran after']
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: escape}
          spec:
            containers:
              - name: escape
                image: localhost/ktx/python-base:bookworm
                command: [sh, -c, 'ln -s /etc/passwd /kratix/output/passwd']
"""


def test_metadata_and_hostile_output_are_read_as_the_platform_reads_them(tmp_path: Path, pipeline_images) -> None:
    promise, request = tmp_path / "promise.yaml", tmp_path / "request.yaml"
    promise.write_text(HOSTILE_PROMISE)
    request.write_text("apiVersion: example.ktx.io/v1alpha1\nkind: Probe\nmetadata: {name: p1}\nspec: {}\n")
    gated = _ktx(tmp_path, "test", "pipeline", str(promise), "--input", str(request))
    assert gated.returncode == 0, gated.stderr
    # The pipeline's own selector for db/, the workflow control suspending the workflow: `after` never runs.
    assert "    db: tier=data (resource-workflow; 1 files)" in gated.stdout
    assert "  workflow control: suspend waiting for approval\n  the workflow stops here" in gated.stdout
    assert "Pipeline after" not in gated.stdout and "ran after" not in gated.stdout
    escaped = _ktx(tmp_path, "test", "pipeline", str(promise), "--pipeline", "escape", "--input", str(request))
    assert escaped.returncode == 1
    assert "Pipeline escape: Failed" in escaped.stdout
    assert (
        "/kratix/output/passwd is a symbolic link that" in escaped.stdout and "write the file itself" in escaped.stdout
    )
    assert "root:" not in escaped.stdout


def test_the_scaffold_commands_refuse_bad_names_before_writing_anything(tmp_path: Path) -> None:
    assert _ktx(tmp_path, "init", "promise", "../x", "--group", "example.ktx.io", "--kind", "X").returncode == 1
    assert not any(tmp_path.iterdir()), "a refused init wrote files"
    assert _ktx(tmp_path, "init", "promise", "shop", "--group", "example.ktx.io", "--kind", "Shop").returncode == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    refusals = [
        (
            ("add", "container", "resource/configure/../../etc", "--image", "localhost/x:v1"),
            "LIFECYCLE/ACTION/PIPELINE",
        ),
        (("add", "container", "resource/configure/p", "--image=--privileged"), "--image"),
        (("add", "container", "resource/configure/p", "--image", "localhost/x:v1", "--name", "../up"), "--name"),
        (("update", "destination-selector", "bad key=x"), "KEY=VALUE"),
        (("update", "api", "--property", "a.b:array"), "unsupported property type"),
        (("update", "api", "--kind", "not a kind"), "spec.api.spec.names.kind"),
        (("build", "container"), "give LIFECYCLE/ACTION/PIPELINE or --all"),
        (("build", "promise", "Bad_Name"), "NAME"),
        (
            ("init", "helm-promise", "h", "--chart-url", "oci://ghcr.io/X/../y", "--group", "a.b", "--kind", "H"),
            "is not an OCI repository name",
        ),
        (("init", "helm-promise", "h", "--chart-url", "ftp://x/y.tgz", "--group", "a.b", "--kind", "H"), "URL"),
    ]
    for args, reason in refusals:
        result = _ktx(tmp_path, *args)
        assert result.returncode == 1 and reason in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "a refused command changed the Promise's files"


def _chart(where: Path, name: str, version: str, values: str) -> Path:
    """A chart's directory and its archive, `<name>-<version>.tgz`, beside it."""
    chart = where / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (chart / "values.yaml").write_text(values)
    (chart / "templates" / "service.yaml").write_text("apiVersion: v1\nkind: Service\n")
    archive = where / f"{name}-{version}.tgz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(where), name], check=True)
    return archive


def test_helm_promise_from_a_chart_fetched_over_http(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    _chart(served, "web", "0.1.0", "replicaCount: 1\n")
    _chart(served / "v2", "web", "0.2.0", "replicaCount: 2\ningress: {enabled: false}\n")
    (served / "index.yaml").write_text(
        "apiVersion: v1\nentries:\n  web:\n  - version: 0.2.0\n    urls: [v2/web-0.2.0.tgz]\n"
        "  - version: 0.1.0\n    urls: [web-0.1.0.tgz]\n"
    )
    with StaticFiles(served) as server:
        archive = _ktx(
            tmp_path,
            "init",
            "helm-promise",
            "web",
            "--chart-url",
            f"{server.url}/redirect/web-0.1.0.tgz",
            "--group",
            "example.ktx.io",
            "--kind",
            "Web",
            "--dir",
            "from-tgz",
        )
        assert archive.returncode == 0, archive.stderr
        repository = _ktx(
            tmp_path,
            "init",
            "helm-promise",
            "web",
            "--chart-url",
            server.url,
            "--chart-name",
            "web",
            "--group",
            "example.ktx.io",
            "--kind",
            "Web",
            "--dir",
            "from-repo",
        )
        assert repository.returncode == 0, repository.stderr
        pinned = _ktx(
            tmp_path,
            "init",
            "helm-promise",
            "web",
            "--chart-url",
            server.url,
            "--chart-name",
            "web",
            "--chart-version",
            "0.1.0",
            "--group",
            "example.ktx.io",
            "--kind",
            "Web",
            "--dir",
            "pinned",
        )
        assert pinned.returncode == 0, pinned.stderr
        missing = _ktx(
            tmp_path,
            "init",
            "helm-promise",
            "web",
            "--chart-url",
            server.url,
            "--chart-name",
            "nope",
            "--group",
            "example.ktx.io",
            "--kind",
            "Web",
            "--dir",
            "missing",
        )
        assert missing.returncode == 1 and "failed to fetch helm chart: no chart 'nope'" in missing.stderr
        gone = _ktx(
            tmp_path,
            "init",
            "helm-promise",
            "web",
            "--chart-url",
            f"{server.url}/gone.tgz",
            "--group",
            "example.ktx.io",
            "--kind",
            "Web",
            "--dir",
            "gone",
        )
        assert gone.returncode == 1 and "status 404" in gone.stderr
    assert not (tmp_path / "missing").exists() and not (tmp_path / "gone").exists()

    def spec_and_env(directory: str) -> tuple[dict, list]:
        promise = yaml.safe_load((tmp_path / directory / "promise.yaml").read_text())
        api = promise["spec"]["api"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        (container,) = promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"]
        assert container["image"] == "ghcr.io/syntasso/kratix-cli/helm-resource-configure:v0.2.0"
        return api["properties"], container["env"]

    # Kratix's pipeline, which fetches the chart itself when it runs: no image of its own to build.
    assert spec_and_env("from-tgz") == (
        {"replicaCount": {"type": "number"}},
        [{"name": "CHART_URL", "value": f"{server.url}/redirect/web-0.1.0.tgz"}],
    )
    assert not (tmp_path / "from-tgz" / "workflows").exists()
    latest, env = spec_and_env("from-repo")
    assert sorted(latest) == ["ingress", "replicaCount"]
    assert env == [{"name": "CHART_URL", "value": server.url}, {"name": "CHART_NAME", "value": "web"}]
    assert spec_and_env("pinned") == (
        {"replicaCount": {"type": "number"}},
        [
            {"name": "CHART_URL", "value": server.url},
            {"name": "CHART_NAME", "value": "web"},
            {"name": "CHART_VERSION", "value": "0.1.0"},
        ],
    )
    readme = (tmp_path / "pinned" / "README.md").read_text()
    assert f"ktx init helm-promise web --chart-url {server.url} --chart-name web --chart-version 0.1.0" in readme


def test_helm_promise_from_a_chart_in_an_oci_registry(tmp_path: Path) -> None:
    charts = tmp_path / "charts"
    charts.mkdir()
    first = _chart(charts, "web", "0.1.0", "replicaCount: 1\n").read_bytes()
    second = _chart(charts / "v2", "web", "0.2.0", "replicaCount: 2\ningress: {enabled: false}\n").read_bytes()

    def init(url: str, directory: str, *extra: str) -> subprocess.CompletedProcess:
        args = ("init", "helm-promise", "web", "--chart-url", url, *extra)
        return _ktx(tmp_path, *args, "--group", "example.ktx.io", "--kind", "Web", "--dir", directory)

    with OciRegistry(bearer=True) as registry:
        registry.push("charts/web", "0.1.0", first)
        registry.push("charts/web", "0.2.0", second)
        registry.push("charts/not-a-chart", "1.0.0", first, layer="application/vnd.oci.image.layer.v1.tar+gzip")
        url = f"oci://{registry.host}/charts/web"
        latest = init(url, "latest")
        assert latest.returncode == 0, latest.stderr
        pinned = init(url, "pinned", "--chart-version", "0.1.0")
        assert pinned.returncode == 0, pinned.stderr
        tagged = init(f"{url}:0.1.0", "tagged")
        assert tagged.returncode == 0, tagged.stderr
        # The distribution spec's token flow: challenged, an anonymous pull token fetched, then sent.
        assert ("/v2/charts/web/tags/list", None) in registry.requests
        assert any(
            path.startswith("/token?") and "scope=repository%3Acharts%2Fweb%3Apull" in path
            for path, _ in registry.requests
        )
        assert ("/v2/charts/web/manifests/0.2.0", "Bearer anonymous-pull-token") in registry.requests
        missing = init(url, "missing", "--chart-version", "9.9.9")
        assert missing.returncode == 1 and "manifests/9.9.9: status 404" in missing.stderr
        wrong = init(f"oci://{registry.host}/charts/not-a-chart:1.0.0", "wrong")
        assert wrong.returncode == 1 and "has 0 chart layers, not one" in wrong.stderr
        # A blob that is not what its digest says is refused.
        [(digest, _)] = [(d, b) for d, b in registry.blobs.items() if b == first]
        registry.blobs[digest] = second
        tampered = init(url, "tampered", "--chart-version", "0.1.0")
        assert tampered.returncode == 1 and "does not match its digest" in tampered.stderr
    for refused in ("missing", "wrong", "tampered"):
        assert not (tmp_path / refused).exists()

    def spec_and_env(directory: str) -> tuple[list, list]:
        promise = yaml.safe_load((tmp_path / directory / "promise.yaml").read_text())
        api = promise["spec"]["api"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        (container,) = promise["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"]
        assert container["image"] == "ghcr.io/syntasso/kratix-cli/helm-resource-configure:v0.2.0"
        return sorted(api["properties"]), container["env"]

    # Kratix's pipeline, with the OCI URL: Helm pulls the chart itself when it runs.
    assert spec_and_env("latest") == (["ingress", "replicaCount"], [{"name": "CHART_URL", "value": url}])
    assert spec_and_env("pinned") == (
        ["replicaCount"],
        [{"name": "CHART_URL", "value": url}, {"name": "CHART_VERSION", "value": "0.1.0"}],
    )
    assert spec_and_env("tagged")[0] == ["replicaCount"]
