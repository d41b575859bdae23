"""Real kubectl against ktx's Kubernetes API for Kratix's PromiseRevisions and ResourceBindings: get with Kratix's
printer columns, describe, and edit of a binding's version, which upgrades its request."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from domain.revisions import binding_name, revision_name
from service.platform import Platform
from tests.e2e.test_kubectl import Kubectl, kubectl, write  # noqa: F401  (kubectl: the fixture)
from tests.integration.test_resource_lifecycle import store_and_destination
from tests.integration.test_revisions import at_version, promise_at, request


async def test_kubectl_gets_describes_and_edits_revisions_and_bindings(
    kubectl: Kubectl,  # noqa: F811  (the fixture)
    platform: Platform,
    tmp_path: Path,
    git_remote: Path,
    pipeline_images,
) -> None:
    await kubectl("apply", "-f", write(tmp_path / "store.yaml", *store_and_destination(git_remote)))
    await kubectl("apply", "-f", write(tmp_path / "v1.yaml", promise_at("v1")))
    await platform.wait_condition("promise", "app-config", "default", "Available", timeout=120)
    await kubectl("apply", "-f", write(tmp_path / "request.yaml", request("checkout")))
    await at_version(platform, "checkout", "v1")
    await kubectl("apply", "-f", write(tmp_path / "v2.yaml", promise_at("v2", log_level="debug")))
    await at_version(platform, "checkout", "v2")

    _, out, _ = await kubectl("get", "promiserevisions")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "PROMISE", "VERSION", "LATEST"]  # Kratix's columns, and no AGE: its CRD has none
    assert sorted(r[:4] for r in rows[1:]) == sorted(
        [
            [revision_name("app-config", "v1"), "app-config", "v1"],  # status.latest is omitted when false
            [revision_name("app-config", "v2"), "app-config", "v2", "true"],
        ]
    )
    name = binding_name("app-config", "checkout")
    _, out, _ = await kubectl("get", "resourcebindings")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "RESOURCE", "PROMISE", "DESIRED", "APPLIED"]
    assert rows[1][:5] == [name, "checkout", "app-config", "latest", "v2"]
    _, out, _ = await kubectl("describe", "resourcebinding", name)
    assert re.search(r"Last Applied Version:\s+v2\n", out)

    # Pinning back to v1 by editing the binding re-runs the request on the v1 revision.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('version: latest', 'version: v1'))\n"
    )
    _, out, _ = await kubectl("edit", "resourcebinding", name, KUBE_EDITOR=f"{sys.executable} {editor}")
    assert out.strip() == f"resourcebinding.platform.kratix.io/{name} edited"
    upgraded = await at_version(platform, "checkout", "v1")
    assert upgraded["status"]["resourceBindingVersion"] == "v1"
    code, _, err = await kubectl("delete", "promiserevision", revision_name("app-config", "v2"), check=False)
    assert code != 0 and "latest revision" in err

    # A binding applied before its request: held, shown, and adopted once the request comes.
    pin = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "ResourceBinding",
        "metadata": {"name": "later-pin", "namespace": "default"},
        "spec": {"version": "v1", "promiseRef": {"name": "app-config"}, "resourceRef": {"name": "later"}},
    }
    _, out, _ = await kubectl("apply", "-f", write(tmp_path / "pin.yaml", pin))
    assert out.strip() == "resourcebinding.platform.kratix.io/later-pin created"
    _, out, _ = await kubectl("get", "resourcebinding", "later-pin", "--no-headers")
    assert out.split()[:4] == ["later-pin", "later", "app-config", "v1"]
