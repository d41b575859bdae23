"""PromiseRelease against a real Temporal and a real HTTP server of Promises (tests/servers/promise_host.py): Kratix's
system test 1.9, each admission refusal, the version check's conditions, re-installation and cascade delete."""

from __future__ import annotations

import json

import pytest
import yaml

from domain.errors import InvalidDocument, NotFound
from domain.naming import promise_release_workflow_id
from domain.status import get_condition
from service.platform import Platform
from tests.kratix_documents import promise
from tests.servers.promise_host import TOKEN, PromiseHost
from tests.waiting import eventually

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "kratix-promise-release-authorization-header", "namespace": "kratix-platform-system"},
    "type": "Opaque",
    "stringData": {"authorizationHeader": TOKEN},
}


def hosted(name: str, version: str | None = "v1.0.0") -> bytes:
    """Kratix's test hoster's Promises: a CRD named after the Promise, labelled with its version."""
    doc = promise(name, name.capitalize(), labels={"kratix.io/promise-version": version} if version else None)
    return yaml.safe_dump(doc).encode()


def release(name: str, url: str, version: str = "v1.0.0", secret: bool = False) -> dict:
    source: dict = {"type": "http", "url": url}
    if secret:
        source["secretRef"] = {"name": SECRET["metadata"]["name"], "namespace": SECRET["metadata"]["namespace"]}
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "PromiseRelease",
        "metadata": {"name": name},
        "spec": {"version": version, "sourceRef": source},
    }


def installed(obj: dict) -> tuple[str, str, str] | None:
    found = get_condition(obj.get("status") or {}, "Installed")
    return (found["status"], found["reason"], found["message"]) if found else None


def published(obj: dict) -> bool:
    """A Promise's workflow shows its document once it first publishes, a moment after it starts."""
    return "metadata" in obj and "deletionTimestamp" not in obj["metadata"]


async def gone(platform: Platform, kind: str, name: str) -> bool:
    try:
        await platform.get(kind, name)
    except NotFound:
        return True
    return False


@pytest.fixture
def host():
    with PromiseHost() as server:
        yield server


async def test_kratix_system_test_1_9_fetches_over_http_with_and_without_a_header_and_deletes_in_cascade(
    platform: Platform, host: PromiseHost
) -> None:
    host.routes["/promise"] = hosted("insecurepro")
    host.routes["/secure/promise"] = hosted("securepro")
    await platform.apply(SECRET)
    secure = await platform.apply(release("secure", f"{host.url}/secure/promise", secret=True))
    insecure = await platform.apply(release("insecure", f"{host.url}/promise"))
    assert (secure.action, insecure.action, secure.warnings) == ("created", "created", [])

    for name, promise_name in (("insecure", "insecurepro"), ("secure", "securepro")):
        got = await eventually(lambda: platform.get("promise", promise_name), published, what=f"promise {promise_name}")
        assert got["metadata"]["labels"]["kratix.io/promise-release-name"] == name
        assert got["metadata"]["labels"]["kratix.io/promise-version"] == "v1.0.0"
        rel = await eventually(
            lambda: platform.get("promiserelease", name),
            lambda r: installed(r) == ("True", "InstalledSuccessfully", "Installed successfully"),
            what=f"release {name} installed",
        )
        assert rel["status"]["status"] == "Installed"
    assert [r["metadata"]["name"] for r in await platform.list("promiserelease")] == ["insecure", "secure"]
    # The secure route was reached with the Secret's header, and the header never reached Temporal's history.
    assert ("/secure/promise", TOKEN) in host.requests
    history = await platform.client.get_workflow_handle(promise_release_workflow_id("secure")).fetch_history()
    assert TOKEN not in json.dumps(history.to_json_dict())

    for name, promise_name in (("insecure", "insecurepro"), ("secure", "securepro")):
        await platform.delete("promiserelease", name)
        await eventually(lambda: gone(platform, "promise", promise_name), what=f"promise {promise_name} deleted")
        await eventually(lambda: gone(platform, "promiserelease", name), what=f"release {name} deleted")


