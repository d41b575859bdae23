"""The in-Pod adapter (worker/pipeline_adapter.py) and the worker's side of its archive
(activities/pipelines/kube_runner.py `_safe_member`): what `pack()` puts in the result, what the extraction filter
lets out of it, and the reader's and the writer's HTTP against a local server (127.0.0.1, port 0). No cluster, no
Temporal, no network beyond loopback."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import threading
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import worker.pipeline_adapter as adapter
from activities.pipelines.kube_runner import _safe_member


def tree(root: Path) -> dict[str, Any]:
    """Every entry under root, relative: file contents, 'dir', or ('link', target)."""
    found: dict[str, Any] = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = "dir"
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:
                found[rel] = "special"
    return found


def files_only(entries: dict[str, Any]) -> dict[str, bytes]:
    return {k: v for k, v in entries.items() if isinstance(v, bytes)}


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def contents(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


# --- pack() -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def pod_dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """/kratix/output and /kratix/metadata as a pipeline might leave them: files, links inside the tree, a FIFO."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text("node secret")
    (outside / "dir" / "inner.txt").write_text("outside dir")
    output, metadata = tmp_path / "kratix" / "output", tmp_path / "kratix" / "metadata"
    (output / "nested" / "deeper").mkdir(parents=True)
    (output / "empty-dir").mkdir()
    metadata.mkdir(parents=True)
    (output / "deployment.yaml").write_text("kind: Deployment\n")
    (output / "nested" / "service.yaml").write_text("kind: Service\n")
    (output / "nested" / "deeper" / "configmap.yaml").write_text("kind: ConfigMap\n")
    (output / ".hidden.yaml").write_text("kind: Secret\n")
    (output / "nested" / "link-inside").symlink_to("../deployment.yaml")
    (output / "absolute-inside").symlink_to("/kratix/output/nested/service.yaml")
    os.mkfifo(output / "a-fifo")
    (metadata / "status.yaml").write_text("message: done\n")
    (metadata / "destination-selectors.yaml").write_text("- matchLabels: {env: dev}\n")
    return output, metadata, outside


# Each of these, added to pod_dirs, makes the writer fail and name it (relative to the tree: tree, link, target).
LINKS_REFUSED = {
    "to-outside-file": ("output", "link", "{outside}/secret.txt"),
    "to-outside-dir": ("output", "link", "{outside}/dir"),
    "to-inside-dir": ("output", "link", "nested"),
    "dangling": ("output", "link", "does-not-exist"),
    "metadata-escape": ("metadata", "escape", "{outside}/secret.txt"),
    "metadata-to-output": ("metadata", "escape", "/kratix/output/deployment.yaml"),
}


EXPECTED_FILES = {
    "output/.hidden.yaml": b"kind: Secret\n",
    "output/deployment.yaml": b"kind: Deployment\n",
    "output/nested/service.yaml": b"kind: Service\n",
    "output/nested/deeper/configmap.yaml": b"kind: ConfigMap\n",
    "output/nested/link-inside": b"kind: Deployment\n",
    "output/absolute-inside": b"kind: Service\n",
    "metadata/destination-selectors.yaml": b"- matchLabels: {env: dev}\n",
    "metadata/status.yaml": b"message: done\n",
}


def test_pack_archives_only_regular_files_under_output_and_metadata(pod_dirs: tuple[Path, Path, Path]):
    output, metadata, _ = pod_dirs
    archive = io.BytesIO()
    count = adapter.pack({"output": output, "metadata": metadata}, archive)
    data = archive.getvalue()
    assert count == len(EXPECTED_FILES)
    found = members(data)
    assert set(found) == set(EXPECTED_FILES)
    assert all(m.isfile() for m in found.values())
    assert contents(data) == EXPECTED_FILES


@pytest.mark.parametrize("case", list(LINKS_REFUSED), ids=list(LINKS_REFUSED))
def test_pack_refuses_a_link_out_of_its_tree_and_names_it(case: str, pod_dirs: tuple[Path, Path, Path]):
    output, metadata, outside = pod_dirs
    tree_name, link, target = LINKS_REFUSED[case]
    ((output if tree_name == "output" else metadata) / link).symlink_to(target.format(outside=outside))
    with pytest.raises(adapter.UnfollowedLink, match=f"/kratix/{tree_name}/{link} is a symbolic link"):
        adapter.pack({"output": output, "metadata": metadata}, io.BytesIO())


