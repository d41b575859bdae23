"""Publishes an object's state to its memo and phase search attribute, so reads never need a worker.

Every published change also bumps the object's resourceVersion (Kubernetes' optimistic-concurrency token and watch
position): an integer, the microseconds of the workflow's clock and at least one more than the last, so it only ever
grows, across continue-as-new too. It is in the memo (as a string, as Kubernetes shows it) and in the
KtxResourceVersion search attribute, so the API's change feed asks visibility only for what changed.

A coalescing publisher (the Promise and resource workflows, which publish many times per workflow task) sends what
changed once the workflow is blocked: one memo and one search-attribute upsert per task instead of a pair per publish.
Each upsert is a history event the server stores and every reader decodes. A change still bumps the resourceVersion
when it is published, so an update's validator sees it at once.
"""

from __future__ import annotations

import asyncio
import copy
from contextlib import contextmanager
from typing import Any, Iterator

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.platform.search_attributes import DESTINATIONS, PHASE, PROMISE_VERSION, RESOURCE_VERSION, UNPLACED
from workflows import patches


class Publisher:
    """Upserts only the memo keys that changed: each upsert is a history event, and histories are finite."""

    def __init__(self, resource_version: int = 0, coalesce: bool = False) -> None:
        self._memo: dict[str, Any] = {}
        self._phase: str | None = None
        self._delivery: tuple[list[str], bool] | None = None
        self._version: str | None = None
        # Carried across continue-as-new by the workflow's state, so a new run never goes back.
        self.resource_version = resource_version
        self._coalesce: bool | None = None if coalesce else False  # None: the patch decides, at the first publish
        # What is published but not yet sent: memo keys, and search attributes by name (the last value wins).
        self._due_memo: dict[str, Any] = {}
        self._due_attributes: dict[str, Any] = {}
        self._holds = 0
        self._flusher: asyncio.Task[None] | None = None

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

    def _coalescing(self) -> bool:
        if self._coalesce is None:
            self._coalesce = patches.patched(patches.COALESCED_PUBLISHING)
            if self._coalesce:
                self._flusher = asyncio.create_task(self._flush_when_blocked())
        return self._coalesce

    async def _flush_when_blocked(self) -> None:
        # A condition is checked only once every coroutine of the workflow is blocked, so this runs at the end of
        # what the activation does: the publishes of a whole workflow task go out together.
        while True:
            await workflow.wait_condition(lambda: self._holds == 0 and bool(self._due_memo or self._due_attributes))
            self.flush()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Around a local activity: its result comes in another activation of the same workflow task, and a flush
        between the two would split that task's publishes."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

    def flush(self) -> None:
        """Send what is published and not yet sent: a workflow about to end calls it, or its last publish is lost."""
        if self._due_memo:
            workflow.upsert_memo(self._due_memo)
            self._due_memo = {}
        if self._due_attributes:
            workflow.upsert_search_attributes(list(self._due_attributes.values()))
            self._due_attributes = {}

    def _send(self, memo: dict[str, Any], attributes: list[Any]) -> None:
        if self._coalescing():
            self._due_memo.update(memo)
            self._due_attributes.update({a.key.name: a for a in attributes})
            return
        if memo:
            workflow.upsert_memo(memo)
        if attributes:
            workflow.upsert_search_attributes(attributes)

    def publish(self, memo: dict[str, Any], phase: str) -> None:
        changed = {key: value for key, value in memo.items() if self._memo.get(key) != value}
        attributes = [PHASE.value_set(phase)] if phase != self._phase else []
        if (changed or attributes) and patches.patched(patches.RESOURCE_VERSION):
            created = self.resource_version == 0
            self.resource_version = max(int(workflow.now().timestamp() * 1_000_000), self.resource_version + 1)
            changed["resourceVersion"] = str(self.resource_version)
            if created:  # a watch from before this version sees the object ADDED (domain/kube/changes.py)
                changed["createdResourceVersion"] = changed["resourceVersion"]
            attributes.append(RESOURCE_VERSION.value_set(self.resource_version))
        # Copies: the caller keeps mutating its status dicts, and a shared reference would hide every change (and
        # change what a coalescing publisher sends later).
        changed = copy.deepcopy(changed)
        self._memo.update(changed)
        self._send(changed, attributes)
        self._phase = phase

    def publish_final(self) -> None:
        """The last change of an object whose workflow ends now (it was deleted): a version the change feed sees the
        closed workflow at, even when nothing else changed since the last publish."""
        self.flush()
        if patches.patched(patches.RESOURCE_VERSION):
            self.resource_version = max(int(workflow.now().timestamp() * 1_000_000), self.resource_version + 1)
            workflow.upsert_memo({"resourceVersion": str(self.resource_version)})
            workflow.upsert_search_attributes([RESOURCE_VERSION.value_set(self.resource_version)])

    def publish_delivery(self, destinations: list[str], unplaced: bool) -> None:
        delivery = (sorted(set(destinations)), unplaced)
        if delivery != self._delivery:
            self._send({}, [DESTINATIONS.value_set(delivery[0]), UNPLACED.value_set(unplaced)])
            self._delivery = delivery

    def publish_version(self, version: str) -> None:
        """The Promise version a request last ran at, once it has one; sent with the task's other attributes when
        coalescing, so it adds no history event of its own."""
        if version and version != self._version:
            self._send({}, [PROMISE_VERSION.value_set(version)])
            self._version = version


@contextmanager
def held_publishing() -> Iterator[None]:
    """Around a local activity of the current workflow: holds its coalescing publisher's flush (Publisher.held), for
    the shared read helpers (workflows/delivery.py) that have no publisher of their own."""
    publisher = getattr(workflow.instance(), "publisher", None)
    if not isinstance(publisher, Publisher):
        yield
        return
    with publisher.held():
        yield
