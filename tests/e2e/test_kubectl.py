"""Real kubectl (.venv/bin/kubectl) against ktx's Kubernetes API: the Kratix quick-start flow, served by uvicorn on a
free port over a real Temporal dev server and worker, asserting on kubectl's own output and on the platform's state."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.app import create_app
from domain.status import get_condition
from service.platform import Platform
from tests.conftest import ROOT, remote_files
from tests.integration.test_api_auth import served
from tests.integration.test_resource_lifecycle import EXAMPLE, store_and_destination
from tests.waiting import eventually
from worker.settings import Settings

KUBECTL = Path(sys.executable).parent / "kubectl"
GROUP = "example.ktx.io"


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "ktx", "cluster": {"server": url}}],
                "users": [{"name": "admin", "user": {}}],
                "contexts": [{"name": "ktx", "context": {"cluster": "ktx", "user": "admin", "namespace": "default"}}],
                "current-context": "ktx",
            }
        )
    )
    return path


class Kubectl:
    def __init__(self, config: Path, cache: Path):
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KUBE")},
            "KUBECONFIG": str(config),
            "HOME": str(cache),
        }
        self.cache = cache

    async def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None, **env: str
    ) -> tuple[int, str, str]:
        """kubectl in its own process, so the test's event loop keeps running the worker meanwhile."""
        process = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            f"--cache-dir={self.cache / 'kube-cache'}",
            *args,
            env={**self.env, **env},
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout=120)
        code = process.returncode or 0
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({code}):\n{out.decode()}\n{err.decode()}")
        return code, out.decode(), err.decode()


@pytest.fixture
async def kubectl(platform: Platform, tmp_path: Path):
    settings = Settings(
        home=tmp_path / "api-home",
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
    )
    with served(create_app(settings)) as url:
        yield Kubectl(kubeconfig(tmp_path / "kubeconfig", url), tmp_path)


