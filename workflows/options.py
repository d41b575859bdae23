"""Timeouts and retry policies for every activity, in one place so their reasons sit side by side."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# Pipelines run arbitrary containers (terraform, helm): allow long runs, but notice a dead worker within half a minute
# (runners heartbeat every 5 s). The fixed hour is what runs scheduled before the pipeline-deadline patch keep.
PIPELINE_TIMEOUT = timedelta(hours=1)
# Since each run has its own deadline, which the runner enforces, the activity's start-to-close timeout is that
# deadline plus time to stop the containers, store the output and report: a large output takes a few minutes to
# store; only a worker that stopped answering is caught here (and within 30 s by the heartbeat when it died).
PIPELINE_REPORT_GRACE = timedelta(minutes=10)
PIPELINE_HEARTBEAT = timedelta(seconds=30)
# Container failures are results, not exceptions; only infrastructure errors (runtime missing, disk full) retry.
PIPELINE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=["UnsupportedPipeline"],
)

# A run a worker deferred (its tenant holds its share of the slots) is asked for again after 1 s, doubling to 30 s: a
# slot is taken within seconds of freeing, and a wait behind hour-long runs costs a few events a minute.
SLOT_RETRY_BASE_S = 1.0
SLOT_RETRY_CAP_S = 30.0

# A batched commit waits for the batch ahead of it, so give writes room; pushes to a busy remote are retried.
STATE_STORE_TIMEOUT = timedelta(minutes=5)
STATE_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
    non_retryable_error_types=["UnsupportedStateStore"],
)

# Reads of Temporal's own memo and visibility are fast and safe to repeat.
READ_TIMEOUT = timedelta(seconds=30)
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=20
)

# Kratix requeues a resource whose Promise is unavailable every 60 s; we also get a signal when it becomes available.
PROMISE_RECHECK = timedelta(seconds=60)

# Local activities only read the worker's own configuration.
LOCAL_TIMEOUT = timedelta(seconds=10)

# Signalling every object a Destination affects: thousands of signals, with progress heartbeats.
FANOUT_TIMEOUT = timedelta(minutes=10)
FANOUT_HEARTBEAT = timedelta(seconds=30)
# A rollout's batch of re-bind signals (activities/platform/signals.py) is retried for as long as it takes: a plan
# never fails, and the signals' request IDs keep a retry from telling a request twice.
SIGNAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# How long search attributes may trail the workflow that set them (visibility is eventually consistent).
VISIBILITY_SETTLE = timedelta(seconds=3)

# Off-platform actions: a SaaS call is quick, or it is down. Refusals (4xx) fail at once; 429 waits for Retry-After.
ACTION_TIMEOUT = timedelta(seconds=30)
ACTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=8,
    non_retryable_error_types=["ActionRefused"],
)

# Artifact garbage collection: a query to every object workflow, then one listing and deletes; the next scheduled run
# catches whatever a failed one left.
GC_TIMEOUT = timedelta(hours=1)
GC_HEARTBEAT = timedelta(minutes=2)
# Deleting a Promise's pipeline RBAC objects: a few list calls and one delete per object; retried a few times, then the
# deletion goes on without it (Kratix logs such failures too), so a cluster that refuses never blocks a Promise's end.
PIPELINE_RBAC_CLEANUP_TIMEOUT = timedelta(minutes=2)
PIPELINE_RBAC_CLEANUP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3)
GC_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=3)
