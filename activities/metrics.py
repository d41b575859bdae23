"""Prometheus metrics of the worker's activities, on the process-wide default registry that /metrics serves.

Labels stay bounded: Promise names are few, object names never appear, and durations leave the Promise out.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable, TypeVar

from prometheus_client import REGISTRY, Counter, Histogram
from temporalio.exceptions import ApplicationError

_Metric = TypeVar("_Metric", Counter, Histogram)

_PIPELINE_LABELS = ["promise", "workflow_type", "action", "runner"]


def metric(kind: type[_Metric], name: str, documentation: str, labels: list[str], **options: Any) -> _Metric:
    """A metric on the default registry, or the one already there: a module loaded a second time (importlib.reload,
    a second import path) must not fail the process with "Duplicated timeseries"."""
    try:
        return kind(name, documentation, labels, **options)
    except ValueError:
        existing = REGISTRY._names_to_collectors.get(name)  # noqa: SLF001 - the registry has no public lookup
        if not isinstance(existing, kind):
            raise
        return existing


PIPELINES_RUN = metric(Counter, "ktx_pipelines_run_total", "Pipelines run to a verdict.", _PIPELINE_LABELS)
PIPELINES_FAILED = metric(
    Counter, "ktx_pipelines_failed_total", "Pipelines whose verdict was a failure.", _PIPELINE_LABELS
)
PIPELINE_DURATION = metric(
    Histogram,
    "ktx_pipeline_duration_seconds",
    "Time from a pipeline's start to its verdict.",
    ["workflow_type", "action", "runner"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
STATE_STORE_WRITES = metric(
    Counter,
    "ktx_state_store_writes_total",
    "State-store write requests by outcome (committed, unchanged, failed); one commit or upload"
    " batch serves many requests.",
    ["kind", "result"],
)
STATE_STORE_WRITE_SECONDS = metric(
    Histogram,
    "ktx_state_store_write_seconds",
    "Time a state-store write request took, waiting for its batch included.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ACTIONS = metric(
    Counter,
    "ktx_actions_total",
    "Off-platform action attempts: succeeded, refused (not retried) or failed (retried).",
    ["provider", "result"],
)


def observe_pipeline(
    promise: str, workflow_type: str, action: str, runner: str, succeeded: bool, seconds: float
) -> None:
    PIPELINES_RUN.labels(promise, workflow_type, action, runner).inc()
    if not succeeded:
        PIPELINES_FAILED.labels(promise, workflow_type, action, runner).inc()
    PIPELINE_DURATION.labels(workflow_type, action, runner).observe(seconds)


def observe_state_store_write(kind: str, result: str, seconds: float) -> None:
    STATE_STORE_WRITES.labels(kind, result).inc()
    STATE_STORE_WRITE_SECONDS.labels(kind).observe(seconds)


_Result = TypeVar("_Result")


def counted_action(provider: str) -> Callable[[Callable[..., Awaitable[_Result]]], Callable[..., Awaitable[_Result]]]:
    """Counts each attempt of an action activity; goes under @activity.defn, which reads the wrapped signature."""

    def wrap(run: Callable[..., Awaitable[_Result]]) -> Callable[..., Awaitable[_Result]]:
        @functools.wraps(run)
        async def counted(*args: Any, **kwargs: Any) -> _Result:
            try:
                result = await run(*args, **kwargs)
            except ApplicationError as exc:
                ACTIONS.labels(provider, "refused" if exc.non_retryable else "failed").inc()
                raise
            except Exception:
                ACTIONS.labels(provider, "failed").inc()
                raise
            ACTIONS.labels(provider, "succeeded").inc()
            return result

        return counted

    return wrap
