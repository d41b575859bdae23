"""What a podman pipeline container gets to reach the platform API, probed from inside real containers: Kubernetes'
ServiceAccount files and Service variables, an HTTPS endpoint that is the API's (a stand-in HTTPS server here,
checked against the CA the container is given), and under KTX_PIPELINE_NETWORK=none nothing else."""

from __future__ import annotations

import http.server
import json
import secrets
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.pipelines.container_endpoint import ENDPOINT_HOST, ENDPOINT_PORT
from activities.pipelines.platform_access import PlatformAccess
from activities.pipelines.podman_runner import PodmanRunner
from domain.documents import Container
from domain.kube.pipeline_token import verify
from tests.conftest import pipeline_runtime
from tests.integration.test_hostile_fields import run_input, workspace
from tests.unit.test_pipeline_token import allows
from tests.kratix_documents import BEHAVE
from tests.servers.tls_proxy import CertificateAuthority

KEY = secrets.token_bytes(32)

# Run inside the container: the ServiceAccount files, one HTTPS call as in-cluster clients make it, and probes.
PROBE = """
import json, os, socket, ssl, sys, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
env = {k: v for k, v in os.environ.items() if k.startswith("KUBERNETES_")}
token = open(f"{sa}/token").read()
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
url = f"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT']}/api"
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
answer = urllib.request.urlopen(request, context=context, timeout=10).read().decode()
try:
    open(f"{sa}/token", "a").close()
    writable = True
except OSError:
    writable = False
def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "open"
    except OSError as exc:
        return type(exc).__name__
targets = json.loads(sys.argv[1])
report = {"env": env, "token": token, "namespace": open(f"{sa}/namespace").read(), "answer": answer,
          "writable": writable, "probes": {f"{h}:{p}": reach(h, p) for h, p in targets}}
open("/kratix/output/report.json", "w").write(json.dumps(report))
"""


class _Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"path": self.path, "authorization": self.headers.get("Authorization", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[tuple[str, int], bytes]]:
    """A stand-in for the API's HTTPS listener on the host's loopback, with a certificate for the address
    containers use (127.0.0.1)."""
    ca = CertificateAuthority(tmp_path_factory.mktemp("pki"), "ktx-ca")
    identity = ca.issue("ktx-api", "IP:127.0.0.1,DNS:localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(identity.cert, identity.key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[:2], ca.cert.read_bytes()
    server.shutdown()


@pytest.fixture
def decoy() -> Iterator[tuple[str, int]]:
    """Something else listening on the host, on every address: a container must not reach it without a network."""
    listener = socket.create_server(("0.0.0.0", 0))
    host = socket.gethostbyname(socket.gethostname())
    if host.startswith("127."):
        host = _outbound_address()
    yield host, listener.getsockname()[1]
    listener.close()


def _outbound_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the interface a route would use
        return probe.getsockname()[0]


async def probed(tmp_path: Path, api, network: str, targets: list[tuple[str, int]]) -> dict:
    address, ca_pem = api
    access = PlatformAccess(token_key=KEY, ca_pem=ca_pem, service_host=ENDPOINT_HOST, service_port=ENDPOINT_PORT)
    runner = PodmanRunner(pipeline_runtime(network, tmp_path / "home"), tmp_path / "logs", access, api_address=address)
    container = Container(name="probe", image=BEHAVE, command=["python3", "-c", PROBE], args=[json.dumps(targets)])
    root = workspace(tmp_path)
    outcome = await runner.run(run_input(f"endpoint-{network}-{secrets.token_hex(3)}", container), root)
    assert outcome.succeeded, (outcome.message, outcome.containers[-1].log_tail if outcome.containers else "")
    return json.loads((root / "output" / "report.json").read_text())


@pytest.mark.parametrize("network", ["default", "none"])
async def test_a_container_reaches_the_platform_api_as_in_cluster_config_expects(
    tmp_path: Path, api, network: str, pipeline_images
) -> None:
    report = await probed(tmp_path, api, network, [])
    assert report["env"]["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert report["env"]["KUBERNETES_SERVICE_PORT"] == report["env"]["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert report["namespace"] == "default"
    # The request reached the API (its certificate checked against ca.crt) with the mounted token, as it was minted.
    answer = json.loads(report["answer"])
    assert answer == {"path": "/api", "authorization": f"Bearer {report['token']}"}
    claims = verify(report["token"], KEY, now=0)
    assert claims is not None and claims.object.name == "first" and claims.workflow_type == "resource"
    assert allows(claims, "patch", "test.ktx.io", "widgets", "default", "first", subresource="status")
    assert not report["writable"]


async def test_without_network_the_api_endpoint_is_the_only_thing_a_container_reaches(
    tmp_path: Path, api, decoy: tuple[str, int], pipeline_images
) -> None:
    (api_host, api_port), _ = api
    targets = [
        decoy,  # the host, by its address on the network
        (api_host, api_port),  # the API's own listener, other than through the endpoint
        ("127.0.0.1", 80),  # the container's loopback, another port
        ("10.88.0.1", decoy[1]),  # podman's default bridge gateway
        ("1.1.1.1", 443),  # the internet
    ]
    report = await probed(tmp_path, api, "none", targets)
    assert json.loads(report["answer"])["path"] == "/api"
    assert all(result != "open" for result in report["probes"].values()), report["probes"]
    # With the default network the same host listener is reachable: the probe can tell the difference.
    default = await probed(tmp_path / "default", api, "default", [decoy])
    assert default["probes"][f"{decoy[0]}:{decoy[1]}"] == "open", default["probes"]
