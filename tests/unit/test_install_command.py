"""`ktx install`'s local part (cli/install.py): the release's default name and the checks of a Promise file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.install import InstallError, promise_file, release_document, release_name


@pytest.mark.parametrize(
    "url, name",
    [
        ("https://example.com/promises/postgresql/promise.yaml", "postgresql"),
        ("https://example.com/redis.yaml", "redis"),
        ("https://raw.example.com/org/Kafka_Promise/main/promise.yml?x=1", "kafka-promise"),
        ("http://example.com/a/index.json", "a"),
    ],
)
def test_a_release_is_named_after_the_url_s_path(url: str, name: str) -> None:
    assert release_name(url) == name


def test_a_url_that_names_nothing_needs_name() -> None:
    with pytest.raises(InstallError, match="give --name"):
        release_name("https://example.com/promise.yaml")
    doc = release_document("https://example.com/promise.yaml", "mine", "v1", "team/token")
    assert doc["metadata"]["name"] == "mine"
    assert doc["spec"] == {
        "version": "v1",
        "sourceRef": {
            "type": "http",
            "url": "https://example.com/promise.yaml",
            "secretRef": {"name": "token", "namespace": "team"},
        },
    }


def test_a_promise_file_is_checked_as_a_release_checks_what_it_fetched(tmp_path: Path) -> None:
    good = tmp_path / "promise.yaml"
    good.write_text(
        "apiVersion: platform.kratix.io/v1alpha1\nkind: Promise\n"
        "metadata: {name: p, labels: {kratix.io/promise-version: v1}}\n"
    )
    assert promise_file(str(good), "v1") == good.read_bytes()
    assert promise_file(str(good), "") == good.read_bytes()
    with pytest.raises(InstallError, match="found: v1, expected: v2"):
        promise_file(str(good), "v2")
    two = tmp_path / "two.yaml"
    two.write_text(good.read_text() + "---\n" + good.read_text())
    with pytest.raises(InstallError, match="multiple documents"):
        promise_file(str(two), "")
    with pytest.raises(InstallError, match="No such file"):
        promise_file(str(tmp_path / "missing.yaml"), "")
