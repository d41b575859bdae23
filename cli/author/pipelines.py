"""`ktx test pipeline`: a Promise's workflow run on this machine with no platform, as the platform runs it.

The same code runs each pipeline: the worker's runner (worker/main.py's `pipeline_runner`, so the same runtime,
flags and isolation) inside the pipeline activity's own method (activities/pipelines/activity.py: the workspace,
object.yaml as Kratix's reader writes it, the bounds and checks on what a pipeline leaves, the output tree, the
destination selectors grouped). Between pipelines the status is merged and the workflow control read as the object's
workflow does, with domain/'s functions. Nothing needs Temporal, the API or a state store; everything it writes is in
a temporary KTX_HOME removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cli.author import AuthorError
from cli.author.scaffold import is_split, load_promise, read_text, read_yaml
from domain import status as st
from domain.crd_validation import admit_promise
from domain.documents import Promise
from domain.errors import InvalidDocument
from domain.labels import PROMISE_NAME
from domain.pipeline_rules import pipeline_timeout_s
from domain.promise_api import PromiseApi, check_runner
from domain.scheduling import squash
from domain.validation import validate_resource_request
from domain.workflow_control import WorkflowControl, parse_workflow_control, retry_after_error
from worker.settings import Settings

if TYPE_CHECKING:
    from activities.pipelines.models import PipelineContext, PipelineRunResult

# A container's log as shown here: its last lines (the platform keeps the last 2 KiB as the tail, the runner more).
LOG_LINES = 20


@dataclass
class PipelineReport:
    name: str
    result: PipelineRunResult
    files: dict[str, bytes] = field(default_factory=dict)
    control: WorkflowControl | None = None
    error: str = ""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_promise(path: Path) -> dict[str, Any]:
    if path.is_dir():
        return load_promise(path) if is_split(path) else read_yaml(path / "promise.yaml")
    documents = [d for d in yaml.safe_load_all(read_text(path)) if d]
    promises = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Promise"]
    if len(promises) != 1:
        raise AuthorError(f"error: {path} holds {len(promises)} Promises; give a file with exactly one")
    return promises[0]


def _stored(document: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    """The document as the platform first hands it to a pipeline: generation, creationTimestamp and uid set."""
    metadata = document.setdefault("metadata", {})
    metadata.update(generation=generation, creationTimestamp=_now(), uid=str(uuid.uuid4()))
    return document


def _request(api: PromiseApi, path: Path) -> dict[str, Any]:
    """The request validated and defaulted by the Promise's schema, labelled with its Promise, as the API stores it."""
    documents = [d for d in yaml.safe_load_all(read_text(path)) if d]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise AuthorError(f"error: {path} must hold exactly one resource request")
    document = validate_resource_request(api, documents[0]).to_doc()
    document.setdefault("metadata", {}).setdefault("labels", {})[PROMISE_NAME] = api.promise
    return _stored(document)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def run_workflow(
    settings: Settings,
    promise: Promise,
    workflow: str,
    obj: dict[str, Any],
    context: PipelineContext,
    only: str | None,
) -> tuple[list[PipelineReport], dict[str, Any]]:
    """Each pipeline of the workflow in turn (or the one named), stopping at a failure or a suspension, as the
    object's workflow runs them; returns each run's report and the status merged from all of them."""
    # Here, not at the top: `ktx` starts without the worker and Temporal's modules (tests/unit/test_cli_startup.py).
    from temporalio.exceptions import ApplicationError

    from activities.artifacts.store import ArtifactStore
    from activities.pipelines.activity import PipelineActivities
    from activities.pipelines.models import PipelineRunResult, RunPipelineInput
    from activities.pipelines.workspaces import Workspaces
    from worker.main import pipeline_runner

    lifecycle, action = workflow.split(".")
    pipelines = getattr(getattr(promise.spec.workflows, lifecycle), action)
    if only is not None:
        pipelines = [p for p in pipelines if p.metadata.name == only]
    if not pipelines:
        what = f"pipeline {only!r}" if only else "pipeline"
        raise AuthorError(f"error: the Promise's {workflow} workflow has no {what}")
    promise_workflow = lifecycle == "promise"
    status: dict[str, Any] = {}
    if action == "configure":
        st.mark_configure_started(status, [p.metadata.name for p in pipelines], _now())
    artifacts = ArtifactStore(settings.artifacts_dir)
    activities = PipelineActivities(pipeline_runner(settings), artifacts, Workspaces(settings.workspaces_dir))
    selectors = squash([s.match_labels for s in promise.spec.destination_selectors])
    reports = []
    for index, pipeline in enumerate(pipelines):
        name = pipeline.metadata.name
        # What the object's workflow shows in status while the pipeline runs, so object.yaml carries it too.
        if action == "delete":
            st.mark_delete_started(status, name)
        st.set_pipeline_phase(status, name, "Running", _now())
        run = RunPipelineInput(
            run_id=f"test-{name}-{uuid.uuid4().hex[:8]}",
            pipeline=pipeline,
            object={**obj, "status": status},
            context=context,
            promise_selectors=selectors,
            timeout_s=pipeline_timeout_s(pipeline, settings.platform.pipeline_timeout_s),
        )
        try:
            result = await activities.run_pipeline(run)
        except ApplicationError as exc:  # a pipeline this runner cannot run (env valueFrom needs Kubernetes)
            result = PipelineRunResult(succeeded=False, message=str(exc))
        report = PipelineReport(name=name, result=result)
        reports.append(report)
        if not result.succeeded:
            report.error = result.message
            break
        if result.artifact is not None:
            report.files = _tree(artifacts.path(result.artifact))
        try:
            status = st.merge_status_file(status, result.status, promise_workflow=promise_workflow)
            report.control = parse_workflow_control(result.workflow_control)
        except InvalidDocument as exc:
            report.error = str(exc)
            break
        too_late = retry_after_error(report.control) if report.control is not None else None
        if too_late is not None:
            report.error = too_late
            break
        if report.control is not None and report.control.suspends:
            break
        if action == "configure":
            st.set_pipeline_phase(status, name, "Succeeded", _now())
            status["workflowsSucceeded"] = index + 1
    else:
        if action == "configure":
            st.mark_configure_succeeded(status, _now(), promise_workflow=promise_workflow)
    return reports, status


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def print_report(reports: list[PipelineReport], status: dict[str, Any], show_files: bool) -> None:
    for report in reports:
        result = report.result
        print(f"Pipeline {report.name}: {'Succeeded' if not report.error else 'Failed'}")
        for c in result.containers:
            exit_code = "-" if c.exit_code is None else c.exit_code
            print(f"  container {c.name} ({c.image}): exit code {exit_code}, {c.duration_seconds}s")
            for line in (c.log_tail or "").rstrip().splitlines()[-LOG_LINES:]:
                print(f"    | {line}")
        if report.error:
            print(f"  error: {report.error}")
            continue
        print(f"  files ({len(report.files)}):")
        for path, data in report.files.items():
            print(f"    {path}")
            if show_files:
                text = _text(data)
                body = text if text is not None else f"<{len(data)} bytes, not UTF-8>\n"
                print("".join(f"      {line}" for line in body.splitlines(keepends=True)), end="")
                if body and not body.endswith("\n"):
                    print()
        print("  destination selectors:" + ("" if result.groups else " none (no files to schedule)"))
        for group in result.groups:
            chosen = {k: v for s in group.selectors for k, v in s.match_labels.items()}
            sources = ", ".join(s.source.value for s in group.selectors) or "none: any Destination"
            shown = ",".join(f"{k}={v}" for k, v in sorted(chosen.items())) or "{}"
            print(f"    {group.directory}: {shown} ({sources}; {len(group.files)} files)")
        control = report.control
        if control is None:
            print("  workflow control: none")
        elif control.retry_after_s is not None:
            print(f"  workflow control: retry after {control.retry_after_s:g}s {control.message}".rstrip())
        else:
            print(f"  workflow control: {'suspend' if control.suspend else 'none'} {control.message}".rstrip())
        if control is not None and control.suspends:
            print("  the workflow stops here, as the platform's does, until it is resumed or retried")
    print("Status:")
    print("".join(f"  {line}\n" for line in yaml.safe_dump(status, sort_keys=False).splitlines()), end="")


