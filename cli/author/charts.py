"""`ktx init helm-promise`: a Promise from a Helm chart, read from a local directory or archive, or fetched over
HTTP(S) as a .tgz or from a chart repository (its index.yaml), or from an OCI registry (cli/author/oci_charts.py), as
`kratix init helm-promise` reads it.

Only the chart's values are read, and an archive is read in place, never extracted. A local chart is copied into the
pipeline's own image (domain/helm_chart.py says why); a fetched one is fetched again by Kratix's helm stage image
each time the pipeline runs, as in Kratix.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import httpx
import yaml

from cli.author import AuthorError, oci_charts
from cli.author.scaffold import MAX_FILE_BYTES, read_yaml, write
from domain import helm_chart
from domain import scaffold as sc

# A chart archive is read in place: at most this many entries are looked at.
MAX_CHART_ENTRIES = 10_000
# What is fetched: a chart archive or a repository's index.yaml of at most 16 MiB (charts are a few hundred KiB; large
# repositories' indexes a few MiB), each in at most 30 s, through at most 5 redirects (release downloads redirect).
MAX_FETCH_BYTES = 16 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0
MAX_REDIRECTS = 5


def _values_in_archive(archive: IO[bytes], where: str) -> Any:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=archive) as tar:
            for index, member in enumerate(tar):
                if index >= MAX_CHART_ENTRIES:
                    raise AuthorError(f"error: {where} holds more than {MAX_CHART_ENTRIES} entries")
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] in ("Chart.yaml", "values.yaml") and member.isfile():
                    if member.size > MAX_FILE_BYTES:
                        raise AuthorError(f"error: {member.name} in {where} is over {MAX_FILE_BYTES} bytes")
                    reader = tar.extractfile(member)
                    found[parts[1]] = reader.read() if reader is not None else b""
    except tarfile.TarError as exc:
        raise AuthorError(f"error: {where} is not a chart archive (.tgz): {exc}") from None
    if "Chart.yaml" not in found:
        raise AuthorError(f"error: {where} has no <chart>/Chart.yaml: not a Helm chart archive")
    return yaml.safe_load(found.get("values.yaml", b"").decode("utf-8")) or {}


def local_chart(source: str) -> tuple[Path, Any]:
    """A local chart, a directory or a .tgz, and its values (values.yaml; none is no values)."""
    path = Path(source)
    if path.is_dir():
        if not (path / "Chart.yaml").is_file():
            raise AuthorError(f"error: {path} has no Chart.yaml: not a Helm chart")
        values = path / "values.yaml"
        return path.resolve(), read_yaml(values) if values.is_file() else {}
    if not path.is_file():
        raise AuthorError(f"error: {path} is neither a chart directory nor a chart archive (.tgz)")
    if path.stat().st_size > MAX_FETCH_BYTES:
        raise AuthorError(f"error: {path} is over {MAX_FETCH_BYTES} bytes")
    with path.open("rb") as archive:
        return path.resolve(), _values_in_archive(archive, str(path))


def _fetch(client: httpx.Client, url: str) -> bytes:
    with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise AuthorError(f"error: failed to fetch helm chart: GET {url}: status {response.status_code}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_FETCH_BYTES:
                raise AuthorError(f"error: {url} is over {MAX_FETCH_BYTES} bytes")
        return bytes(body)


def chart_archive_url(index: Any, repository: str, name: str, version: str) -> str:
    """The archive of `name` (at `version`, else the index's first entry: Helm writes them newest first)."""
    entries = ((index or {}).get("entries") or {}).get(name) if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise AuthorError(f"error: failed to fetch helm chart: no chart {name!r} in {repository}")
    chosen = next((e for e in entries if isinstance(e, dict) and (not version or e.get("version") == version)), None)
    urls = chosen.get("urls") if chosen else None
    if not urls or not isinstance(urls[0], str):
        raise AuthorError(f"error: failed to fetch helm chart: no version {version!r} of {name!r} in {repository}")
    return urljoin(repository.rstrip("/") + "/", urls[0])


def remote_chart(url: str, name: str, version: str) -> Any:
    """The values of a chart fetched over HTTP(S): the archive at `url`, or chart `name` of the repository there; or
    from an OCI registry (`oci://`, at `version` or its tag)."""
    if not url.startswith(("http://", "https://", "oci://")):
        raise AuthorError(f"error: {url}: only http(s) and oci:// URLs and local charts are read")
    if url.startswith("oci://") and name:
        raise AuthorError("error: --chart-name is for a chart repository's URL; an OCI URL names the chart itself")
    with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=FETCH_TIMEOUT_S) as client:
        try:
            if url.startswith("oci://"):
                archive_bytes = oci_charts.chart_archive(client, url, version, MAX_FETCH_BYTES)
                return _values_in_archive(io.BytesIO(archive_bytes), url)
            archive = url
            if name:
                index = yaml.safe_load(_fetch(client, url.rstrip("/") + "/index.yaml"))
                archive = chart_archive_url(index, url, name, version)
            return _values_in_archive(io.BytesIO(_fetch(client, archive)), archive)
        except httpx.HTTPError as exc:
            raise AuthorError(f"error: failed to fetch helm chart: {exc}") from None


def cmd_init_helm_promise(args: argparse.Namespace, settings: Any) -> None:
    remote = "://" in args.chart_url
    extra = " ".join(
        f"{flag} {value}"
        for flag, value in (
            ("--chart-url", args.chart_url),
            ("--chart-name", args.chart_name),
            ("--chart-version", args.chart_version),
        )
        if value
    )
    if remote:
        if args.image:
            raise AuthorError("error: --image is for a local chart; a fetched one runs in Kratix's helm stage image")
        values = remote_chart(args.chart_url, args.chart_name, args.chart_version)
        pipelines = helm_chart.remote_pipelines(args.chart_url, args.chart_name, args.chart_version)
    else:
        if args.chart_name or args.chart_version:
            raise AuthorError("error: --chart-name and --chart-version are for a chart repository's URL")
        chart, values = local_chart(args.chart_url)
        image = args.image or f"localhost/{args.name}-helm-configure:v0.1.0"
        pipelines = helm_chart.helm_pipelines(image, chart.name)
    files = sc.promise_files(
        args.name,
        args.group,
        args.kind,
        args.version,
        args.plural,
        args.split,
        subcommand="helm-promise",
        extra=extra,
        schema=helm_chart.values_schema(values),
        resource_configure=pipelines,
    )
    directory = Path(args.dir)
    for name, text in files.items():
        write(directory / name, text)
    print(f"{args.name} promise bootstrapped in {'the current directory' if args.dir == '.' else args.dir}")
    if remote:
        return
    target = directory / "workflows/resource/configure" / helm_chart.HELM_PIPELINE / helm_chart.HELM_PIPELINE
    write(target / "Dockerfile", helm_chart.CONTAINERFILE)
    resources = target / "resources"
    resources.mkdir(parents=True, exist_ok=True)
    if chart.is_dir():
        shutil.copytree(chart, resources / chart.name, dirs_exist_ok=True)
    else:
        shutil.copy2(chart, resources / chart.name)
    print(
        f"Its pipeline renders the chart with Helm: build its image ({image}, from {helm_chart.HELM_STAGE_IMAGE}) "
        "with: ktx build container resource/configure/instance-configure"
    )
