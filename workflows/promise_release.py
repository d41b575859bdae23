"""`promiserelease/<name>`: Kratix's PromiseRelease controller as one durable workflow per release.

Each pass installs the release's Promise (activities/platform/promise_release.py): left alone when a Promise of this
release is at the wanted version, else fetched, version-checked and created or updated. A refused pass is the
`Installed` condition with Kratix's reason, tried again with backoff; the workflow never fails while the release
exists. A deleted Promise is installed again (the service signals `promise_deleted`); deleting the release deletes
its Promise first (what Kratix's finalizer `kratix.io/promise-cleanup` holds it for), then the workflow ends.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.platform.promise_release import (
        DeleteReleasedInput,
        InstallReleaseInput,
        PromiseReleaseActivities,
    )
    from domain import promise_release as pr
    from domain import status as st
    from domain.config import PlatformConfig
    from domain.documents import PromiseRelease
    from domain.events import Event, record_event
    from workflows import carried_memo, idle_continue_as_new
    from workflows.delivery import now_iso, read_platform_config
    from workflows.publishing import Publisher
    from workflows.records import ApplyInput, ApplyResult, DeleteAccepted, DeleteRequest

# One pass: a 10 s fetch and an apply, which Temporal answers in well under a second.
INSTALL_TIMEOUT = timedelta(seconds=60)
# Infrastructure errors only (a refused fetch is a result): the platform's own reads and writes, retried briefly.
INSTALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
)
# Kratix requeues a deleting release every 15 s until its Promises are gone; here from 1 s, doubling to that. The
# same schedule looks again at a Promise still being deleted, to install it afresh once it has gone: that is waiting
# for the platform, not a failure, so it is not slowed by the failure backoff.
RECHECK_BASE_S = 1.0
RECHECK_CAP_S = 15.0


def recheck_delay(attempt: int) -> float:
    return min(RECHECK_BASE_S * 2 ** min(max(attempt - 1, 0), 16), RECHECK_CAP_S)


class PromiseReleaseState(BaseModel):
    name: str
    document: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    generation: int = 0
    reconcile_due: bool = True
    failures: int = 0
    # Passes in a row that found the Promise still being deleted.
    waits: int = 0
    delete_requested: bool = False
    resource_version: int = 0


class PromiseReleaseWorkflowInput(BaseModel):
    state: PromiseReleaseState


class PromiseGone(BaseModel):
    promise: str


class PromiseReleaseResult(BaseModel):
    deleted: bool = True


@workflow.defn
class PromiseReleaseWorkflow:
    @workflow.init
    def __init__(self, input: PromiseReleaseWorkflowInput) -> None:
        self.state = input.state
        self.publisher = Publisher(input.state.resource_version)
        self.config = PlatformConfig()
        self.continue_when_idle = False

    @workflow.run
    async def run(self, input: PromiseReleaseWorkflowInput) -> PromiseReleaseResult:
        self.continue_when_idle = idle_continue_as_new.allowed_this_run()
        self.config = await read_platform_config()
        # The first apply arrives with the start (update-with-start): wait for the document before anything else.
        await workflow.wait_condition(lambda: bool(self.state.document))
        while not self.state.delete_requested:
            if self.state.reconcile_due:
                self.state.reconcile_due = False
                await self._reconcile()
            await self._wait()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self.state.resource_version = self.publisher.resource_version
                carried_memo.continue_as_new(PromiseReleaseWorkflowInput(state=self.state))
        await self._delete_promises()
        self.publisher.publish_final()
        return PromiseReleaseResult()

    @property
    def release(self) -> PromiseRelease:
        return PromiseRelease.model_validate(self.state.document)

    async def _reconcile(self) -> None:
        spec = self.release.spec
        result = await workflow.execute_activity_method(
            PromiseReleaseActivities.install_promise_release,
            InstallReleaseInput(
                release=self.state.name,
                version=spec.version,
                url=spec.source_ref.url,
                secret_ref=spec.source_ref.secret_ref,
            ),
            start_to_close_timeout=INSTALL_TIMEOUT,
            retry_policy=INSTALL_RETRY,
        )
        if result.outcome == "adopt_version":
            # Kratix writes the Promise's version into the release's spec, then installs at it.
            self.state.document.setdefault("spec", {})["version"] = result.version
            self.state.generation += 1
            self.state.document["metadata"]["generation"] = self.state.generation
            self.state.reconcile_due = True
            self._publish()
            return
        if result.outcome == "retry":
            self.state.waits += 1
            self._event("Normal", "Waiting", result.detail)
            return
        self.state.waits = 0
        if result.outcome == "refused":
            self.state.failures += 1
            self._set(pr.STATUS_ERROR, "False", result.reason, result.message)
            self._event("Warning", result.action or result.reason, result.detail)
            return
        self.state.failures = 0
        self._set(pr.STATUS_INSTALLED, "True", pr.REASON_INSTALLED, pr.MESSAGE_INSTALLED)
        if result.outcome == "installed" and result.action in ("created", "configured"):
            self._event(
                "Normal", "Installed", f'Promise "{result.promise}" {result.action} at version {result.version}'
            )

    async def _wait(self) -> None:
        timeout = None
        if self.state.waits:
            timeout = timedelta(seconds=recheck_delay(self.state.waits))
        elif self.state.failures:
            timeout = timedelta(seconds=self.config.backoff(self.state.failures))
        try:
            await workflow.wait_condition(
                # An apply that changes no spec wakes nothing: without the suggestion the history would grow unbounded.
                lambda: (
                    self.state.reconcile_due
                    or self.state.delete_requested
                    or idle_continue_as_new.suggested(self.continue_when_idle)
                ),
                timeout=timeout,
            )
        except asyncio.TimeoutError:
            self.state.reconcile_due = True

    async def _delete_promises(self) -> None:
        attempt = 0
        while True:
            result = await workflow.execute_activity_method(
                PromiseReleaseActivities.delete_released_promises,
                DeleteReleasedInput(release=self.state.name),
                start_to_close_timeout=INSTALL_TIMEOUT,
                retry_policy=INSTALL_RETRY,
            )
            if not result.remaining:
                return
            self._event("Normal", "DeletingPromises", f"waiting for {', '.join(result.remaining)} to be deleted")
            attempt += 1
            await workflow.sleep(timedelta(seconds=recheck_delay(attempt)))

    # --- messages ---

    @workflow.update
    def apply(self, input: ApplyInput) -> ApplyResult:
        document = copy.deepcopy(input.document)
        document.pop("status", None)
        previous = self.state.document
        created = not previous
        metadata = document.setdefault("metadata", {})
        old_metadata = previous.get("metadata") or {}
        spec_changed = created or document.get("spec") != previous.get("spec")
        if spec_changed:
            self.state.generation += 1
            self.state.reconcile_due = True
        metadata["generation"] = self.state.generation
        metadata["creationTimestamp"] = old_metadata.get("creationTimestamp") or now_iso()
        metadata["uid"] = old_metadata.get("uid") or str(workflow.uuid4())
        unchanged = not created and previous == document
        self.state.document = document
        self._publish()
        return ApplyResult(
            action="created" if created else "unchanged" if unchanged else "configured",
            generation=self.state.generation,
        )

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        if self.state.delete_requested:
            raise ApplicationError("the PromiseRelease is being deleted", type="Conflict", non_retryable=True)
        self.publisher.refuse_stale(input.resource_version)

    @workflow.update
    def delete(self, input: DeleteRequest) -> DeleteAccepted:
        metadata = self.state.document.setdefault("metadata", {})
        metadata.setdefault("deletionTimestamp", now_iso())
        if not self.state.delete_requested:
            self._event("Normal", "DeleteRequested", "deletion requested: deleting the released Promise")
        self.state.delete_requested = True
        self._publish()
        return DeleteAccepted()

    @workflow.signal
    def promise_deleted(self, input: PromiseGone) -> None:
        """The release's Promise is being deleted: install it again (Kratix's Owns(Promise) watch)."""
        if not self.state.delete_requested:
            self._event("Normal", "PromiseDeleted", f'Promise "{input.promise}" deleted: installing it again')
            self.state.reconcile_due = True
            self._publish()

    # --- status ---

    def _set(self, status: str, value: Literal["True", "False"], reason: str, message: str) -> None:
        self.state.status["status"] = status
        st.set_condition(self.state.status, pr.INSTALLED, value, reason, message, now_iso())
        self._publish()

    def _event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.state.events = record_event(self.state.events, type_, reason, message, now_iso())
        self._publish()

    def _publish(self) -> None:
        phase = "Deleting" if self.state.delete_requested else self.state.status.get("status") or "Pending"
        self.publisher.publish(
            {
                "object": self.state.document,
                "status": self.state.status,
                "events": [e.model_dump(mode="json") for e in self.state.events],
            },
            phase,
        )
