"""What the OCI runner reads of podman's store and of an image's files, refusing what it cannot use safely."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from activities.pipelines.oci_images import parse_inspect
from activities.pipelines.oci_runtime import _read_account_file

LAYER = "/var/lib/containers/storage/overlay/" + "a" * 64 + "/diff"


def inspected(driver: str = "overlay", upper: str = LAYER, lower: str = "", **config: object) -> bytes:
    data = {"UpperDir": upper, **({"LowerDir": lower} if lower else {})}
    return json.dumps([{"Id": "abc", "GraphDriver": {"Name": driver, "Data": data}, "Config": config}]).encode()


def test_an_image_is_its_layers_topmost_first_and_its_config() -> None:
    image = parse_inspect(inspected(lower=f"{LAYER}1:{LAYER}2", Entrypoint=["sh"], User="1000", Env=["A=b"]))
    assert image.layers == [LAYER, f"{LAYER}1", f"{LAYER}2"]
    assert image.config.entrypoint == ["sh"] and image.config.user == "1000" and image.config.env == ["A=b"]
    assert image.config.cmd == [] and image.config.working_dir == ""


@pytest.mark.parametrize(
    "text, reason",
    [
        (inspected(driver="vfs"), "needs overlay"),
        (inspected(upper="/x,upperdir=/etc"), "layer paths"),  # would be a second overlay option
        (inspected(upper="relative/diff"), "layer paths"),
        (b"[]", "no single image"),
    ],
)
def test_a_store_the_runner_cannot_use_is_refused(text: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_inspect(text)


def test_an_images_passwd_is_read_without_following_its_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("kratix:x:1000:1000::/:/bin/sh\n")
    assert _read_account_file(root, "passwd").startswith("kratix:")
    host = tmp_path / "host-etc"
    host.mkdir()
    (host / "group").write_text("host-only:x:1:\n")
    (root / "etc" / "group").symlink_to(host / "group")
    assert _read_account_file(root, "group") == ""
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "etc").symlink_to(host)  # /etc itself a link out of the image
    assert _read_account_file(linked, "group") == ""
    os.mkfifo(root / "etc" / "shadow")
    assert _read_account_file(root, "shadow") == ""  # never blocks on a FIFO
