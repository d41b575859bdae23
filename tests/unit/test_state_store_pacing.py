"""The state stores' commit pacing (activities/stores/write_batcher.py) as a worker setting: read as a Go duration,
bounded, a second by default."""

from __future__ import annotations

import pytest

from worker.settings import Settings


def test_the_commit_interval_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTX_STATE_STORE_COMMIT_INTERVAL", raising=False)
    assert Settings.from_env().state_store_commit_interval_s == 1.0
    monkeypatch.setenv("KTX_STATE_STORE_COMMIT_INTERVAL", "250ms")
    assert Settings.from_env().state_store_commit_interval_s == 0.25
    monkeypatch.setenv("KTX_STATE_STORE_COMMIT_INTERVAL", "0")
    assert Settings.from_env().state_store_commit_interval_s == 0
    # Every write may wait this long: more than a minute is refused at start-up, not felt by every request.
    for bad in ("2m", "-1s"):
        monkeypatch.setenv("KTX_STATE_STORE_COMMIT_INTERVAL", bad)
        with pytest.raises(ValueError, match="state_store_commit_interval|duration"):
            Settings.from_env()
