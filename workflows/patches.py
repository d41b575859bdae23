"""One patch marker for every patch made before it.

Each `workflow.patched` a new workflow asks records a marker and a TemporalChangeVersion search-attribute upsert: two
history events per patch ever made, in every object's first workflow task, each of which the server stores and
indexes (a dozen of a new resource's 32 events). A workflow begun on this code asks `FOLDED` first and, finding it,
takes every patch it folds as made, recording nothing more.

A history from before has no `FOLDED` marker: the SDK answers it False during replay and keeps that answer for the
run, so each folded patch is asked of the history itself, as that code did. `FOLDED` is always asked before any patch
it folds, so a run that replayed a folded patch's answer has `FOLDED` answered (False) too. A patch made after
`FOLDED` calls `workflow.patched` itself: a history with `FOLDED` knows nothing of it.
"""

from __future__ import annotations

from temporalio import workflow

FOLDED = "folded-patches"

RESOURCE_VERSION = "resource-version"
# Histories from before sent every publish at once: they replay one upsert pair per publish.
COALESCED_PUBLISHING = "coalesced-publishing"
# Reads of memos and visibility as local activities; histories begun before keep replaying their remote reads.
LOCAL_READS = "local-catalog-reads"
# Each run has its own deadline (domain/pipeline_rules.py), which the activity's timeout follows: histories from before
# kept the fixed hour.
PIPELINE_DEADLINE = "pipeline-deadline"
CONTINUE_AS_NEW_WHEN_IDLE = "continue-as-new-when-idle"
PAUSED_AFTER_RUN = "paused-after-run"
PIPELINE_ERROR_IS_A_RUN = "pipeline-activity-error-is-a-failed-run"
DELETE_EVERY_PLACEMENT = "delete-every-placement"
DELETION_TIMESTAMP = "deletion-timestamp"
# Kratix keeps real output off Destinations labelled `kratix.io/dry-run: "true"`; histories from before placed there.
DRY_RUN_DESTINATIONS = "dry-run-destinations"
RETRY_AFTER_BOUND = "retry-after-bound"
BINDINGS = "resource-bindings"
REVISIONS = "promise-revisions"
REQUIRED_BY = "promise-required-by"
PIPELINE_RBAC_CLEANUP = "promise-pipeline-rbac-cleanup"
COMPOUND_DRY_RUNS = "compound-dry-runs"

_FOLDED_PATCHES = frozenset(
    {
        RESOURCE_VERSION,
        COALESCED_PUBLISHING,
        LOCAL_READS,
        PIPELINE_DEADLINE,
        CONTINUE_AS_NEW_WHEN_IDLE,
        PAUSED_AFTER_RUN,
        PIPELINE_ERROR_IS_A_RUN,
        DELETE_EVERY_PLACEMENT,
        DELETION_TIMESTAMP,
        DRY_RUN_DESTINATIONS,
        RETRY_AFTER_BOUND,
        BINDINGS,
        REVISIONS,
        REQUIRED_BY,
        PIPELINE_RBAC_CLEANUP,
        COMPOUND_DRY_RUNS,
    }
)

# Made after the fold: each is asked with `workflow.patched` itself (a history with `FOLDED` knows nothing of them).
# Plans started by their Promise's workflow tell it when they let go of the Promise; histories from before did not.
ROLLOUT_CLAIMS = "rollout-claims"
# Plans re-bind their requests in batches, by activity (activities/platform/signals.py); histories from before sent
# one signal command per request, which the server delivered one after another.
BATCHED_REBINDS = "batched-rebinds"
# A request deleted while a rollout upgrades it tells the rollout so (outcome Deleted, no failure of the version), and
# the rollout goes on; histories from before told it nothing (it waited for ever), or a failure when the re-bind came
# during the delete.
ROLLOUT_DELETED_REQUESTS = "rollout-deleted-requests"
# Histories from before upsert no KtxPromiseVersion.
PROMISE_VERSION_ATTRIBUTE = "promise-version-attribute"
# A plan's re-bind repeated while the request's run on that version is under way is dropped; histories from before
# restarted the run.
REPEATED_REBINDS = "repeated-rebinds"
# A run continued as new starts with its predecessor's memo (workflows/carried_memo.py); histories from before started
# with none.
MEMO_ACROSS_CONTINUE_AS_NEW = "memo-across-continue-as-new"
# A plan with spec.requestTimeout stops waiting for a request's outcome at its deadline, on a timer (outcome TimedOut);
# histories from before had no such field, and their waits no such timer.
ROLLOUT_REQUEST_TIMEOUTS = "rollout-request-timeouts"

# A request reads a Promise revision by a (remote) activity, not a local one: a local activity holds its workflow task's
# slot while the Promise's workflow is queried, and enough of them at once left no slot to answer the query in.
# Histories from before read it by local activity.
REVISION_READS_OFF_THE_TASK = "revision-reads-off-the-task"


def patched(patch: str) -> bool:
    """`workflow.patched(patch)` for a patch `FOLDED` stands for."""
    if patch not in _FOLDED_PATCHES:
        raise ValueError(f"{patch!r} is not folded: a patch made after {FOLDED!r} is asked with workflow.patched")
    return workflow.patched(FOLDED) or workflow.patched(patch)
