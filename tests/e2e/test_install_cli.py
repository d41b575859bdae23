"""`ktx install` through the real CLI and the embedded stack: a URL behind an Authorization header becomes a
PromiseRelease that installs the example Promise; a refused fetch is an error naming why; a file is applied."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli import EXAMPLE, ktx  # noqa: F401 - the embedded-stack fixture
from tests.servers.promise_host import PromiseHost


@pytest.fixture
def host():
    with PromiseHost() as server:
        server.routes["/secure/app-config/promise.yaml"] = (EXAMPLE / "promise.yaml").read_bytes()
        yield server


def test_install_from_a_url_with_a_header_and_from_a_file(ktx, host: PromiseHost) -> None:  # noqa: F811
    run, _ = ktx
    url = f"{host.url}/secure/app-config/promise.yaml"

    refused = run("install", url, check=False)
    assert refused.returncode == 1
    assert "spec.sourceRef.url: failed to fetch promise: failed to get Promise from URL: status code 401" in (
        refused.stderr
    )

    run(
        "create",
        "secret",
        "generic",
        "promise-host",
        "-n",
        "default",
        "--from-literal=authorizationHeader=Bearer your-secret-token",
    )
    assert (
        run(
            "install", url, "--name", "app-config", "--version", "v0.1.0", "--secret", "default/promise-host"
        ).stdout.strip()
        == "promiserelease/app-config created"
    )
    run("wait", "promiserelease", "app-config", "--for=condition=Installed", "--timeout=120s")
    table = run("get", "promiserelease").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "VERSION", "MESSAGE", "AGE"]
    assert table[1].split()[:5] == ["app-config", "Installed", "v0.1.0", "Installed", "successfully"]
    assert "InstalledSuccessfully" in run("describe", "promiserelease", "app-config").stdout
    assert "kratix.io/promise-release-name: app-config" in run("get", "promise", "app-config", "-o", "yaml").stdout

    assert run("delete", "promiserelease", "app-config").stdout.strip() == "promiserelease/app-config deleted"
    assert run("get", "promise", "app-config", check=False).returncode == 1

    mismatch = run("install", str(EXAMPLE / "promise.yaml"), "--version", "v9", check=False)
    assert "Version labels do not match, found: v0.1.0, expected: v9" in mismatch.stderr
    assert run("install", str(EXAMPLE / "promise.yaml")).stdout.strip() == "promise/app-config created"
