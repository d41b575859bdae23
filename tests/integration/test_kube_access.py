"""Access to the Kubernetes API with real kubectl: the HTTPS listener (certificate verified with the stack's CA, a
token on every request), `kubectl auth can-i` and `whoami` for platform, team and pipeline tokens, and the
apiserver-worded 403 a refusal is. The app is served by its own listeners (api/listeners.py) over a real Temporal dev
server and worker; the kubeconfig comes from the real `ktx kubeconfig`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

from api.app import create_app
from api.kube.access_review import AUTHENTICATION
from api.listeners import Listeners
from cli import kube_credentials
from cli.stack import free_port
from domain.kube import pipeline_token
from service.platform import Platform
from tests.cli_process import run_ktx
from tests.integration.test_api_auth import run_api
from tests.kratix_documents import GROUP, promise
from tests.waiting import eventually, eventually_blocking
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
PLATFORM_TOKEN, TEAM_TOKEN = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
TEAM = "team-a-ci"


@dataclass
class KubeApi:
    http_url: str
    https_url: str
    credentials: kube_credentials.KubeCredentials
    home: Path
    settings: Settings

    def admin_token(self) -> str:
        return self.credentials.admin_token.read_text().strip()


def _tokens_file(path: Path) -> Path:
    entries = [
        {"name": "ops", "role": "platform", "sha256": hashlib.sha256(PLATFORM_TOKEN.encode()).hexdigest()},
        {
            "name": TEAM,
            "role": "team",
            "namespaces": ["team-a"],
            "sha256": hashlib.sha256(TEAM_TOKEN.encode()).hexdigest(),
        },
    ]
    path.write_text(yaml.safe_dump(entries))
    return path


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


@contextmanager
def listening(platform: Platform, home: Path, tokens_file: Path | None) -> Iterator[KubeApi]:
    """The API process's two listeners (a thread of their own), the stack's credentials made as `ktx up` makes them."""
    credentials = kube_credentials.ensure(home, [])
    http_port, https_port = free_port(), free_port()
    settings = Settings(
        home=home,
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
        api_port=http_port,
        api_tokens_file=tokens_file,
        api_admin_token_file=credentials.admin_token,
        kube_api_port=https_port,
        kube_api_tls_cert=credentials.cert,
        kube_api_tls_key=credentials.key,
        kube_api_tls_ca=credentials.ca,
    )
    listeners = Listeners(settings, create_app(settings))
    thread = threading.Thread(target=asyncio.run, args=(listeners.serve(),))
    thread.start()
    api = KubeApi(f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}", credentials, home, settings)
    try:
        eventually_blocking(
            lambda: httpx.get(f"{api.https_url}/readyz", verify=trusting(credentials.ca)).status_code,
            lambda code: code == 200,
            timeout=60,
            what="the HTTPS listener to answer",
            ignoring=(httpx.HTTPError,),
        )
        yield api
    finally:
        listeners.stop()
        thread.join(timeout=30)


@pytest.fixture
async def kube_api(platform: Platform, tmp_path: Path):
    with listening(platform, tmp_path / "home", _tokens_file(tmp_path / "tokens.yaml")) as api:
        # The Widget Promise's API (widgets.<GROUP>) is what a team may request.
        async with httpx.AsyncClient(base_url=api.http_url, timeout=60) as http:
            response = await http.post(
                "/apply",
                content=yaml.safe_dump(promise("widgets", "Widget")),
                headers={"Authorization": f"Bearer {PLATFORM_TOKEN}"},
            )
            assert response.status_code == 200, response.text
        await eventually(
            lambda: platform.catalog(), lambda catalog: "widgets" in catalog.apis, what="the Widget API registered"
        )
        yield api


async def kubeconfig(api: KubeApi, token: str | None, namespace: str = "default") -> Path:
    """What the real `ktx kubeconfig` prints for the listener's URL and CA: with the token given, else the admin's."""
    where = ["--server", api.https_url, "--certificate-authority", str(api.credentials.ca)]
    if token is None:
        code, out, err = await ktx("kubeconfig", *where, "-n", namespace, home=api.home)
    else:
        code, out, err = await ktx(
            "kubeconfig", "--token", token, "--context", "team-a", "-n", namespace, *where, home=api.home
        )
    assert code == 0, err
    path = api.home / f"kubeconfig-{hashlib.sha256((token or '').encode()).hexdigest()[:8]}-{namespace}"
    path.write_text(out)
    return path


async def ktx(*args: str, home: Path) -> tuple[int, str, str]:
    return await run_ktx(*args, env={"KTX_HOME": str(home)})


async def kubectl(config: Path, *args: str) -> tuple[int, str, str]:
    """Real kubectl in its own process (the test's event loop keeps running the worker meanwhile)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(KUBECONFIG=str(config), HOME=str(config.parent))
    process = await asyncio.create_subprocess_exec(
        KUBECTL, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


def pipeline(settings: Settings, namespace: str = "team-a", permissions: list | None = None) -> str:
    """A token as the worker of `settings` mints it for the Widget Promise's resource configure pipeline in
    `namespace`."""
    obj = pipeline_token.ObjectRef(
        group=GROUP, version="v1", kind="Widget", plural="widgets", name="first", namespace=namespace
    )
    claims = pipeline_token.claims_for(
        obj=obj,
        promise="widgets",
        workflow_type="resource",
        action="configure",
        pipeline="instance",
        permissions=[pipeline_token.Permission.model_validate(p) for p in permissions or []],
        expires_at=0,
    )
    return pipeline_token.mint(claims, settings.pipeline_token_key(), ttl_s=600)


WIDGETS = f"widgets.{GROUP}"  # kubectl takes `plural.group` as it is, discovery or not


@pytest.mark.parametrize(
    "who, args, allowed",
    [
        ("platform", ["create", "secrets", "-n", "team-b"], True),
        ("platform", ["delete", "promises"], True),
        ("platform", ["list", WIDGETS, "-A"], True),
        ("admin", ["create", "destinations"], True),
        ("team", ["create", WIDGETS, "-n", "team-a"], True),
        ("team", ["patch", WIDGETS, "-n", "team-a"], True),
        ("team", ["delete", WIDGETS, "-n", "team-a"], True),
        ("team", ["create", WIDGETS, "-n", "team-b"], False),
        ("team", ["list", WIDGETS, "-A"], False),  # across all namespaces needs a cluster-wide rule, as in RBAC
        ("team", ["patch", WIDGETS, "--subresource=status", "-n", "team-a"], False),
        ("team", ["get", "secrets", "-n", "team-a"], False),
        ("team", ["get", "promises"], True),
        ("team", ["create", "promises"], False),
        ("team", ["watch", "promises"], True),
        ("team", ["get", "customresourcedefinitions"], True),
        ("team", ["list", "works", "-n", "team-a"], True),
        ("team", ["list", "events", "-n", "team-b"], False),
        ("team", ["get", "healthrecords.platform.kratix.io", "-n", "team-a"], True),
        ("team", ["create", "healthrecords.platform.kratix.io", "-n", "team-a"], False),
        ("team", ["get", "namespaces/team-a"], True),
        ("team", ["get", "namespaces/team-b"], False),
        ("team", ["list", "destinations.platform.kratix.io"], False),
        ("pipeline", ["patch", WIDGETS, "--subresource=status", "-n", "team-a"], True),
        ("pipeline", ["get", WIDGETS, "-n", "team-a"], True),
        ("pipeline", ["get", WIDGETS, "-n", "team-b"], False),
        ("pipeline", ["get", "secrets", "-n", "team-a"], False),
        ("pipeline", ["update", WIDGETS, "-n", "team-a"], True),
        ("pipeline", ["create", "works", "-n", "team-a"], True),
        ("pipeline", ["get", "promises"], False),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
async def test_kubectl_auth_can_i_answers_for_each_kind_of_token(
    kube_api: KubeApi, who: str, args: list[str], allowed: bool
) -> None:
    minted = pipeline(kube_api.settings)
    token = {"platform": PLATFORM_TOKEN, "admin": None, "team": TEAM_TOKEN, "pipeline": minted}[who]
    code, out, err = await kubectl(await kubeconfig(kube_api, token), "auth", "can-i", *args)
    assert (code, out.splitlines()[0].split(" - ")[0]) == ((0, "yes") if allowed else (1, "no")), (out, err)


async def test_a_refusal_says_why_in_ktx_terms(kube_api: KubeApi) -> None:
    config = await kubeconfig(kube_api, TEAM_TOKEN, "team-a")
    assert (await kubectl(config, "auth", "can-i", "get", "secrets"))[1] == (
        "no - Secrets are managed by platform tokens\n"
    )
    assert (await kubectl(config, "auth", "can-i", "get", WIDGETS, "-n", "team-b"))[1] == (
        "no - its namespaces are team-a\n"
    )
    config = await kubeconfig(kube_api, pipeline(kube_api.settings))
    _, out, _ = await kubectl(config, "auth", "can-i", "get", "secrets", "-n", "team-a")
    assert out.startswith('no - pipeline "system:serviceaccount:team-a:widgets-resource-configure-instance" holds')


@pytest.mark.parametrize(
    "who, args, refused",
    [
        (
            "team",
            ["get", "secrets", "-n", "team-b"],
            'secrets is forbidden: User "team-a-ci" cannot list resource '
            '"secrets" in API group "" in the namespace "team-b": Secrets are managed by platform tokens',
        ),
        (
            "team",
            ["get", "widgets", "-n", "team-b"],
            f'widgets.{GROUP} is forbidden: User "team-a-ci" cannot list '
            f'resource "widgets" in API group "{GROUP}" in the namespace "team-b": its namespaces are team-a',
        ),
        (
            "team",
            ["get", "widgets", "first", "-n", "team-b"],
            f'widgets.{GROUP} "first" is forbidden: User '
            f'"team-a-ci" cannot get resource "widgets" in API group "{GROUP}" in the namespace "team-b": '
            "its namespaces are team-a",
        ),
        (
            "team",
            ["delete", "promise", "widgets"],
            'promises.platform.kratix.io "widgets" is forbidden: User '
            '"team-a-ci" cannot delete resource "promises" in API group "platform.kratix.io" at the cluster scope: '
            "Promises are managed by platform tokens",
        ),
        (
            "pipeline",
            ["get", "secrets", "-n", "team-a"],
            "secrets is forbidden: User "
            '"system:serviceaccount:team-a:widgets-resource-configure-instance" cannot list resource "secrets" in API '
            'group "" in the namespace "team-a": pipeline',
        ),
        (
            "pipeline",
            ["get", "widgets", "-n", "team-b"],
            f"widgets.{GROUP} is forbidden: User "
            '"system:serviceaccount:team-a:widgets-resource-configure-instance" cannot list resource "widgets"',
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v)[:20],
)
async def test_what_can_i_says_no_to_is_refused_with_the_apiservers_words(
    kube_api: KubeApi, who: str, args: list[str], refused: str
) -> None:
    config = await kubeconfig(kube_api, TEAM_TOKEN if who == "team" else pipeline(kube_api.settings), "team-a")
    verb = {"get": "list" if len(args) < 3 or args[2].startswith("-") else "get", "delete": "delete"}[args[0]]
    can, _, _ = await kubectl(config, "auth", "can-i", verb, *args[1:])
    code, _, err = await kubectl(config, *args)
    assert can == 1 and code == 1
    assert err.startswith(f"Error from server (Forbidden): {refused}"), err


async def test_what_can_i_says_yes_to_is_done(kube_api: KubeApi) -> None:
    config = await kubeconfig(kube_api, TEAM_TOKEN, "team-a")
    for args in (["get", "widgets"], ["get", "promises"]):
        assert (await kubectl(config, "auth", "can-i", "list", args[1]))[0] == 0
        code, out, err = await kubectl(config, *args)
        assert code == 0, err
    widget = {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "first", "namespace": "team-a"}}
    (kube_api.home / "widget.yaml").write_text(yaml.safe_dump(widget))
    code, out, err = await kubectl(config, "create", "-f", str(kube_api.home / "widget.yaml"))
    assert code == 0 and out.strip() == f"widget.{GROUP}/first created", err
    code, out, err = await kubectl(
        await kubeconfig(kube_api, pipeline(kube_api.settings)), "get", "widgets", "-n", "team-a"
    )
    assert code == 0 and "first" in out, err


def rows(listing: str) -> dict[str, list[str]]:
    """`kubectl auth can-i --list`'s table: each row's first column (resource or URL) and its verbs."""
    found = {}
    for line in listing.splitlines()[1:]:
        columns = line.split()
        found[columns[0]] = columns[-(len(columns) - 3) :] if len(columns) > 3 else columns[-1:]
    return found


async def test_kubectl_auth_can_i_list_shows_the_rules_that_apply_in_the_namespace(kube_api: KubeApi) -> None:
    config = await kubeconfig(kube_api, TEAM_TOKEN, "team-a")
    code, own, err = await kubectl(config, "auth", "can-i", "--list")
    assert code == 0, err
    listed = rows(own)
    assert " ".join(listed[WIDGETS]) == "[get list watch create update patch delete deletecollection]"
    assert listed["promises.platform.kratix.io"] == ["[get", "list", "watch]"]
    assert "secrets" not in listed and "destinations.platform.kratix.io" not in listed
    # Elsewhere only what is bound cluster-wide applies: the Promises, CRDs and its own Namespace, not the widgets.
    code, other, err = await kubectl(config, "auth", "can-i", "--list", "-n", "team-b")
    assert code == 0, err
    assert WIDGETS not in rows(other) and "promises.platform.kratix.io" in rows(other)
    assert "namespaces" in rows(other) and "[team-a]" in other
    code, everything, err = await kubectl(await kubeconfig(kube_api, PLATFORM_TOKEN), "auth", "can-i", "--list")
    assert code == 0, err
    assert everything.splitlines()[1].split() == ["*.*", "[]", "[]", "[*]"]


@pytest.mark.parametrize(
    "who, username, groups",
    [
        ("admin", "ktx-admin", "[ktx:platform system:authenticated]"),
        ("team", TEAM, "[ktx:team system:authenticated]"),
        (
            "pipeline",
            "system:serviceaccount:team-a:widgets-resource-configure-instance",
            "[system:serviceaccounts system:serviceaccounts:team-a system:authenticated]",
        ),
    ],
)
async def test_kubectl_auth_whoami_names_the_caller(kube_api: KubeApi, who: str, username: str, groups: str) -> None:
    token = {"admin": None, "team": TEAM_TOKEN, "pipeline": pipeline(kube_api.settings)}[who]
    code, out, err = await kubectl(await kubeconfig(kube_api, token), "auth", "whoami")
    assert code == 0, err
    assert out.splitlines() == ["ATTRIBUTE   VALUE", f"Username    {username}", f"Groups      {groups}"]


async def test_kubectl_verifies_the_listener_with_the_stack_ca(kube_api: KubeApi, tmp_path: Path) -> None:
    # Another CA, as `ktx up` makes one under another KTX_HOME: the listener's certificate does not chain to it.
    stranger = kube_credentials.ensure(tmp_path / "other-home", [])
    config = await kubeconfig(kube_api, None)
    document = yaml.safe_load(config.read_text())
    document["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        stranger.ca.read_bytes()
    ).decode()
    wrong = tmp_path / "wrong-ca"
    wrong.write_text(yaml.safe_dump(document))
    code, _, err = await kubectl(wrong, "auth", "whoami")
    assert code == 1 and "x509: certificate signed by unknown authority" in err, err
    # Expected under a name the certificate does not carry, it is refused too.
    document["clusters"][0]["cluster"]["tls-server-name"] = "ktx.example.com"
    document["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        kube_api.credentials.ca.read_bytes()
    ).decode()
    wrong.write_text(yaml.safe_dump(document))
    code, _, err = await kubectl(wrong, "auth", "whoami")
    assert code == 1 and "certificate is valid for" in err, err


async def test_the_https_listener_asks_every_request_for_a_token(platform: Platform, tmp_path: Path) -> None:
    # No tokens file: the embedded stack's plain-HTTP port serves this machine without one, as before.
    with listening(platform, tmp_path / "home", None) as api:
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{api.http_url}/objects/promise")).status_code == 200
            whoami = f"/apis/{AUTHENTICATION}/v1/selfsubjectreviews"
            local = await http.post(f"{api.http_url}{whoami}", json={})
            assert local.json()["status"]["userInfo"]["username"] == "loopback"
        async with httpx.AsyncClient(verify=trusting(api.credentials.ca), timeout=30) as https:
            refused = await https.post(f"{api.https_url}{whoami}", json={})
            assert (refused.status_code, refused.json()) == (
                401,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "Unauthorized",
                    "reason": "Unauthorized",
                    "code": 401,
                },
            )
            rest = await https.get(f"{api.https_url}/objects/promise")
            assert rest.status_code == 401 and rest.json()["message"] == "missing bearer token"
            unknown = await https.post(f"{api.https_url}{whoami}", json={}, headers={"Authorization": "Bearer nope"})
            assert unknown.status_code == 401
            forged = pipeline(api.settings)[:-4] + "AAAA"
            assert (
                await https.post(f"{api.https_url}{whoami}", headers={"Authorization": f"Bearer {forged}"})
            ).status_code == 401
            admin = await https.get(
                f"{api.https_url}/objects/promise", headers={"Authorization": f"Bearer {api.admin_token()}"}
            )
            assert admin.status_code == 200
            # Discovery and OpenAPI take any Kubernetes caller's token, a pipeline's too (kubectl apply reads them).
            as_pipeline = {"Authorization": f"Bearer {pipeline(api.settings)}"}
            for path in ("/apis", "/openapi/v3"):
                assert (await https.get(f"{api.https_url}{path}", headers=as_pipeline)).status_code == 200, path
                assert (await https.get(f"{api.https_url}{path}")).status_code == 401, path
        # kubectl with no credentials at all asks for a password on its stdin; one the API does not know it sends.
        code, _, err = await kubectl(await kubeconfig(api, secrets.token_urlsafe(32)), "auth", "whoami")
        assert code == 1 and "error: You must be logged in to the server (Unauthorized)" in err, err


@pytest.mark.parametrize(
    "env, phrase",
    [
        ({}, "KTX_KUBE_API_PORT is set: the HTTPS listener needs KTX_KUBE_API_TLS_CERT and KTX_KUBE_API_TLS_KEY"),
        (
            {"KTX_KUBE_API_TLS_CERT": "/nonexistent/tls.crt", "KTX_KUBE_API_TLS_KEY": "/nonexistent/tls.key"},
            "KTX_KUBE_API_TLS_CERT /nonexistent/tls.crt: no such file",
        ),
        ({"KTX_API_ADMIN_TOKEN_FILE": "/nonexistent/admin-token"}, "KTX_API_ADMIN_TOKEN_FILE /nonexistent/admin-token"),
    ],
)
def test_the_api_refuses_to_start_on_an_https_listener_it_cannot_serve(
    tmp_path: Path, env: dict[str, str], phrase: str
) -> None:
    result = run_api(tmp_path, KTX_KUBE_API_PORT=str(free_port()), **env)
    assert result.returncode == 1 and f"ktx api: refusing to start: {phrase}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
