"""What the OCI runner knows of an image in podman's store: its id, its layers (topmost first) and its config.

One `podman image inspect` per image name, then remembered while the store's image list (overlay-images/images.json,
which containers/storage rewrites on every pull, build, tag and removal) is the same file: a run of a known image
costs a stat, not a podman process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from domain.oci_spec import ImageConfig

# A layer path becomes part of an overlay's mount options, where ':' and ',' separate values.
_LAYER_PATH = re.compile(r"/[A-Za-z0-9._/-]+")
# What one inspect may print: a config with many labels and layers is some kilobytes.
_INSPECT_MAX = 1024 * 1024


async def inspect_image(podman: str, image: str, template: str) -> bytes | None:
    """What `podman image inspect --format=TEMPLATE` prints of the image, None when podman's store has no such image."""
    proc = await asyncio.create_subprocess_exec(
        podman,
        "image",
        "inspect",
        f"--format={template}",
        "--",
        image,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return out if proc.returncode == 0 else None


@dataclass(frozen=True)
class Image:
    id: str
    layers: list[str]
    config: ImageConfig


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def parse_inspect(text: bytes) -> Image:
    """One image of `podman image inspect` output. Raises ValueError for a store it cannot use."""
    found = json.loads(text)
    if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], dict):
        raise ValueError("podman image inspect gave no single image")
    image = found[0]
    driver = image.get("GraphDriver") or {}
    if driver.get("Name") != "overlay":
        raise ValueError(f"podman's storage driver is {driver.get('Name')!r}: the oci runner needs overlay")
    data = driver.get("Data") or {}
    layers = [data.get("UpperDir", ""), *(data.get("LowerDir") or "").split(":")]
    layers = [layer for layer in layers if layer]
    if not layers or not all(_LAYER_PATH.fullmatch(layer) for layer in layers):
        raise ValueError("podman's store gave layer paths an overlay cannot take")
    config = image.get("Config") or {}
    return Image(
        id=str(image.get("Id", "")),
        layers=layers,
        config=ImageConfig(
            entrypoint=_strings(config.get("Entrypoint")),
            cmd=_strings(config.get("Cmd")),
            env=_strings(config.get("Env")),
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
        ),
    )


class ImageIndex:
    def __init__(self, podman: str):
        self.podman = podman
        self._images: dict[str, Image] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._list: Path | None = None

    async def _store_list(self) -> Path:
        if self._list is None:
            proc = await asyncio.create_subprocess_exec(
                self.podman,
                "info",
                "--format={{.Store.GraphRoot}}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await proc.communicate()
            self._list = Path(out.decode().strip() or "/var/lib/containers/storage") / "overlay-images" / "images.json"
        return self._list

    async def _fresh(self) -> None:
        try:
            st = os.stat(await self._store_list())
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            self._images.clear()
            self._stamp = stamp

    async def find(self, image: str) -> Image | None:
        """The image as podman's store holds it now, None when it holds no such image. Raises ValueError."""
        await self._fresh()
        if image in self._images:
            return self._images[image]
        out = await inspect_image(self.podman, image, "json")
        if out is None:
            return None
        if len(out) > _INSPECT_MAX:
            raise ValueError(f"podman image inspect {image} printed over {_INSPECT_MAX} bytes")
        found = parse_inspect(out)
        self._images[image] = found
        return found