def write(path: Path, *docs: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


async def test_discovery_lists_kratix_kinds_and_promise_apis(
    kubectl: Kubectl, platform: Platform, tmp_path: Path, git_remote: Path
) -> None:
    await kubectl("apply", "-f", write(tmp_path / "store.yaml", *store_and_destination(git_remote)))
    await kubectl("apply", "-f", str(EXAMPLE / "promise.yaml"))
    _, out, _ = await kubectl("api-resources")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["destinations"] == ["destinations", "dest,dests", "platform.kratix.io/v1alpha1", "false", "Destination"]
    assert rows["appconfigs"] == ["appconfigs", "appcfg", f"{GROUP}/v1alpha1", "true", "AppConfig"]
    assert rows["secrets"] == ["secrets", "v1", "true", "Secret"]
    _, out, _ = await kubectl("api-resources", "--categories=kratix", "-o", "name")
    assert {
        "promises.platform.kratix.io",
        "destinations.platform.kratix.io",
        "gitstatestores.platform.kratix.io",
    } <= set(out.split())
    assert "healthrecords.platform.kratix.io" not in out.split()  # Kratix's HealthRecord CRD has no category
    _, out, _ = await kubectl("api-resources", "--api-group=platform.kratix.io", "-o", "wide")
    promises = next(line for line in out.splitlines() if line.startswith("promises "))
    assert promises.split()[-2:] == ["create,delete,get,list,patch,update,watch", "kratix"]
    # kubectl asked for aggregated discovery and got it: no request per group-version followed
    _, _, err = await kubectl("api-resources", "-v=8", f"--cache-dir={tmp_path / 'fresh-cache'}")
    assert "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" in err
    assert "/apis/platform.kratix.io/v1alpha1" not in err
    _, out, err = await kubectl("get", "kratix")
    assert "promise.platform.kratix.io/app-config" in out and "destination.platform.kratix.io/local" in out
    assert "Error" not in err


async def test_quick_start_flow(
    kubectl: Kubectl, platform: Platform, tmp_path: Path, git_remote: Path, pipeline_images
) -> None:
    _, out, _ = await kubectl("apply", "-f", write(tmp_path / "store.yaml", *store_and_destination(git_remote)))
    assert out.splitlines() == [
        "gitstatestore.platform.kratix.io/default created",
        "destination.platform.kratix.io/local created",
    ]
    _, out, _ = await kubectl("apply", "-f", str(EXAMPLE / "promise.yaml"))
    assert out.strip() == "promise.platform.kratix.io/app-config created"
    await platform.wait_condition("promise", "app-config", "default", "Available", timeout=120)
    _, out, _ = await kubectl("get", "promises")
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "KIND", "API", "VERSION", "VERSION", "MESSAGE"]
    assert row.split()[:3] == ["app-config", "Available", "AppConfig"]

    _, out, _ = await kubectl("apply", "-f", str(EXAMPLE / "resource-request.yaml"))
    assert out.strip() == f"appconfig.{GROUP}/checkout created"
    _, out, _ = await kubectl("wait", "appconfig/checkout", "--for=condition=Reconciled", "--timeout=120s")
    assert out.strip() == f"appconfig.{GROUP}/checkout condition met"

    # get: the table with Kratix's default columns for a CRD that declares none, and every output kubectl offers
    _, out, _ = await kubectl("get", "appconfigs")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "MESSAGE", "STATUS"]
    assert lines[1].split()[0] == "checkout" and "Reconciled" in lines[1] or "Resource requested" in lines[1]
    _, out, _ = await kubectl("get", "appcfg", "checkout", "-o", "yaml")
    obj = yaml.safe_load(out)
    assert obj["apiVersion"] == f"{GROUP}/v1alpha1" and obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"]
    assert "kratix.io/work-cleanup" in obj["metadata"]["finalizers"]
    assert "_ktx" not in obj
    _, out, _ = await kubectl("get", "appconfig", "checkout", "-o", "json")
    assert json.loads(out)["spec"] == {"team": "payments", "size": "medium", "replicas": 1}  # defaulted
    _, out, _ = await kubectl("get", "appconfig", "checkout", "-o", "jsonpath={.spec.team}")
    assert out == "payments"
    _, out, _ = await kubectl("get", "appconfigs", "-o", "custom-columns=NAME:.metadata.name,TEAM:.spec.team")
    assert out.splitlines() == ["NAME       TEAM", "checkout   payments"]
    _, out, _ = await kubectl("get", "appconfigs", "-A")
    assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"] and out.splitlines()[1].split()[:2] == [
        "default",
        "checkout",
    ]
    _, out, _ = await kubectl("get", "appconfigs", "-l", "kratix.io/promise-name=app-config", "-o", "name")
    assert out.split() == [f"appconfig.{GROUP}/checkout"]
    _, out, err = await kubectl("get", "appconfigs", "-l", "kratix.io/promise-name notin (app-config)")
    assert out == "" and "No resources found in default namespace." in err
    _, out, _ = await kubectl("get", "appconfigs", "--field-selector", "metadata.name=checkout", "-o", "name")
    assert out.split() == [f"appconfig.{GROUP}/checkout"]
    code, _, err = await kubectl("get", "appconfigs", "--field-selector", "spec.team=payments", check=False)
    assert code != 0 and "field label not supported: spec.team" in err
    code, _, err = await kubectl("get", "appconfig", "nope", check=False)
    assert code != 0 and f'Error from server (NotFound): appconfigs.{GROUP} "nope" not found' in err

    _, out, _ = await kubectl("describe", "appconfig", "checkout")
    assert re.search(r"^Name:\s+checkout$", out, re.M) and re.search(r"^\s+Team:\s+payments$", out, re.M)
    assert re.search(r"^Labels:\s+kratix.io/promise-name=app-config$", out, re.M)

    # label pause and unpause: Kratix's control label reaches the workflow
    _, out, _ = await kubectl("label", "appconfig", "checkout", "kratix.io/paused=true")
    assert out.strip() == f"appconfig.{GROUP}/checkout labeled"
    paused = await platform.get("appconfig", "checkout", "default")
    assert paused["metadata"]["labels"]["kratix.io/paused"] == "true"
    await eventually(
        lambda: platform.get("appconfig", "checkout", "default"),
        lambda o: any(c.get("reason") == "PausedReconciliation" for c in o["status"].get("conditions", [])),
        what="the request paused",
    )
    _, out, _ = await kubectl("label", "appconfig", "checkout", "kratix.io/paused-")
    assert out.strip() == f"appconfig.{GROUP}/checkout unlabeled"
    assert "kratix.io/paused" not in (await platform.get("appconfig", "checkout", "default"))["metadata"]["labels"]

    _, out, _ = await kubectl("annotate", "appconfig", "checkout", "example.com/owner=payments")
    assert out.strip() == f"appconfig.{GROUP}/checkout annotated"
    annotations = (await platform.get("appconfig", "checkout", "default"))["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "payments"
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations  # client-side apply's record

    # edit: kubectl hands the object to $EDITOR and sends back what changed
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('size: medium', 'size: large'))\n"
    )
    _, out, _ = await kubectl("edit", "appconfig", "checkout", KUBE_EDITOR=f"{sys.executable} {editor}")
    assert out.strip() == f"appconfig.{GROUP}/checkout edited"
    assert (await platform.get("appconfig", "checkout", "default"))["spec"]["size"] == "large"

    _, out, _ = await kubectl("patch", "appconfig", "checkout", "--type=merge", "-p", '{"spec":{"size":"small"}}')
    assert out.strip() == f"appconfig.{GROUP}/checkout patched"
    _, out, _ = await kubectl(
        "patch", "appconfig", "checkout", "--type=json", "-p", '[{"op":"replace","path":"/spec/team","value":"web"}]'
    )
    assert out.strip() == f"appconfig.{GROUP}/checkout patched"
    assert (await platform.get("appconfig", "checkout", "default"))["spec"] == {
        "team": "web",
        "size": "small",
        "replicas": 1,
    }
    code, _, err = await kubectl("patch", "appconfig", "checkout", "-p", '{"spec":{"size":"large"}}', check=False)
    assert code != 0 and "application/strategic-merge-patch+json is not supported" in err
    code, _, err = await kubectl(
        "patch", "appconfig", "checkout", "--type=merge", "-p", '{"spec":{"size":"huge"}}', check=False
    )
    # kubectl words an Invalid Status from its causes, one per field
    assert code != 0 and err.startswith('The AppConfig "checkout" is invalid: spec.size: Unsupported value')

    # the status subresource, as kratix-sdk's publish_status writes it: kept, and still there after the next run
    _, out, _ = await kubectl(
        "patch", "appconfig", "checkout", "--subresource=status", "--type=merge", "-p", '{"status":{"endpoint":"x"}}'
    )
    assert out.strip() == f"appconfig.{GROUP}/checkout patched"
    runs = (await platform.get("appconfig", "checkout", "default"))["_ktx"]["runCounts"]
    await kubectl("label", "appconfig", "checkout", "kratix.io/manual-reconciliation=true")
    reconciled = await eventually(
        lambda: platform.get("appconfig", "checkout", "default"),
        lambda o: (
            o["_ktx"]["runCounts"] != runs
            and o["status"].get("observedGeneration") == o["metadata"]["generation"]
            and (get_condition(o["status"], "ConfigureWorkflowCompleted") or {}).get("status") == "True"
        ),
        what="a configure run after the status patch",
    )
    assert reconciled["status"]["endpoint"] == "x"
    _, out, _ = await kubectl("get", "appconfig", "checkout", "-o", "jsonpath={.status.endpoint}")
    assert out == "x"
    code, _, err = await kubectl(
        "patch",
        "appconfig",
        "checkout",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"kratix":{}}}',
        check=False,
    )
    assert code != 0 and "status.kratix: Forbidden" in err

    # apply again: the three-way merge from the last-applied annotation puts back what the file says
    request = yaml.safe_load((EXAMPLE / "resource-request.yaml").read_text())
    request["spec"]["size"] = "large"
    _, out, _ = await kubectl("apply", "-f", write(tmp_path / "request.yaml", request))
    assert out.strip() == f"appconfig.{GROUP}/checkout configured"
    assert (await platform.get("appconfig", "checkout", "default"))["spec"] == {
        "team": "payments",
        "size": "large",
        "replicas": 1,
    }

    # a dry run on the server validates and stores nothing
    request["spec"]["size"] = "small"
    _, out, _ = await kubectl("apply", "--dry-run=server", "-f", write(tmp_path / "dry.yaml", request))
    assert out.strip() == f"appconfig.{GROUP}/checkout configured (server dry run)"
    assert (await platform.get("appconfig", "checkout", "default"))["spec"]["size"] == "large"
    other = {**request, "metadata": {"name": "dry", "namespace": "default"}}
    _, out, _ = await kubectl("apply", "--dry-run=server", "-f", write(tmp_path / "dry-new.yaml", other))
    assert out.strip() == f"appconfig.{GROUP}/dry created (server dry run)"
    code, _, err = await kubectl("get", "appconfig", "dry", check=False)
    assert code != 0 and "NotFound" in err

    _, out, _ = await kubectl("apply", "--server-side", "-f", write(tmp_path / "ssa.yaml", request))
    assert out.strip() == f"appconfig.{GROUP}/checkout serverside-applied"
    assert (await platform.get("appconfig", "checkout", "default"))["spec"]["size"] == "small"

    # a Secret: created by kubectl, its values read back by a caller allowed to get Secrets
    _, out, _ = await kubectl("create", "secret", "generic", "creds", "--from-literal=token=s3cr3t")
    assert out.strip() == "secret/creds created"
    _, out, _ = await kubectl("get", "secret", "creds", "-o", "jsonpath={.data.token}")
    assert out == "czNjcjN0"
    _, out, _ = await kubectl("get", "secrets")
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert out.splitlines()[1].split()[:3] == ["creds", "Opaque", "1"]
    code, _, err = await kubectl("create", "secret", "generic", "creds", "--from-literal=token=x", check=False)
    assert code != 0 and err.strip() == 'error: failed to create secret secrets "creds" already exists'

    # delete with -f: the delete pipeline runs, the object shows as deleting until its workflow ends
    written = "local/resources/default/app-config/checkout/"
    assert [f for f in remote_files(git_remote) if f.startswith(written)]
    # kubectl waits (watching) until the object is gone: its delete pipeline ran and its files are removed
    _, out, _ = await kubectl("delete", "-f", str(EXAMPLE / "resource-request.yaml"), "--timeout=120s")
    assert out.strip() == f'appconfig.{GROUP} "checkout" deleted from default namespace'
    _, out, err = await kubectl("get", "appconfigs")
    assert out == "" and err.strip() == "No resources found in default namespace."
    assert not [f for f in remote_files(git_remote) if f.startswith(written)]
    _, out, _ = await kubectl("delete", "secret", "creds")
    assert out.strip() == 'secret "creds" deleted from default namespace'
