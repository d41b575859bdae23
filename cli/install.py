"""`ktx install URL|PATH`: a URL becomes a PromiseRelease (the platform fetches it, keeps it installed and deletes it
with the release); a local file is applied as the Promise it holds, since the platform cannot fetch the laptop."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from domain.names import KRATIX_API_VERSION, LABEL_MAX, NAME_PATTERN

# Segments that name the file's role, not the Promise: .../postgresql/promise.yaml is "postgresql".
_GENERIC = {"promise", "promises", "index", "download", "raw", "latest", "main"}


class InstallError(ValueError):
    pass


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def release_name(url: str) -> str:
    """A DNS-1123 name from the URL's path: its last segment without the extension, or the one before it when the
    last names only the file's role. Refused when none gives a name (--name then)."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for segment in reversed(segments):
        stem = segment.split(".", 1)[0].lower()
        if stem in _GENERIC:
            continue
        name = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[:LABEL_MAX].strip("-")
        if name and NAME_PATTERN.match(name):
            return name
    raise InstallError(f"error: cannot name a PromiseRelease after {url!r}; give --name")


def release_document(url: str, name: str | None, version: str, secret: str | None) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "http", "url": url}
    if secret:
        namespace, sep, secret_name = secret.rpartition("/")
        source["secretRef"] = {"name": secret_name, "namespace": namespace if sep else "default"}
    return {
        "apiVersion": KRATIX_API_VERSION,
        "kind": "PromiseRelease",
        "metadata": {"name": name or release_name(url)},
        "spec": {"version": version, "sourceRef": source},
    }


def promise_file(path: str, version: str) -> bytes:
    """The file's text, once it is known to hold exactly one Promise labelled with `version` (when given): the
    checks a release would make of what it fetched."""
    # Here, not at the top: the release checks bring the whole domain, which every other `ktx` command can skip.
    from domain import promise_release as pr

    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        raise InstallError(f"error: {path}: {exc.strerror or exc}") from None
    try:
        promise = pr.read_promise(body)
    except pr.FetchRefused as exc:
        raise InstallError(f"error: {path}: {exc}") from None
    check = pr.check_version(version, promise)
    if version and not check.ok:
        raise InstallError(f"error: {path}: {check.message}")
    return body
