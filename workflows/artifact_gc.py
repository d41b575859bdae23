"""`artifact-gc-<time>`: one garbage collection of stored pipeline outputs, started by the `artifact-gc` Schedule."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.artifacts.gc import ArtifactGcActivities, CollectGarbageInput, CollectGarbageResult
    from workflows import options


@workflow.defn
class ArtifactGcWorkflow:
    @workflow.run
    async def run(self, input: CollectGarbageInput) -> CollectGarbageResult:
        return await workflow.execute_activity_method(
            ArtifactGcActivities.collect_artifact_garbage,
            input,
            start_to_close_timeout=options.GC_TIMEOUT,
            heartbeat_timeout=options.GC_HEARTBEAT,
            retry_policy=options.GC_RETRY,
        )
