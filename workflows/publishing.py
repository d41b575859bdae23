"""Publishes an object's state to its memo and phase search attribute, so reads never need a worker.

Every published change also bumps the object's resourceVersion (Kubernetes' optimistic-concurrency token and watch
position): an integer, the microseconds of the workflow's clock and at least one more than the last, so it only ever
grows, across continue-as-new too. It is in the memo (as a string, as Kubernetes shows it) and in the
KtxResourceVersion search attribute, so the API's change feed asks visibility only for what changed.
"""

from __future__ import annotations

import copy
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.platform.search_attributes import DESTINATIONS, PHASE, RESOURCE_VERSION, UNPLACED

RESOURCE_VERSION_PATCH = "resource-version"


class Publisher:
    """Upserts only the memo keys that changed: each upsert is a history event, and histories are finite."""

    def __init__(self, resource_version: int = 0) -> None:
        self._memo: dict[str, Any] = {}
        self._phase: str | None = None
        self._delivery: tuple[list[str], bool] | None = None
        # Carried across continue-as-new by the workflow's state, so a new run never goes back.
        self.resource_version = resource_version

    def refuse_stale(self, expected: str | None) -> None:
        """For an update's validator (reads only): Kubernetes' optimistic concurrency, decided where the object lives,
        so of two writers holding the same version only one gets through."""
        current = str(self.resource_version)
        if expected is not None and expected != current:
            raise ApplicationError(
                f"the object has been modified: resourceVersion {expected} is not the current {current}",
                type="StaleResourceVersion",
                non_retryable=True,
            )

    def publish(self, memo: dict[str, Any], phase: str) -> None:
        changed = {key: value for key, value in memo.items() if self._memo.get(key) != value}
        attributes = [PHASE.value_set(phase)] if phase != self._phase else []
        if (changed or attributes) and workflow.patched(RESOURCE_VERSION_PATCH):
            created = self.resource_version == 0
            self.resource_version = max(int(workflow.now().timestamp() * 1_000_000), self.resource_version + 1)
            changed["resourceVersion"] = str(self.resource_version)
            if created:  # a watch from before this version sees the object ADDED (domain/kube/changes.py)
                changed["createdResourceVersion"] = changed["resourceVersion"]
            attributes.append(RESOURCE_VERSION.value_set(self.resource_version))
        if changed:
            workflow.upsert_memo(changed)
            # Copies: the caller keeps mutating its status dicts, and a shared reference would hide every change.
            self._memo.update(copy.deepcopy(changed))
        if attributes:
            workflow.upsert_search_attributes(attributes)
        self._phase = phase

    def publish_final(self) -> None:
        """The last change of an object whose workflow ends now (it was deleted): a version the change feed sees the
        closed workflow at, even when nothing else changed since the last publish."""
        if workflow.patched(RESOURCE_VERSION_PATCH):
            self.resource_version = max(int(workflow.now().timestamp() * 1_000_000), self.resource_version + 1)
            workflow.upsert_memo({"resourceVersion": str(self.resource_version)})
            workflow.upsert_search_attributes([RESOURCE_VERSION.value_set(self.resource_version)])

    def publish_delivery(self, destinations: list[str], unplaced: bool) -> None:
        delivery = (sorted(set(destinations)), unplaced)
        if delivery != self._delivery:
            workflow.upsert_search_attributes([DESTINATIONS.value_set(delivery[0]), UNPLACED.value_set(unplaced)])
            self._delivery = delivery
