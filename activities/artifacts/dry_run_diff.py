"""A DryRun's diff: the files its pipelines wrote against the live request's last output, pipeline by pipeline.

Kratix diffs a dry run's Works against the live request's Works; here a pipeline's output (the Work) is a stored
tree in the artifact store, and the live request's outputs are what its workflow keeps to place them again, read
with a query (the live request is only read, never told anything).
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from activities.artifacts.store import ArtifactStore
from domain import dry_run as dr

PIPELINE_OUTPUTS_QUERY = "pipeline_outputs"
# A file larger than this is compared by its bytes but not shown: a diff is for reading, and the summary and the
# diffs travel in one Temporal payload (2 MB) and are written as one file.
SHOWN_FILE_BYTES = 256 * 1024
# The summary's and the diffs' own bound (the DryRun's memo carries both, under Temporal's 2 MB); past it a
# pipeline's section gives its counts only, saying so.
SHOWN_TOTAL_BYTES = 512 * 1024


class OutputFiles(BaseModel):
    """One pipeline's output as the delivery keeps it (workflows/delivery.py's PipelineOutput, the fields read)."""

    pipeline: str
    artifact: str | None = None
    files: list[str] = Field(default_factory=list)
    inline: dict[str, str] = Field(default_factory=dict)


class DiffDryRunInput(BaseModel):
    live_workflow_id: str
    proposed: list[OutputFiles] = Field(default_factory=list)


class FileDiff(BaseModel):
    pipeline: str
    path: str
    change: Literal["added", "modified", "removed"]
    # A unified diff (`--- a/PATH`, `+++ b/PATH`), as `diff -u -N` prints it.
    diff: str


class DiffDryRunResult(BaseModel):
    # pipeline -> its rendered section of kratix-dry-run-summary.md (domain/dry_run.py's render_diff)
    sections: dict[str, str] = Field(default_factory=dict)
    files: list[FileDiff] = Field(default_factory=list)
    live_found: bool = False
    truncated: bool = False


def _text(data: bytes) -> str:
    if len(data) > SHOWN_FILE_BYTES:
        # Its digest stands in for it, so a change still shows as a change.
        return f"# {len(data)} bytes, over the {SHOWN_FILE_BYTES} shown: sha256 {hashlib.sha256(data).hexdigest()}\n"
    return data.decode("utf-8", errors="replace")


def output_texts(artifacts: ArtifactStore, output: OutputFiles) -> dict[str, str]:
    """Each file of a pipeline's output, as text (a file past SHOWN_FILE_BYTES by its digest)."""
    files = {rel: _text(artifacts.path(output.artifact, rel).read_bytes()) for rel in output.files}
    files.update(output.inline)
    return files


class DryRunActivities:
    def __init__(self, client: Client, artifacts: ArtifactStore):
        self.client = client
        self.artifacts = artifacts

    async def _live(self, workflow_id: str) -> list[OutputFiles] | None:
        try:
            answer = await self.client.get_workflow_handle(workflow_id).query(PIPELINE_OUTPUTS_QUERY, result_type=dict)
        except WorkflowQueryRejectedError:
            return None  # deleted meanwhile: a new request, every file added
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        outputs = []
        for raw in answer.get("outputs") or []:
            files = sorted({f for group in raw.get("groups") or [] for f in group.get("files") or []})
            outputs.append(
                OutputFiles(
                    pipeline=raw["pipeline"], artifact=raw.get("artifact"), files=files, inline=raw.get("inline") or {}
                )
            )
        return outputs

    @activity.defn
    async def diff_dry_run(self, input: DiffDryRunInput) -> DiffDryRunResult:
        live = await self._live(input.live_workflow_id)
        live_by_pipeline = {o.pipeline: o for o in live or []}
        result = DiffDryRunResult(live_found=live is not None)
        budget = SHOWN_TOTAL_BYTES
        for output in sorted(input.proposed, key=lambda o: o.pipeline):
            proposed = output_texts(self.artifacts, output)
            before = (
                output_texts(self.artifacts, live_by_pipeline[output.pipeline])
                if output.pipeline in live_by_pipeline
                else {}
            )
            section = dr.render_diff(before, proposed)
            found = dr.changes(before, proposed)
            diffs = [
                FileDiff(
                    pipeline=output.pipeline,
                    path=path,
                    change=change,  # type: ignore[arg-type]
                    diff="".join(
                        difflib.unified_diff(
                            before.get(path, "").splitlines(keepends=True),
                            proposed.get(path, "").splitlines(keepends=True),
                            f"a/{path}",
                            f"b/{path}",
                        )
                    ),
                )
                for change, paths in (("added", found.added), ("modified", found.modified), ("removed", found.removed))
                for path in paths
            ]
            size = len(section.encode()) + sum(len(d.diff.encode()) for d in diffs)
            if size > budget:
                result.truncated = True
                section = f"**{len(found.added)} added · {len(found.modified)} modified · {len(found.removed)} "
                section += "removed**\n\n(diff over the size shown; not included)\n"
                diffs = [d.model_copy(update={"diff": ""}) for d in diffs]
                size = len(section.encode())
            budget -= size
            result.sections[output.pipeline] = section
            result.files += diffs
        return result
