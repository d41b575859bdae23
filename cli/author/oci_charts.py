"""A Helm chart from an OCI registry (`oci://HOST/REPOSITORY[:TAG]`), as `helm pull oci://...` gets it, over the OCI
distribution spec only: the manifest of the tag (`--chart-version`, else the tag in the URL, else the highest
release version among the repository's tags), then its one chart layer
(`application/vnd.cncf.helm.chart.content.v1.tar+gzip`), checked against its digest.

A registry that answers 401 with a Bearer challenge gets the anonymous token flow (the distribution spec's token
authentication), as public registries require; no credentials are sent. A loopback registry is spoken to over plain
HTTP (as Docker treats localhost registries), every other over HTTPS.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from cli.author import AuthorError

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
# The distribution spec's grammar for repository names and tags, and the digest form registries use.
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
_RELEASE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
# A manifest, a tag list or a token answer is small; these bound what is read of each.
MAX_DOCUMENT_BYTES = 1024 * 1024
_BEARER = re.compile(r'(\w+)="([^"]*)"')


def parse_reference(url: str, version: str) -> tuple[str, str, str]:
    """(host, repository, tag or ''): every part by the spec's grammar, so none can bend the paths asked for."""
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    tag = ""
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    tag = version.replace("+", "_") if version else tag  # Helm's tags spell a version's '+' as '_'
    if parts.scheme != "oci" or not _HOST.fullmatch(parts.netloc) or parts.query or parts.fragment:
        raise AuthorError(f"error: {url}: an OCI chart URL is oci://HOST[:PORT]/REPOSITORY[:TAG]")
    if not _REPOSITORY.fullmatch(path):
        raise AuthorError(f"error: {url}: {path!r} is not an OCI repository name (lower-case path components)")
    if tag and not _TAG.fullmatch(tag):
        raise AuthorError(f"error: {url}: {tag!r} is not an OCI tag")
    return parts.netloc, path, tag


def _base(host: str) -> str:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    return f"{'http' if loopback else 'https'}://{host}"


class _Registry:
    def __init__(self, client: httpx.Client, host: str, repository: str, max_bytes: int):
        self.client = client
        self.base = f"{_base(host)}/v2/{repository}"
        self.scope = f"repository:{repository}:pull"
        self.max_bytes = max_bytes
        self.token = ""

    def get(self, path: str, limit: int, accept: str = "") -> bytes:
        headers = {"Accept": accept} if accept else {}
        for _ in range(2):
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            with self.client.stream("GET", f"{self.base}/{path}", headers=headers) as response:
                if response.status_code == 401 and not self.token:
                    self.token = self._token(response.headers.get("WWW-Authenticate", ""))
                    continue
                if response.status_code != 200:
                    raise AuthorError(
                        f"error: failed to fetch helm chart: GET {self.base}/{path}: status {response.status_code}"
                    )
                return _read(response, limit, f"{self.base}/{path}")
        raise AuthorError(f"error: failed to fetch helm chart: {self.base}/{path} refused the anonymous token")

    def _token(self, challenge: str) -> str:
        if not challenge.lower().startswith("bearer "):
            raise AuthorError(f"error: failed to fetch helm chart: {self.base} needs credentials ({challenge[:100]})")
        fields = dict(_BEARER.findall(challenge))
        realm = fields.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise AuthorError(f"error: failed to fetch helm chart: {self.base}'s token realm {realm[:100]!r}")
        params = {"scope": fields.get("scope") or self.scope}
        if fields.get("service"):
            params["service"] = fields["service"]
        with self.client.stream("GET", realm, params=params) as response:
            if response.status_code != 200:
                raise AuthorError(f"error: failed to fetch helm chart: token {realm}: status {response.status_code}")
            answer = _json(_read(response, MAX_DOCUMENT_BYTES, realm), realm)
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthorError(f"error: failed to fetch helm chart: {realm} gave no token")
        return token


def _read(response: httpx.Response, limit: int, where: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise AuthorError(f"error: {where} is over {limit} bytes")
    return bytes(body)


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise AuthorError(f"error: failed to fetch helm chart: {where} is not JSON") from None


def _latest(tags: Any, where: str) -> str:
    """The highest release version among the tags (Helm's choice when no version is asked for)."""
    listed = tags.get("tags") if isinstance(tags, dict) else None
    releases = [
        (tuple(map(int, m.groups())), t) for t in listed or [] if isinstance(t, str) and (m := _RELEASE.fullmatch(t))
    ]
    if not releases:
        raise AuthorError(f"error: failed to fetch helm chart: {where} has no release version tag")
    return max(releases)[1]


def chart_archive(client: httpx.Client, url: str, version: str, max_bytes: int) -> bytes:
    """The chart's .tgz, its digest checked."""
    host, repository, tag = parse_reference(url, version)
    registry = _Registry(client, host, repository, max_bytes)
    if not tag:
        tag = _latest(_json(registry.get("tags/list", MAX_DOCUMENT_BYTES), url), url)
    manifest = _json(registry.get(f"manifests/{tag}", MAX_DOCUMENT_BYTES, MANIFEST), url)
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    charts = [x for x in layers or [] if isinstance(x, dict) and x.get("mediaType") == CHART_LAYER]
    if len(charts) != 1:
        raise AuthorError(f"error: failed to fetch helm chart: {url}:{tag} has {len(charts)} chart layers, not one")
    digest, size = charts[0].get("digest"), charts[0].get("size")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise AuthorError(f"error: failed to fetch helm chart: {url}:{tag}'s chart layer has no sha256 digest")
    if isinstance(size, int) and size > max_bytes:
        raise AuthorError(f"error: {url}:{tag}'s chart is over {max_bytes} bytes")
    archive = registry.get(f"blobs/{digest}", max_bytes)
    if "sha256:" + hashlib.sha256(archive).hexdigest() != digest:
        raise AuthorError(f"error: failed to fetch helm chart: {url}:{tag}'s chart does not match its digest")
    return archive