def test_pack_of_empty_and_missing_directories(tmp_path: Path):
    (tmp_path / "output").mkdir()
    archive = io.BytesIO()
    assert adapter.pack({"output": tmp_path / "output", "metadata": tmp_path / "missing"}, archive) == 0
    assert members(archive.getvalue()) == {}


def test_pack_then_extract_gives_back_the_regular_files(pod_dirs: tuple[Path, Path, Path], tmp_path: Path):
    output, metadata, _ = pod_dirs
    archive = io.BytesIO()
    adapter.pack({"output": output, "metadata": metadata}, archive)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    archive.seek(0)
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        tar.extractall(workspace, filter=_safe_member)
    assert files_only(tree(workspace)) == EXPECTED_FILES
    assert not any(isinstance(v, tuple) for v in tree(workspace).values())


def test_pack_then_extract_keeps_hard_linked_files(tmp_path: Path):
    """`ln a b` (or a tool that hard-links) in /kratix/output leaves two regular files; both must reach the worker."""
    output, metadata = tmp_path / "output", tmp_path / "metadata"
    output.mkdir()
    metadata.mkdir()
    (output / "a.yaml").write_text("kind: A\n")
    os.link(output / "a.yaml", output / "b.yaml")
    archive = io.BytesIO()
    assert adapter.pack({"output": output, "metadata": metadata}, archive) == 2
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    archive.seek(0)
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        tar.extractall(workspace, filter=_safe_member)
    assert files_only(tree(workspace)) == {"output/a.yaml": b"kind: A\n", "output/b.yaml": b"kind: A\n"}


# --- the extraction filter --------------------------------------------------------------------------------------------


