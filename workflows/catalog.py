"""`platform/catalog`: the one place that says which APIs are served and which Destinations and stores exist.

Updates run Kratix's admission rules in their validators, so a refused change never enters history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.catalog import Catalog
    from domain.documents import BucketStateStore, Destination, GitStateStore
    from domain.errors import InvalidDocument
    from domain.promise_api import PromiseApi
    from workflows import carried_memo


class CatalogWorkflowInput(BaseModel):
    catalog: Catalog = Catalog()


class RegisterApiInput(BaseModel):
    api: PromiseApi


class UnregisterApiInput(BaseModel):
    promise: str


class ApplyDestinationInput(BaseModel):
    destination: Destination


class ApplyStateStoreInput(BaseModel):
    store: GitStateStore | BucketStateStore


class RemoveEntryInput(BaseModel):
    kind: Literal["Destination", "GitStateStore", "BucketStateStore"]
    name: str


class CatalogChange(BaseModel):
    action: Literal["created", "configured", "unchanged", "deleted"]


def _refuse(exc: InvalidDocument) -> ApplicationError:
    details = [{"field": e.field, "reason": e.reason} for e in exc.errors]
    return ApplicationError(str(exc), details, type="InvalidDocument", non_retryable=True)


@workflow.defn
class CatalogWorkflow:
    @workflow.init
    def __init__(self, input: CatalogWorkflowInput) -> None:
        self.catalog = input.catalog

    @workflow.run
    async def run(self, input: CatalogWorkflowInput) -> None:
        self._publish()
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried_memo.continue_as_new(CatalogWorkflowInput(catalog=self.catalog))

    def _publish(self) -> None:
        workflow.upsert_memo({"catalog": self.catalog.model_dump(mode="json", by_alias=True)})

    def _change(self, before: str | None, after: str) -> CatalogChange:
        self._publish()
        if before is None:
            return CatalogChange(action="created")
        return CatalogChange(action="unchanged" if before == after else "configured")

    @workflow.update
    def register_api(self, input: RegisterApiInput) -> CatalogChange:
        current = self.catalog.apis.get(input.api.promise)
        before = current.model_dump_json() if current else None
        self.catalog.register_api(input.api)
        return self._change(before, input.api.model_dump_json())

    @register_api.validator
    def _check_api(self, input: RegisterApiInput) -> None:
        try:
            self.catalog.model_copy(deep=True).register_api(input.api)
        except InvalidDocument as exc:
            raise _refuse(exc) from exc

    @workflow.signal
    def unregister_api(self, input: UnregisterApiInput) -> None:
        if self.catalog.apis.pop(input.promise, None) is not None:
            self._publish()

    @workflow.update
    def apply_destination(self, input: ApplyDestinationInput) -> CatalogChange:
        current = self.catalog.destinations.get(input.destination.metadata.name)
        before = current.model_dump_json() if current else None
        self.catalog.apply_destination(input.destination)
        return self._change(before, input.destination.model_dump_json())

    @apply_destination.validator
    def _check_destination(self, input: ApplyDestinationInput) -> None:
        try:
            self.catalog.model_copy(deep=True).apply_destination(input.destination)
        except InvalidDocument as exc:
            raise _refuse(exc) from exc

    @workflow.update
    def apply_state_store(self, input: ApplyStateStoreInput) -> CatalogChange:
        current = self.catalog.state_store(input.store.kind, input.store.metadata.name)
        before = current.model_dump_json() if current else None
        self.catalog.apply_state_store(input.store)
        return self._change(before, input.store.model_dump_json())

    @workflow.update
    def remove(self, input: RemoveEntryInput) -> CatalogChange:
        if input.kind == "Destination":
            found = self.catalog.remove_destination(input.name)
        else:
            stores = (
                self.catalog.git_state_stores if input.kind == "GitStateStore" else self.catalog.bucket_state_stores
            )
            found = stores.pop(input.name, None) is not None
        if not found:
            raise ApplicationError(f"{input.kind} {input.name!r} not found", type="NotFound", non_retryable=True)
        self._publish()
        return CatalogChange(action="deleted")
