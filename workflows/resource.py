"""The lifecycle of one resource request: `resource/<promise>/<namespace>/<name>`, alive until the resource is
deleted."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.platform.catalog import CatalogActivities, ReadPromiseInput
    from activities.pipelines.models import PipelineContext
    from activities.platform.redelivery import REDELIVER_SIGNAL, RedeliverRequest
    from domain import labels as lb
    from domain import status as st
    from domain.documents import Pipeline
    from domain.health import health_status
    from domain.scheduling import WorkloadGroup
    from domain.promise_api import UNVERSIONED, PromiseSnapshot
    from domain import revisions as rv
    from domain.revisions import Binding
    from domain.labels import label_errors, label_value_error
    from workflows.revision_records import HoldBindingInput, RevisionDeleted
    from domain.naming import promise_workflow_id
    from workflows.upgrade_records import REBIND_SIGNAL, UPGRADE_OUTCOME_SIGNAL, RebindRequest, UpgradeOutcome
    from workflows import carried_memo, options
    from workflows import patches
    from workflows.delivery import PipelineOutput, now_iso, read
    from workflows.lifecycle import Action, ObjectLifecycle
    from workflows.publishing import Publisher
    from workflows.records import (
        ApplyInput,
        ApplyResult,
        DeleteAccepted,
        DeleteRequest,
        LabelRequest,
        LabelResult,
        ReconcileRequest,
        StatusPatch,
        StatusPatched,
    )

    # Passed through, not defined here: the sandbox runs this module afresh for every workflow it loads, and building
    # these pydantic classes was most of that (~10 ms each time, the worker's main cost when many resources start).
    from workflows.resource_records import (
        BindingEdit,
        BindingEdited,
        PendingUpgrade,
        HealthRecordInput,
        HealthRecordResult,
        RemoveHealthRecordInput,
        ResourceState,
        ResourceWorkflowInput,
        ResourceWorkflowResult,
    )


def _spec_of(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "metadata"}


@workflow.defn
class ResourceWorkflow(ObjectLifecycle):
    workflow_type = "resource"

    @workflow.init
    def __init__(self, input: ResourceWorkflowInput) -> None:
        self.state: ResourceState = input.state
        self.publisher = Publisher(input.state.resource_version, coalesce=True)
        self.snapshot: PromiseSnapshot | None = None
        self.promise_changed = False
        if input.initial is not None:
            # In init, so an update arriving in the same first task applies after it, in the order they were sent.
            self._apply_document(input.initial, _spec_of)

    @workflow.run
    async def run(self, input: ResourceWorkflowInput) -> ResourceWorkflowResult:
        await self.lifecycle()
        return ResourceWorkflowResult(deleted=True)

    # --- messages ---

    @workflow.update
    async def apply(self, input: ApplyInput) -> ApplyResult:
        return self._apply_document(input, _spec_of)

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        self._refuse_if_deleting()
        self._refuse_stale(input)

    @workflow.update
    async def label(self, input: LabelRequest) -> LabelResult:
        return self._apply_labels(input)

    @workflow.update
    async def patch_status(self, input: StatusPatch) -> StatusPatched:
        return self._patch_status(input)

    @patch_status.validator
    def _validate_patch_status(self, input: StatusPatch) -> None:
        self._refuse_bad_status(input)

    @label.validator
    def _validate_label(self, input: LabelRequest) -> None:
        self._refuse_if_deleting(allow_controls=True)
        self._refuse_bad_labels(input)

    @workflow.update
    async def delete(self, input: DeleteRequest) -> DeleteAccepted:
        self._request_delete(input)
        return DeleteAccepted()

    @workflow.signal
    def delete_signal(self, input: DeleteRequest) -> None:
        """The Promise's workflow deletes its resources with this (workflows can only signal each other)."""
        self._request_delete(input)

    @workflow.signal
    def reconcile(self, input: ReconcileRequest) -> None:
        """The Promise changed (spec, availability, `kratix.io/reconcile-resources`): run from the first pipeline.

        A request pinned to another version stays exactly as it is: the change is not to its revision."""
        binding = self.state.binding
        if input.version is not None and binding is not None and rv.is_pinned(binding):
            if binding.version != input.version:
                return
        self.promise_changed = True
        self._restart("PromiseChanged", input.reason)

    @workflow.signal(name=REBIND_SIGNAL)
    async def rebind(self, input: RebindRequest) -> None:
        """A rollout re-binds the request: exactly an edit of the binding's `spec.version`."""
        if self.state.delete_requested:
            if workflow.patched(patches.ROLLOUT_DELETED_REQUESTS):
                await self._reply(input.reply_to, input.version, None, deleted=True)
            else:
                await self._reply(input.reply_to, input.version, "the request is being deleted")
            return
        if self._upgrading_as_asked(input) and workflow.patched(patches.REPEATED_REBINDS):
            return  # its run on that version goes on, and answers this plan when it ends
        decided, failure = self._set_binding_version(input.version, reply_to=input.reply_to, plan=input.plan)
        if decided:
            await self._reply(input.reply_to, input.version, failure)

    def _upgrading_as_asked(self, input: RebindRequest) -> bool:
        """Whether this re-bind repeats the one whose run is under way. Temporal drops a plan's repeated batch by its
        request ID, but not once the request has continued as new: the new run knows no earlier signal."""
        upgrade, binding = self.state.upgrade, self.state.binding
        return (
            upgrade is not None
            and not upgrade.manual
            and binding is not None
            and binding.version == input.version
            and (upgrade.plan, upgrade.reply_to) == (input.plan, input.reply_to)
        )

    @workflow.signal
    def revision_deleted(self, input: RevisionDeleted) -> None:
        """Kratix deletes the requests bound to a deleted PromiseRevision."""
        binding = self.state.binding
        if binding is not None and rv.is_pinned(binding) and binding.version == input.version:
            self._event("Normal", "PromiseRevisionDeleted", f"PromiseRevision for version {input.version} was deleted")
            self._request_delete(DeleteRequest())

    @workflow.update
    async def edit_binding(self, input: BindingEdit) -> BindingEdited:
        binding = self._binding()
        if input.deleted:
            # Kratix recreates a deleted binding at once, with the version the request records.
            recorded = self.state.status.get("resourceBindingVersion")
            snapshot = self.snapshot  # set once the run has read the platform's config and the Promise
            strategy = self.config.resource_binding_version_strategy if snapshot else "floating"
            self.state.binding = Binding(
                name=binding.name,
                version=rv.new_binding_version(strategy, snapshot.version if snapshot else UNVERSIONED, recorded),
                created=now_iso(),
                last_applied=binding.last_applied,
            )
            self._event(
                "Normal",
                "BindingCreated",
                f"Binding {binding.name} created for promise {self.state.promise} version {self.state.binding.version}",
            )
            self._publish()
        else:
            if input.labels is not None:
                labels = dict(input.labels)
                manual = lb.is_true(labels, lb.MANUAL_RECONCILIATION)
                labels.pop(lb.MANUAL_RECONCILIATION, None)  # Kratix removes it once the run is asked for
                binding.labels = labels
                if manual:
                    self._set_binding_version(input.version or binding.version, manual=True)
            if input.version is not None and input.version != binding.version:
                self._set_binding_version(input.version)
            self._publish()
        return BindingEdited(binding=self._binding_document())

    @edit_binding.validator
    def _validate_edit_binding(self, input: BindingEdit) -> None:
        self._refuse_if_deleting()
        self.publisher.refuse_stale(input.resource_version)
        errors = label_errors("metadata.labels", input.labels) if input.labels is not None else []
        if input.version is not None and input.version != rv.LATEST:
            reason = label_value_error(input.version) if input.version else "must be `latest` or a Promise version"
            if reason:
                errors.append(rv.FieldError("spec.version", reason))
        if errors:
            raise ApplicationError("; ".join(str(e) for e in errors), type="InvalidDocument", non_retryable=True)

    @workflow.signal(name=REDELIVER_SIGNAL)
    def redeliver(self, input: RedeliverRequest) -> None:
        """A Destination changed: place unplaced groups, flag misplaced ones, rewrite or clean up as asked."""
        self._request_redelivery(input)

    @workflow.update
    async def record_health(self, input: HealthRecordInput) -> HealthRecordResult:
        self.state.health = [
            r for r in self.state.health if (r.namespace, r.name) != (input.record.namespace, input.record.name)
        ]
        self.state.health.append(input.record)
        return self._update_health()

    @workflow.update
    async def remove_health(self, input: RemoveHealthRecordInput) -> HealthRecordResult:
        self.state.health = [r for r in self.state.health if (r.namespace, r.name) != (input.namespace, input.name)]
        return self._update_health()

    # --- bindings ---

    def _binding(self, latest: str | None = None) -> Binding:
        """The request's binding. A request without one gets it here: from its status when it ran before bindings
        (bound to what it ran on, so nothing re-runs), else by the platform's strategy once the latest version is
        known (`latest` when it is not yet)."""
        if self.state.binding is None:
            status = self.state.status
            strategy = self.config.resource_binding_version_strategy if latest is not None else "floating"
            self.state.binding = Binding(
                name=rv.binding_name(self.state.promise, self.state.name),
                version=rv.new_binding_version(strategy, latest or UNVERSIONED, status.get("resourceBindingVersion")),
                created=str(self.state.document.get("metadata", {}).get("creationTimestamp") or now_iso()),
                last_applied=status.get("promiseVersion") or "",
            )
        return self.state.binding

    async def _adopt_held_binding(self, snapshot: PromiseSnapshot) -> PromiseSnapshot | None:
        """Kratix adopts a binding made before its request (pinning it from the start): the first run then uses the
        binding's revision, not the live Promise."""
        key = f"{self.state.namespace}/{self.state.name}"
        held = snapshot.held_bindings.get(key)
        if held is None:
            return snapshot
        self.state.binding = binding = Binding.model_validate(held)
        self._event(
            "Normal",
            "BindingAdopted",
            f"Binding {binding.name} adopted for promise {self.state.promise} version {binding.version}",
        )
        try:
            await workflow.get_external_workflow_handle(promise_workflow_id(self.state.promise)).signal(
                "binding_adopted", HoldBindingInput(namespace=self.state.namespace, resource=self.state.name)
            )
        except ApplicationError:
            pass  # the Promise is being deleted: the binding it held goes with it
        if rv.is_pinned(binding) and binding.version != snapshot.version:
            self.snapshot = await self._read_promise(binding.version)
        return self.snapshot

    def _binding_document(self) -> dict[str, Any]:
        binding = self._binding()
        document = rv.binding_document(binding, self.state.promise, self.state.namespace, self.state.name)
        document["metadata"]["resourceVersion"] = str(self.publisher.resource_version)
        return document

    def _set_binding_version(
        self, version: str, *, reply_to: str | None = None, plan: str | None = None, manual: bool = False
    ) -> tuple[bool, str | None]:
        """Kratix's ResourceBinding controller: a new desired version re-runs the request on that revision.

        Returns whether the outcome is decided now, without a run, and the failure if so."""
        binding = self._binding()
        previous = self.state.upgrade.previous if self.state.upgrade else binding.version
        binding.version = version
        applied = self.state.status.get("promiseVersion")
        if not manual and version != rv.LATEST and applied == version and not binding.failed:
            # Already at that version: nothing to run, and a rollout re-sending after a restart upgrades nothing twice.
            self.state.upgrade = None
            if "resourceBindingVersion" in st.mark_versions(self.state.status, applied, version):
                self._event("Normal", "ResourceBindingVersionUpdated", f"Resource binding version updated to {version}")
            self._publish()
            return True, None
        if not manual and rv.last_attempt_failed_for(binding, version):
            # A failed version is not retried until the binding's manual-reconciliation label asks.
            self._publish()
            return True, rv.upgrade_message(binding)
        self.state.upgrade = PendingUpgrade(previous=previous, reply_to=reply_to, plan=plan, manual=manual)
        reason = "ManualReconciliation" if manual else "ResourceBindingUpdated"
        by = f" by rollout {plan}" if plan else ""
        self._restart(reason, f"the ResourceBinding's version is {version}{by}")
        return False, None

    async def _reply(self, reply_to: str | None, version: str, failure: str | None, *, deleted: bool = False) -> None:
        if not reply_to or not patches.patched(patches.BINDINGS):
            return
        run = next((r for r in reversed(self.state.runs) if r.action == "configure"), None)
        failed = run if failure is not None and run is not None and not run.succeeded else None
        container = next((c for c in failed.containers if c.name == failed.failed_container), None) if failed else None
        outcome = UpgradeOutcome(
            promise=self.state.promise,
            namespace=self.state.namespace,
            name=self.state.name,
            version=version,
            succeeded=failure is None and not deleted,
            deleted=deleted,
            message=failure or "",
            failing_pipeline=failed.pipeline if failed else None,
            failing_container=failed.failed_container if failed else None,
            log_tail=(container.log_tail[-4096:] if container else ""),
        )
        try:
            await workflow.get_external_workflow_handle(reply_to).signal(UPGRADE_OUTCOME_SIGNAL, outcome)
        except ApplicationError:  # the rollout has ended: nobody is waiting for it
            self._event("Warning", "UpgradeOutcomeUndelivered", f"the rollout {reply_to} could not be told")

    def _refuse_if_deleting(self, allow_controls: bool = False) -> None:
        # Labels still work while deleting: removing `kratix.io/workflow-suspended` is how a gated delete resumes.
        if self.state.delete_requested and not allow_controls:
            raise ApplicationError("the resource is being deleted", type="Conflict", non_retryable=True)

    def _update_health(self) -> HealthRecordResult:
        previous = (self.state.status.get("healthStatus") or {}).get("state")
        self.state.status["healthStatus"] = health_status(self.state.health)
        state = self.state.status["healthStatus"]["state"]
        if state != previous:
            self._event(
                "Normal" if state in ("healthy", "ready") else "Warning", "HealthRecord", f"Health state is {state}"
            )
        self._publish()
        return HealthRecordResult(state=state)

    # --- hooks ---

    def _context(self, action: Action) -> PipelineContext:
        api = self.snapshot.api if self.snapshot else None
        assert api is not None
        return PipelineContext.of_resource(
            action,
            api,
            self.state.name,
            self.state.namespace,
            self.snapshot.pipeline_namespace if self.snapshot else "",
        )

    def _run_prefix(self) -> str:
        return f"{self.state.namespace}-{self.state.name}"

    def _promise_selectors(self) -> dict[str, str]:
        return self.snapshot.destination_selectors if self.snapshot else {}

    def _owner_labels(self) -> dict[str, str]:
        return {
            lb.COMPONENT_OF_PROMISE: self.state.promise,
            lb.COMPONENT_OF_RESOURCE: self.state.name,
            lb.COMPONENT_OF_NAMESPACE: self.state.namespace,
        }

    def _interval_override(self) -> float | None:
        return self.snapshot.reconciliation_interval_s if self.snapshot else None

    async def _read_promise(self, version: str | None = None) -> PromiseSnapshot | None:
        # A revision is asked of its Promise's workflow (a query): a remote read, since as local ones, 8 requests
        # reading at once held every slot and a rollout of 100 stalled at 92 for good.
        remote = version is not None and workflow.patched(patches.REVISION_READS_OFF_THE_TASK)
        arg = ReadPromiseInput(name=self.state.promise, version=version)
        result = await read(CatalogActivities.read_promise, arg, remote=remote)
        return result.snapshot

    def _version_to_read(self) -> str | None:
        """The revision a run uses: the binding's, read with its schema when pinned or being upgraded; the live
        Promise's (from its memo) when floating on latest."""
        binding = self.state.binding
        if binding is None or (not rv.is_pinned(binding) and self.state.upgrade is None):
            return None
        return binding.version

    async def _prepare_configure(self, start: int) -> list[Pipeline] | None:
        self.promise_changed = False
        self.snapshot = snapshot = await self._read_promise(self._version_to_read())
        if snapshot is not None and self.state.binding is None and patches.patched(patches.BINDINGS):
            snapshot = await self._adopt_held_binding(snapshot)
        if snapshot is not None:
            binding = self._binding(latest=snapshot.version)
            if self.state.upgrade is not None and not await self._upgrade_admitted(snapshot):
                return None
            if patches.patched(patches.BINDINGS) and rv.mark_upgrade_started(
                binding, snapshot.version, now_iso(), manual=bool(self.state.upgrade and self.state.upgrade.manual)
            ):
                self._publish()
        elif self.state.binding is not None and rv.is_pinned(self.state.binding):
            version = self.state.binding.version
            self._event(
                "Warning",
                "PromiseRevisionLookupFailed",
                f"cannot find PromiseRevision for Promise {self.state.promise} version {version}",
            )
        status = self.state.status
        if snapshot is None or not snapshot.available or snapshot.api is None:
            status["message"] = st.PENDING_MESSAGE
            if snapshot is not None and snapshot.paused:
                st.mark_paused(status, now_iso(), promise=False)
            st.set_condition(
                status,
                "PromiseAvailable",
                "False",
                "PromiseRequirementsNotInstalled",
                "Promise Requirements are not installed",
                now_iso(),
            )
            self._event("Normal", "PromiseUnavailable", f"waiting for Promise {self.state.promise} to be available")
            self._publish()
            # Wake on the Promise's signal, or re-check on Kratix's 60 s schedule.
            try:
                await workflow.wait_condition(
                    lambda: self.promise_changed or self.state.delete_requested or self.state.start_from is not None,
                    timeout=options.PROMISE_RECHECK,
                )
            except asyncio.TimeoutError:
                pass
            if self.state.start_from is None:
                self.state.start_from = start
            return None
        st.set_condition(
            status, "PromiseAvailable", "True", "PromiseAvailable", "Promise Requirements are met", now_iso()
        )
        return snapshot.resource_configure

    def _output_of(
        self, pipeline: str, groups: list[WorkloadGroup], artifact: str | None, inline: dict[str, str]
    ) -> PipelineOutput:
        st_ = self.state
        return PipelineOutput.of_resource(st_.promise, st_.namespace, st_.name, pipeline, groups, artifact, inline)

    async def _upgrade_admitted(self, snapshot: PromiseSnapshot) -> bool:
        """A request that does not validate under the revision's schema is not run on it: the binding goes back to
        the version it had, says why (UpgradeFailed, naming the field) and the rollout is told."""
        upgrade, binding = self.state.upgrade, self._binding()
        assert upgrade is not None
        refusal = None
        if snapshot.api is not None and snapshot.api.schema_:
            refusal = rv.request_fits_api(snapshot.api, self.state.document)
        if refusal is None:
            return True
        self.state.upgrade = None
        message = f"the request does not validate under version {snapshot.version}: {refusal}"
        binding.version = upgrade.previous
        rv.mark_upgrade_finished(binding, binding.last_applied, snapshot.version, message, now_iso())
        self._event("Warning", rv.UPGRADE_FAILED, message)
        self._publish()
        await self._reply(upgrade.reply_to, snapshot.version, message)
        return False

    async def _configure_failed(self, name: str, error: str, generation: int) -> None:
        # The binding first, so the failed run's publish shows it: Kratix's UpgradeFailed carries the message of the
        # request's ConfigureWorkflowCompleted condition.
        upgrade = self._mark_upgrade_finished(st.configure_failed_message(name))
        await super()._configure_failed(name, error, generation)
        if upgrade is not None:
            await self._reply(upgrade.reply_to, self._attempted_version(), st.configure_failed_message(name))

    def _attempted_version(self) -> str:
        return self.snapshot.version if self.snapshot else UNVERSIONED

    def _mark_upgrade_finished(self, failure: str | None) -> PendingUpgrade | None:
        """Record how the run on the bound version ended; the upgrade it finished, if one was asked for."""
        attempted = self._attempted_version()
        applied = self.state.status.get("promiseVersion") or attempted
        rv.mark_upgrade_finished(self._binding(), applied, attempted, failure, now_iso())
        upgrade, self.state.upgrade = self.state.upgrade, None
        return upgrade

    async def _configure_succeeded(self, generation: int) -> None:
        version = self.snapshot.version if self.snapshot else UNVERSIONED
        binding_version = self.state.binding.version if self.state.binding else st.LATEST_BINDING_VERSION
        changed = st.mark_versions(self.state.status, version, binding_version)
        if "promiseVersion" in changed:
            self._event(
                "Normal",
                "ReconcileSucceeded",
                f"Resource request reconciled with promise {self.state.promise} version {version}",
            )
        if "resourceBindingVersion" in changed:
            self._event(
                "Normal",
                "ResourceBindingVersionUpdated",
                f"Resource binding version updated to {binding_version}",
            )
        self._mark_works()
        if any(p.error or p.apply_errors for p in self.state.placements):
            self._event("Warning", "WorksFailing", "some outputs could not be delivered; see conditions")
        elif not self.state.pending_groups:
            self._event("Normal", "ReconcileSucceeded", "Successfully reconciled")
        upgrade = self._mark_upgrade_finished(None)
        if upgrade is not None:  # the rollout reads the binding once told: publish it first
            self._publish()
            await self._reply(upgrade.reply_to, self._attempted_version(), None)

    def _label(self) -> str:
        return f"{self.state.promise}/{self.state.namespace}/{self.state.name}"

    async def _delete(self) -> None:
        upgrade = self.state.upgrade
        if upgrade is not None and upgrade.reply_to and workflow.patched(patches.ROLLOUT_DELETED_REQUESTS):
            # The delete cut short (or forestalled) the run the rollout asked for, which will never end now: the
            # rollout hears the request is gone instead of waiting for it.
            self.state.upgrade = None
            await self._reply(upgrade.reply_to, self._binding().version, None, deleted=True)
        await super()._delete()

    async def _delete_pipeline(self) -> Pipeline | None:
        # Kratix deletes with the version applied: status.promiseVersion, else the binding's lastAppliedVersion, else
        # the latest revision.
        binding = self.state.binding
        applied = self.state.status.get("promiseVersion") or (binding.last_applied if binding else "")
        self.snapshot = await self._read_promise(applied or None)
        pipelines = self.snapshot.resource_delete if self.snapshot and self.snapshot.api else []
        return pipelines[0] if pipelines else None

    def _continue_as_new(self) -> None:
        carried_memo.continue_as_new(ResourceWorkflowInput(state=self.state))

    def _publish(self) -> None:
        memo = self._memo()
        memo["health"] = [r.document for r in self.state.health]
        if self.state.binding is not None and patches.patched(patches.BINDINGS):
            memo["binding"] = rv.binding_document(
                self.state.binding, self.state.promise, self.state.namespace, self.state.name
            )
        self.publisher.publish(memo, st.summary_phase(self.state.status, deleting=self.state.delete_requested))
        if workflow.patched(patches.PROMISE_VERSION_ATTRIBUTE):
            self.publisher.publish_version(str(self.state.status.get("promiseVersion") or ""))