def regular(name: str, data: bytes = b"data\n") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def build(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def extract(archive: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(dest, filter=_safe_member)


HOSTILE = {
    "parent-escape": lambda: regular("../escape", b"escaped\n"),
    "nested-parent-escape": lambda: regular("output/../../escape-nested", b"escaped\n"),
    "absolute-path": lambda: regular("/abs/path", b"absolute\n"),
    "symlink": lambda: special("output/link", tarfile.SYMTYPE, "/etc/passwd"),
    "relative-symlink-out": lambda: special("output/up", tarfile.SYMTYPE, "../.."),
    "hardlink": lambda: special("output/hard", tarfile.LNKTYPE, "output/ok.yaml"),
    "hardlink-out": lambda: special("output/hard-out", tarfile.LNKTYPE, "/etc/passwd"),
    "char-device": lambda: special("output/null", tarfile.CHRTYPE),
    "block-device": lambda: special("output/disk", tarfile.BLKTYPE),
    "fifo": lambda: special("output/fifo", tarfile.FIFOTYPE),
}


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """dest inside an otherwise empty directory, so anything written beside it shows."""
    dest = tmp_path / "sandbox" / "workspace"
    dest.mkdir(parents=True)
    return tmp_path / "sandbox", dest


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
def test_extraction_writes_only_the_safe_member(hostile: str, sandbox: tuple[Path, Path]):
    root, dest = sandbox
    extract(build([HOSTILE[hostile](), regular("output/ok.yaml", b"kind: Ok\n")]), dest)
    assert tree(root) == {"workspace": "dir", "workspace/output": "dir", "workspace/output/ok.yaml": b"kind: Ok\n"}


def test_extraction_of_an_archive_with_everything_hostile(sandbox: tuple[Path, Path]):
    root, dest = sandbox
    entries = [factory() for factory in HOSTILE.values()]
    entries.insert(3, regular("output/ok.yaml", b"kind: Ok\n"))
    extract(build(entries), dest)
    everything = tree(root)
    # Nothing beside the workspace, no link and no device inside it, and the regular file intact.
    assert all(name == "workspace" or name.startswith("workspace/") for name in everything)
    assert not any(isinstance(v, tuple) or v == "special" for v in everything.values())
    assert everything["workspace/output/ok.yaml"] == b"kind: Ok\n"
    assert not (root / "escape").exists() and not (root.parent / "escape").exists()


def test_extraction_keeps_directories_and_nested_files_and_drops_unsafe_modes(sandbox: tuple[Path, Path]):
    root, dest = sandbox
    directory = tarfile.TarInfo("metadata/sub")
    directory.type, directory.mode = tarfile.DIRTYPE, 0o755
    setuid, data = regular("output/tool", b"#!/bin/sh\n")
    setuid.mode = 0o4755
    extract(build([(directory, None), regular("metadata/sub/status.yaml", b"a: 1\n"), (setuid, data)]), dest)
    assert files_only(tree(dest)) == {"metadata/sub/status.yaml": b"a: 1\n", "output/tool": b"#!/bin/sh\n"}
    assert not (dest / "output" / "tool").stat().st_mode & 0o4000


def test_safe_member_returns_none_for_links_and_devices(tmp_path: Path):
    for name in ("symlink", "hardlink", "char-device", "block-device", "fifo"):
        info, _ = HOSTILE[name]()
        assert _safe_member(info, str(tmp_path)) is None, name
    info, _ = regular("output/ok.yaml")
    assert _safe_member(info, str(tmp_path)) is not None


# --- HTTP: reader() and writer() --------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeStore:
    """A presigned-URL object store: answers each request with the next scripted status (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    body: bytes = b""
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def _server() -> Iterator[dict[str, FakeStore]]:
    """One server for the module; each test scripts its own FakeStore (see `store`)."""
    current: dict[str, FakeStore] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                fake = current["store"]
                fake.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
                status = fake.statuses[min(len(fake.requests), len(fake.statuses)) - 1]
            payload = fake.body if status == 200 and self.command == "GET" else f"status {status}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    current["port"] = server.server_address[1]  # type: ignore[assignment]
    try:
        yield current
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def store(_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore(port=_server["port"])
    _server["store"] = fake
    # Loopback only: no proxy from the environment may take the requests elsewhere.
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return fake


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff between attempts, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(adapter, "time", SimpleNamespace(sleep=recorded.append))
    return recorded


OBJECT = b"apiVersion: marketplace.kratix.io/v1alpha1\nkind: PostgreSQL\nmetadata:\n  name: acid-db\n"
SIGNED = "/ktx-transfer/run-1/object.yaml?X-Amz-Signature=abc&X-Amz-Expires=3600"


def test_reader_writes_object_yaml(
    store: FakeStore,
    sleeps: list[float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    store.body = OBJECT
    monkeypatch.setenv("KTX_INPUT_URL", store.url(SIGNED))
    adapter.reader(tmp_path)
    assert (tmp_path / "object.yaml").read_bytes() == OBJECT
    assert [(r.method, r.path) for r in store.requests] == [("GET", SIGNED)]
    assert sleeps == []
    assert f"({len(OBJECT)} bytes)" in capsys.readouterr().out


def test_reader_via_main_uses_input_dir(
    store: FakeStore, sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store.body = OBJECT
    monkeypatch.setenv("KTX_INPUT_URL", store.url(SIGNED))
    monkeypatch.setenv("INPUT_DIR", str(tmp_path))
    adapter.main(["reader"])
    assert (tmp_path / "object.yaml").read_bytes() == OBJECT


def test_main_without_a_mode_prints_its_usage():
    with pytest.raises(SystemExit, match="usage"):
        adapter.main([])
    with pytest.raises(SystemExit, match="usage"):
        adapter.main(["upload"])


@pytest.mark.parametrize("first", [500, 502, 503, 429])
def test_reader_retries_a_server_error(
    first: int, store: FakeStore, sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store.statuses, store.body = [first, 200], OBJECT
    monkeypatch.setenv("KTX_INPUT_URL", store.url(SIGNED))
    adapter.reader(tmp_path)
    assert (tmp_path / "object.yaml").read_bytes() == OBJECT
    assert len(store.requests) == 2
    assert sleeps == [2]


@pytest.mark.parametrize("status", [403, 404, 400])
def test_reader_fails_at_once_on_a_client_error(
    status: int, store: FakeStore, sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store.statuses, store.body = [status, 200], OBJECT
    monkeypatch.setenv("KTX_INPUT_URL", store.url(SIGNED))
    with pytest.raises(urllib.error.HTTPError) as raised:
        adapter.reader(tmp_path)
    raised.value.close()
    assert raised.value.code == status
    assert len(store.requests) == 1
    assert sleeps == []
    assert not (tmp_path / "object.yaml").exists()


def test_reader_gives_up_after_five_attempts(
    store: FakeStore,
    sleeps: list[float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    store.statuses = [503]
    monkeypatch.setenv("KTX_INPUT_URL", store.url(SIGNED))
    with pytest.raises(SystemExit, match="giving up after 5 attempts"):
        adapter.reader(tmp_path)
    assert len(store.requests) == adapter.ATTEMPTS == 5
    assert sleeps == [2, 4, 8, 16]
    assert capsys.readouterr().err.count("attempt") == 5
    assert not (tmp_path / "object.yaml").exists()


def test_reader_retries_when_nothing_listens(sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("KTX_INPUT_URL", f"http://127.0.0.1:{port}/object.yaml")
    with pytest.raises(SystemExit, match="giving up"):
        adapter.reader(tmp_path)
    assert sleeps == [2, 4, 8, 16]


@pytest.fixture
def results(tmp_path: Path) -> tuple[Path, Path]:
    output, metadata = tmp_path / "output", tmp_path / "metadata"
    (output / "nested").mkdir(parents=True)
    metadata.mkdir()
    (output / "deployment.yaml").write_text("kind: Deployment\n")
    (output / "nested" / "service.yaml").write_text("kind: Service\n")
    (output / "big.bin").write_bytes(os.urandom(300_000))  # more than one socket write, incompressible
    (metadata / "status.yaml").write_text("message: done\n")
    return output, metadata


RESULT = "/ktx-transfer/run-1/result.tar.gz?X-Amz-Signature=def"


def check_upload(request: Recorded, output: Path, metadata: Path) -> None:
    assert (request.method, request.path) == ("PUT", RESULT)
    assert request.headers["Content-Type"] == "application/gzip"
    assert int(request.headers["Content-Length"]) == len(request.body)
    assert contents(request.body) == {
        "output/big.bin": (output / "big.bin").read_bytes(),
        "output/deployment.yaml": b"kind: Deployment\n",
        "output/nested/service.yaml": b"kind: Service\n",
        "metadata/status.yaml": b"message: done\n",
    }
    assert all(m.isfile() for m in members(request.body).values())


def test_writer_uploads_a_tar_gz_of_output_and_metadata(
    store: FakeStore,
    sleeps: list[float],
    results: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    output, metadata = results
    monkeypatch.setenv("KTX_RESULT_URL", store.url(RESULT))
    adapter.writer(output, metadata)
    (request,) = store.requests
    check_upload(request, output, metadata)
    assert sleeps == []
    assert f"uploaded 4 files ({len(request.body)} bytes compressed)" in capsys.readouterr().out


def test_writer_names_a_link_out_of_the_output_and_uploads_nothing(
    store: FakeStore, results: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    output, metadata = results
    (output / "link").symlink_to(metadata / "status.yaml")
    monkeypatch.setenv("KTX_RESULT_URL", store.url(RESULT))
    with pytest.raises(SystemExit, match="/kratix/output/link is a symbolic link that leads out of /kratix/output"):
        adapter.writer(output, metadata)
    assert store.requests == []


def test_writer_retries_a_server_error_with_the_whole_archive(
    store: FakeStore, sleeps: list[float], results: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    output, metadata = results
    store.statuses = [500, 200]
    monkeypatch.setenv("KTX_RESULT_URL", store.url(RESULT))
    adapter.writer(output, metadata)
    first, second = store.requests
    check_upload(first, output, metadata)
    check_upload(second, output, metadata)
    assert first.body == second.body
    assert sleeps == [2]


def test_writer_fails_at_once_on_403(
    store: FakeStore, sleeps: list[float], results: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    output, metadata = results
    store.statuses = [403, 200]
    monkeypatch.setenv("KTX_RESULT_URL", store.url(RESULT))
    with pytest.raises(urllib.error.HTTPError) as raised:
        adapter.writer(output, metadata)
    raised.value.close()
    assert raised.value.code == 403
    assert len(store.requests) == 1
    assert sleeps == []


def test_writer_via_main_uses_output_and_metadata_dirs(
    store: FakeStore, sleeps: list[float], results: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    output, metadata = results
    monkeypatch.setenv("KTX_RESULT_URL", store.url(RESULT))
    monkeypatch.setenv("OUTPUT_DIR", str(output))
    monkeypatch.setenv("METADATA_DIR", str(metadata))
    adapter.main(["writer"])
    (request,) = store.requests
    check_upload(request, output, metadata)
