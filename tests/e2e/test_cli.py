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
