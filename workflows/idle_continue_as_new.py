"""Continuing as new while idle. A workflow that only continues as new after its own work (a configure, a check)
grows without bound when it is sent messages that wake no work: labels and status patches on a paused object, no-op
applies, write reports to a Destination. Temporal terminates a workflow whose history reaches its hard limit, so the
wait for work also returns once Temporal suggests continuing as new."""

from __future__ import annotations

from temporalio import workflow

from workflows import patches


def allowed_this_run() -> bool:
    """Asked once per run, before its first command, and kept: a replay of a history recorded without the marker
    takes the old path for the whole run, and no wait condition ever records a marker."""
    return patches.patched(patches.CONTINUE_AS_NEW_WHEN_IDLE)


def suggested(allowed: bool) -> bool:
    return allowed and workflow.info().is_continue_as_new_suggested()