def compare(expected: Path, reports: list[PipelineReport]) -> list[str]:
    """The differences between `expected/<pipeline>/...` and what each pipeline wrote: a unified diff per differing
    file, then the files missing and the extra ones."""
    actual = {f"{r.name}/{path}": data for r in reports for path, data in r.files.items()}
    wanted = _tree(expected)
    lines: list[str] = []
    for path in sorted(set(wanted) & set(actual)):
        if wanted[path] == actual[path]:
            continue
        old, new = _text(wanted[path]), _text(actual[path])
        if old is None or new is None:
            lines.append(f"Binary files expected/{path} and actual/{path} differ")
            continue
        lines += [
            line.rstrip("\n")
            for line in difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"expected/{path}",
                tofile=f"actual/{path}",
            )
        ]
    lines += [f"missing: {path} (expected, not written)" for path in sorted(set(wanted) - set(actual))]
    lines += [f"extra: {path} (written, not expected)" for path in sorted(set(actual) - set(wanted))]
    return lines


def _save(directory: Path, reports: list[PipelineReport]) -> None:
    for report in reports:
        for path, data in report.files.items():
            target = directory / report.name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def cmd_test_pipeline(args: argparse.Namespace, settings: Settings) -> None:
    from activities.pipelines.models import PipelineContext

    document = _load_promise(Path(args.promise))
    promise = Promise.model_validate(document)
    api = admit_promise(promise)
    check_runner(promise, "podman")  # what runs it here
    lifecycle, action = args.workflow.split(".")
    if lifecycle == "resource":
        if api is None:
            raise AuthorError("error: the Promise has no API, so no resource workflow")
        if not args.input:
            raise AuthorError("error: a resource workflow needs --input REQUEST_FILE")
        obj = _request(api, Path(args.input))
        meta = obj["metadata"]
        context = PipelineContext.of_resource(action, api, meta["name"], meta["namespace"])
    else:
        obj = _stored(document)
        context = PipelineContext.of_promise(action, promise.metadata.name)
    home = Path(tempfile.mkdtemp(prefix="ktx-test-pipeline-"))
    try:
        local = settings.model_copy(update={"home": home, "pipeline_runner": "podman"})
        reports, status = asyncio.run(run_workflow(local, promise, args.workflow, obj, context, args.pipeline))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print_report(reports, status, args.show_files)
    if args.save:
        _save(Path(args.save), reports)
    failed = [r.name for r in reports if r.error]
    if failed:
        raise AuthorError(f"error: pipeline {failed[0]} failed")
    if args.expect:
        differences = compare(Path(args.expect), reports)
        if differences:
            print("\n".join(differences))
            raise AuthorError(f"error: the output differs from {args.expect} ({len(differences)} lines above)")
        print(f"Output matches {args.expect}")
