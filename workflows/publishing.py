"""Publishes an object's state to its memo and phase search attribute, so reads never need a worker."""

from __future__ import annotations

import copy
from typing import Any

from temporalio import workflow

from activities.platform.search_attributes import DESTINATIONS, PHASE, UNPLACED


class Publisher:
    """Upserts only the memo keys that changed: each upsert is a history event, and histories are finite."""

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}
        self._phase: str | None = None
        self._delivery: tuple[list[str], bool] | None = None

    def publish(self, memo: dict[str, Any], phase: str) -> None:
        changed = {key: value for key, value in memo.items() if self._memo.get(key) != value}
        if changed:
            workflow.upsert_memo(changed)
            # Copies: the caller keeps mutating its status dicts, and a shared reference would hide every change.
            self._memo.update(copy.deepcopy(changed))
        if phase != self._phase:
            workflow.upsert_search_attributes([PHASE.value_set(phase)])
            self._phase = phase

    def publish_delivery(self, destinations: list[str], unplaced: bool) -> None:
        delivery = (sorted(set(destinations)), unplaced)
        if delivery != self._delivery:
            workflow.upsert_search_attributes([DESTINATIONS.value_set(delivery[0]), UNPLACED.value_set(unplaced)])
            self._delivery = delivery