@pytest.mark.parametrize(
    "path, body, secret, reason",
    [
        ("/secure/promise", hosted("p"), False, "status code 401"),
        ("/missing", None, False, "status code 404"),
        ("/other", yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap"}).encode(), False, "of kind: ConfigMap"),
        ("/two", hosted("p") + b"---\n" + hosted("q"), False, "found multiple documents"),
        ("/empty", b"", False, "holds no document"),
        ("/garbage", b"{not: [yaml", False, "failed to unmarshal"),
        ("/big", b"#" * (1024 * 1024 + 1), False, "over 1048576 bytes"),
        ("/secret-missing", hosted("p"), True, "failed to fetch data from secretRef"),
        ("/redirect/redirect/redirect/redirect/redirect/redirect/x", None, False, "TooManyRedirects"),
    ],
)
async def test_a_release_whose_promise_cannot_be_fetched_is_refused_and_nothing_is_created(
    platform: Platform, host: PromiseHost, path: str, body: bytes | None, secret: bool, reason: str
) -> None:
    if body is not None:
        host.routes[path] = body
    with pytest.raises(InvalidDocument) as refused:
        await platform.apply(release("bad", host.url + path, secret=secret))
    assert refused.value.errors[0].field == "spec.sourceRef.url"
    assert reason in refused.value.errors[0].reason
    assert await gone(platform, "promiserelease", "bad")


@pytest.mark.parametrize(
    "url, reason",
    [
        ("", "sourceRef.url must be set"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://", "with a host"),
        ("http://example.com/a b", "no spaces"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
    ],
)
async def test_a_release_url_that_is_not_http_is_refused_before_any_fetch(
    platform: Platform, url: str, reason: str
) -> None:
    with pytest.raises(InvalidDocument) as refused:
        await platform.apply(release("bad", url))
    assert refused.value.errors[0].field.startswith("spec.sourceRef.url")
    assert reason in str(refused.value)


async def test_the_version_check_sets_kratix_s_conditions_and_is_retried_until_it_passes(
    platform: Platform, host: PromiseHost
) -> None:
    host.routes["/promise"] = hosted("versioned", "v1.0.0")
    applied = await platform.apply(release("rel", f"{host.url}/promise", version="v2.0.0"))
    assert applied.warnings == [
        "Warning: version labels do not match, found: v1.0.0, expected: v2.0.0, installation will fail"
    ]
    rel = await eventually(lambda: platform.get("promiserelease", "rel"), installed, what="a condition")
    assert installed(rel) == (
        "False",
        "VersionNotMatching",
        "Version labels do not match, found: v1.0.0, expected: v2.0.0",
    )
    assert rel["status"]["status"] == "Error installing"
    assert await gone(platform, "promise", "versioned")

    host.routes["/promise"] = hosted("versioned", None)
    await eventually(
        lambda: platform.get("promiserelease", "rel"),
        lambda r: installed(r) == ("False", "VersionLabelNotFound", "Version label not found on Promise"),
        what="VersionLabelNotFound",
    )
    del host.routes["/promise"]
    rel = await eventually(
        lambda: platform.get("promiserelease", "rel"),
        lambda r: installed(r) == ("False", "FailedToFetchPromise", "Failed to fetch Promise from URL"),
        what="FailedToFetchPromise",
    )
    assert any("status code 404" in e["message"] for e in rel["_ktx"]["events"])

    # The source catches up: the retries (with backoff) install it, and the workflow never failed meanwhile.
    host.routes["/promise"] = hosted("versioned", "v2.0.0")
    await eventually(
        lambda: platform.get("promiserelease", "rel"),
        lambda r: installed(r) == ("True", "InstalledSuccessfully", "Installed successfully"),
        what="installed at v2.0.0",
    )
    got = await platform.get("promise", "versioned")
    assert got["metadata"]["labels"]["kratix.io/promise-version"] == "v2.0.0"


async def test_a_release_without_a_version_takes_the_promise_s_and_a_new_version_updates_the_promise(
    platform: Platform, host: PromiseHost
) -> None:
    host.routes["/promise"] = hosted("adopted", "v1.0.0")
    await platform.apply(release("rel", f"{host.url}/promise", version=""))
    rel = await eventually(
        lambda: platform.get("promiserelease", "rel"),
        lambda r: installed(r) is not None and installed(r)[0] == "True",
        what="installed",
    )
    assert rel["spec"]["version"] == "v1.0.0"
    assert rel["metadata"]["generation"] == 2

    # Bumping the upstream file alone changes nothing; bumping spec.version fetches and updates the Promise.
    host.routes["/promise"] = hosted("adopted", "v1.1.0")
    changed = await platform.apply(release("rel", f"{host.url}/promise", version="v1.1.0"))
    assert changed.action == "configured"
    await eventually(
        lambda: platform.get("promise", "adopted"),
        lambda p: published(p) and p["metadata"]["labels"]["kratix.io/promise-version"] == "v1.1.0",
        what="promise updated to v1.1.0",
    )


async def test_a_deleted_promise_is_installed_again_while_its_release_exists(
    platform: Platform, host: PromiseHost
) -> None:
    host.routes["/promise"] = hosted("phoenix")
    await platform.apply(release("rel", f"{host.url}/promise"))
    first = await eventually(lambda: platform.get("promise", "phoenix"), published, what="promise installed")
    await platform.delete("promise", "phoenix")
    again = await eventually(
        lambda: platform.get("promise", "phoenix"),
        lambda p: published(p) and p["metadata"]["uid"] != first["metadata"]["uid"],
        what="promise installed again",
    )
    assert again["metadata"]["labels"]["kratix.io/promise-release-name"] == "rel"
    rel = await platform.get("promiserelease", "rel")
    assert any(e["reason"] == "PromiseDeleted" for e in rel["_ktx"]["events"])


async def test_a_promise_another_release_installed_is_not_taken_over(platform: Platform, host: PromiseHost) -> None:
    host.routes["/promise"] = hosted("shared")
    await platform.apply(release("first", f"{host.url}/promise"))
    await eventually(
        lambda: platform.get("promiserelease", "first"), lambda r: (installed(r) or ("",))[0] == "True", what="first"
    )
    await platform.apply(release("second", f"{host.url}/promise"))
    second = await eventually(lambda: platform.get("promiserelease", "second"), installed, what="second's condition")
    assert installed(second) == ("False", "FailedToCreateOrUpdatePromise", "Failed to create or update Promise")
    assert any('belongs to PromiseRelease "first"' in e["message"] for e in second["_ktx"]["events"])
    got = await platform.get("promise", "shared")
    assert got["metadata"]["labels"]["kratix.io/promise-release-name"] == "first"


async def test_the_authorization_header_follows_a_redirect_on_the_same_host_only(
    platform: Platform, host: PromiseHost
) -> None:
    await platform.apply(SECRET)
    host.routes["/secure/promise"] = hosted("redirected")
    await platform.apply(release("same", f"{host.url}/redirect/secure/promise", secret=True))
    with PromiseHost() as other:
        other.routes["/secure/promise"] = hosted("elsewhere")
        host.redirects["/away"] = f"{other.url}/secure/promise"
        with pytest.raises(InvalidDocument, match="status code 401"):
            await platform.apply(release("away", f"{host.url}/away", secret=True))
        assert other.requests == [("/secure/promise", None)]
