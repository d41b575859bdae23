"""Publishes an object's state to its memo and phase search attribute, so reads never need a worker."""

from __future__ import annotations

import copy
from typing import Any

from temporalio import workflow

from workflows.search_attributes import PHASE


class Publisher:
    """Upserts only the memo keys that changed: each upsert is a history event, and histories are finite."""

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}
        self._phase: str | None = None

    def publish(self, memo: dict[str, Any], phase: str) -> None:
        changed = {key: value for key, value in memo.items() if self._memo.get(key) != value}
        if changed:
            workflow.upsert_memo(changed)
            # Copies: the caller keeps mutating its status dicts, and a shared reference would hide every change.
            self._memo.update(copy.deepcopy(changed))
        if phase != self._phase:
            workflow.upsert_search_attributes([PHASE.value_set(phase)])
            self._phase = phase
