"""Runs inside a pipeline Pod (the ktx image), before and after the user's containers; standard library only.

    python3 -m worker.pipeline_adapter reader   # KTX_INPUT_URL  -> /kratix/input/object.yaml
    python3 -m worker.pipeline_adapter writer   # /kratix/output and /kratix/metadata -> KTX_RESULT_URL (tar.gz)

Both URLs are presigned for one object each, so the Pod holds no credentials and no Kubernetes permissions.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable

from activities.artifacts.output_files import METADATA_MOUNT, OUTPUT_MOUNT, UnfollowedLink, output_files

ATTEMPTS = 5
_MOUNTS = {"output": OUTPUT_MOUNT, "metadata": METADATA_MOUNT}


def _with_retries(what: str, call: Callable[[], int]) -> int:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except urllib.error.HTTPError as exc:
            # A 4xx means the URL itself is wrong or expired: retrying cannot help.
            if exc.code < 500 and exc.code != 429:
                raise
            error: Exception = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            error = exc
        print(f"{what}: attempt {attempt} failed: {error}", file=sys.stderr, flush=True)
        if attempt < ATTEMPTS:
            time.sleep(2**attempt)  # backoff between attempts against a flaky object store
    raise SystemExit(f"{what}: giving up after {ATTEMPTS} attempts")


def reader(input_dir: Path) -> None:
    target = input_dir / "object.yaml"

    def fetch() -> int:
        with urllib.request.urlopen(os.environ["KTX_INPUT_URL"], timeout=60) as response:
            data = response.read()
        target.write_bytes(data)
        return len(data)

    print(f"wrote {target} ({_with_retries('download object.yaml', fetch)} bytes)", flush=True)


def pack(roots: dict[str, Path], archive: BinaryIO) -> int:
    """`roots` by label, "output" and "metadata": a link inside either goes in as the file it leads to in its tree."""
    count = 0
    # Dereference so a hard-linked file goes in as the regular file it is.
    with tarfile.open(fileobj=archive, mode="w:gz", dereference=True) as tar:
        for label, root in roots.items():
            for rel, path in output_files(root, _MOUNTS[label]).items():
                tar.add(path, arcname=f"{label}/{rel}", recursive=False)
                count += 1
    return count


def writer(output_dir: Path, metadata_dir: Path) -> None:
    with tempfile.TemporaryFile() as archive:
        try:
            count = pack({"output": output_dir, "metadata": metadata_dir}, archive)
        except UnfollowedLink as exc:
            raise SystemExit(str(exc)) from None  # the runner reports this container failed, with this as its log tail
        size = archive.tell()

        def upload() -> int:
            archive.seek(0)
            request = urllib.request.Request(
                os.environ["KTX_RESULT_URL"],
                data=archive,
                method="PUT",
                headers={"Content-Length": str(size), "Content-Type": "application/gzip"},
            )
            with urllib.request.urlopen(request, timeout=600) as response:
                return int(response.status)

        _with_retries("upload result", upload)
    print(f"uploaded {count} files ({size} bytes compressed)", flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["reader"]:
        reader(Path(os.environ.get("INPUT_DIR", "/kratix/input")))
    elif argv[:1] == ["writer"]:
        writer(
            Path(os.environ.get("OUTPUT_DIR", "/kratix/output")),
            Path(os.environ.get("METADATA_DIR", "/kratix/metadata")),
        )
    else:
        raise SystemExit("usage: python3 -m worker.pipeline_adapter reader|writer")


if __name__ == "__main__":
    main(sys.argv[1:])
