"""A stand-in OCI registry serving Helm charts by the distribution spec's pull API only: `GET /v2/<name>/manifests/
<tag>`, `/v2/<name>/blobs/<digest>` and `/v2/<name>/tags/list`, with the spec's token authentication when `bearer`
is set (401 with a Bearer challenge, an anonymous token from `/token`). Tests push charts with `push` and read what
each request carried in `requests`."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, urlsplit

from tests.servers.git_servers import BackgroundHttpServer, QuietHandler

TOKEN = "anonymous-pull-token"
CONFIG = "application/vnd.cncf.helm.config.v1+json"
CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class OciRegistry(BackgroundHttpServer):
    def __init__(self, bearer: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                auth = self.headers.get("Authorization")
                outer.requests.append((self.path, auth))
                path = urlsplit(self.path).path
                if path == "/token":
                    scope = parse_qs(urlsplit(self.path).query).get("scope", [""])[0]
                    ok = scope.startswith("repository:") and scope.endswith(":pull")
                    self._send(200 if ok else 400, json.dumps({"token": TOKEN}).encode(), "application/json")
                    return
                if bearer and auth != f"Bearer {TOKEN}":
                    name = path.removeprefix("/v2/").rsplit("/", 2)[0]
                    challenge = f'Bearer realm="{outer.url}/token",service="stand-in",scope="repository:{name}:pull"'
                    self._send(401, b'{"errors": [{"code": "UNAUTHORIZED"}]}', "application/json", challenge)
                    return
                body, media = outer._answer(path)
                self._send(200 if body is not None else 404, body or b'{"errors": [{"code": "NOT_FOUND"}]}', media)

            def _send(self, code: int, body: bytes, media: str, challenge: str = "") -> None:
                self.send_response(code)
                self.send_header("Content-Type", media)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._listen(Handler)

    def _blob(self, data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def push(self, name: str, tag: str, archive: bytes, layer: str = CHART) -> None:
        """A chart as `helm push` stores it: its config, its one chart layer, the manifest under the tag."""
        config = json.dumps({"name": name.rsplit("/", 1)[-1], "version": tag}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, **self._blob(config)},
            "layers": [{"mediaType": layer, **self._blob(archive)}],
        }
        self.manifests[(name, tag)] = json.dumps(manifest).encode()

    def _answer(self, path: str) -> tuple[bytes | None, str]:
        name, _, rest = path.removeprefix("/v2/").rpartition("/")
        if name.endswith("/manifests"):
            return self.manifests.get((name.removesuffix("/manifests"), rest)), MANIFEST
        if name.endswith("/blobs"):
            return self.blobs.get(rest), "application/octet-stream"
        if rest == "list" and name.endswith("/tags"):
            repository = name.removesuffix("/tags")
            tags = [t for n, t in self.manifests if n == repository]
            return json.dumps({"name": repository, "tags": tags}).encode(), "application/json"
        return None, "application/json"
