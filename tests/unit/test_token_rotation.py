"""Tokens are rotated by changing the tokens file, as a Kubernetes Secret volume changes it: no restart."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
import yaml

from api.auth import AuthConfigError, TokenSource
from domain.access import identify

OLD, NEW = "old-token-" + "a" * 32, "new-token-" + "b" * 32


def entries_for(*tokens: str) -> str:
    return yaml.safe_dump(
        [
            {"name": f"t{i}", "role": "platform", "sha256": hashlib.sha256(t.encode()).hexdigest()}
            for i, t in enumerate(tokens)
        ]
    )


def secret_volume(tmp_path: Path, text: str, version: int) -> Path:
    """kubelet's layout: tokens.yaml -> ..data/tokens.yaml, ..data -> ..<version>; an update swaps ..data at once."""
    (tmp_path / f"..{version}").mkdir()
    (tmp_path / f"..{version}" / "tokens.yaml").write_text(text)
    (tmp_path / "..data.tmp").symlink_to(f"..{version}")
    os.replace(tmp_path / "..data.tmp", tmp_path / "..data")
    if not (tmp_path / "tokens.yaml").is_symlink():
        (tmp_path / "tokens.yaml").symlink_to("..data/tokens.yaml")
    return tmp_path / "tokens.yaml"


def test_a_rotated_secret_adds_and_revokes_tokens_without_a_restart(tmp_path: Path) -> None:
    path = secret_volume(tmp_path, entries_for(OLD), 1)
    source = TokenSource(path, recheck_s=0)
    assert identify(OLD, source.entries()) and not identify(NEW, source.entries())
    secret_volume(tmp_path, entries_for(NEW), 2)
    assert identify(NEW, source.entries()) and not identify(OLD, source.entries())


def test_a_broken_or_missing_file_keeps_the_tokens_read_before_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(entries_for(OLD))
    source = TokenSource(path, recheck_s=0)
    path.write_text("- name: [unclosed\n")
    with caplog.at_level(logging.ERROR):
        assert identify(OLD, source.entries())
    assert "keeping the 1 tokens read before" in caplog.text
    path.unlink()
    assert identify(OLD, source.entries())
    path.write_text(entries_for(NEW))
    assert identify(NEW, source.entries()) and not identify(OLD, source.entries())


def test_between_rechecks_the_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(entries_for(OLD))
    source = TokenSource(path, recheck_s=3600)
    path.write_text(entries_for(NEW))
    assert identify(OLD, source.entries())


def test_a_broken_file_at_start_is_still_fatal(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("- name: [unclosed\n")
    with pytest.raises(AuthConfigError, match="KTX_API_TOKENS_FILE"):
        TokenSource(path)
