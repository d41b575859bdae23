"""Kratix's system test 1.9 as Kratix runs it, with kubectl: its promise-release.yaml (a Secret and two releases,
one behind an Authorization header) applied to ktx's Kubernetes API, the Promises installed, each release deleted
with its Promise."""

from __future__ import annotations

from pathlib import Path

from service.platform import Platform
from tests.e2e.test_kubectl import Kubectl, kubectl, write  # noqa: F401 - the kubectl fixture
from tests.integration.test_promise_release import SECRET, hosted, release
from tests.servers.promise_host import PromiseHost
from tests.waiting import eventually


async def test_kratix_promise_release_yaml_through_kubectl(
    kubectl: Kubectl,  # noqa: F811 - the fixture imported above
    platform: Platform,
    tmp_path: Path,
) -> None:
    with PromiseHost() as host:
        host.routes["/promise"] = hosted("insecurepro")
        host.routes["/secure/promise"] = hosted("securepro")
        manifest = write(
            tmp_path / "promise-release.yaml",
            SECRET,
            release("secure", f"{host.url}/secure/promise", secret=True),
            release("insecure", f"{host.url}/promise"),
        )
        # This fixture's API keeps Secrets under its own home, the worker under the platform's (an embedded stack
        # shares one): the worker's copy is put there directly.
        await platform.apply(SECRET)
        _, out, _ = await kubectl("explain", "promiserelease.spec.sourceRef")
        assert "secretRef" in out and "Type of the source" in out  # Kratix's CRD schema, as kubectl explains it
        _, out, _ = await kubectl("apply", "-f", manifest)
        assert "promiserelease.platform.kratix.io/secure created" in out
        assert "promiserelease.platform.kratix.io/insecure created" in out
        await kubectl("wait", "promiserelease/secure", "promiserelease/insecure", "--for=condition=Installed")
        _, out, _ = await kubectl("get", "promiserelease")
        assert out.splitlines()[0].split() == ["NAME", "STATUS", "VERSION"]
        assert out.splitlines()[1].split() == ["insecure", "Installed", "v1.0.0"]
        _, out, _ = await kubectl("get", "promiserelease", "secure", "-o", "jsonpath={.metadata.finalizers}")
        assert out == '["kratix.io/promise-cleanup"]'
        _, out, _ = await kubectl("describe", "promiserelease", "secure")
        assert "InstalledSuccessfully" in out and 'Promise "securepro" created at version v1.0.0' in out
        for name in ("insecurepro", "securepro"):
            await eventually(lambda: kubectl("get", "promise", name, check=False), lambda r: r[0] == 0, what=name)

        code, _, err = await kubectl(
            "apply", "-f", write(tmp_path / "bad.yaml", release("bad", f"{host.url}/nothing-here")), check=False
        )
        assert code == 1 and "failed to fetch promise: failed to get Promise from URL: status code 404" in err

        # A version label that would fail the install is admitted with Kratix's warning, sent as the apiserver sends
        # one (a `Warning: 299` header): kubectl prints it, prefixed as it prefixes every warning, on stderr.
        wrong = write(tmp_path / "wrong.yaml", release("wrong", f"{host.url}/promise", version="v2.0.0"))
        _, out, err = await kubectl("apply", "-f", wrong)
        assert "promiserelease.platform.kratix.io/wrong created" in out
        assert (
            "Warning: Warning: version labels do not match, found: v1.0.0, expected: v2.0.0, installation will fail"
            in err.splitlines()
        )
        await kubectl("delete", "promiserelease", "wrong")

        for name, promise_name in (("insecure", "insecurepro"), ("secure", "securepro")):
            await kubectl("delete", "promiserelease", name)
            _, out, _ = await kubectl("get", "promise", "-o", "name")
            assert f"promise.platform.kratix.io/{promise_name}" not in out.split()
            _, out, _ = await kubectl("get", "promiserelease", "-o", "name")
            assert f"promiserelease.platform.kratix.io/{name}" not in out.split()
