"""`ktx rollout create|status|pause|resume|abort|rollback|delete`: RolloutPlans through the API's /rollouts routes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from domain.durations import format_duration

CONTROLS = {
    "pause": "start no more requests (those running finish)",
    "resume": "continue a paused plan, or a halted one (its failure count starts again)",
    "abort": "stop the plan for good (those running finish); rollback is still possible",
    "rollback": "re-bind the requests a halted or aborted plan ran back to fromVersion and re-run them",
    "delete": "remove a plan that has nothing running",
}
# The end of a failing pipeline's log that status prints; `ktx logs` has the whole of it.
LOG_LINES = 20


def register(sub: Any) -> None:
    rollout = sub.add_parser("rollout", help="upgrade a Promise's requests between versions, group by group")
    verbs = rollout.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="create a RolloutPlan from a file (or - for stdin)")
    create.add_argument("-f", "--filename", required=True)
    create.add_argument(
        "--preview", action="store_true", help="list the requests it would upgrade, in order, touching none"
    )
    create.add_argument("-o", "--output", choices=["json"], help="print the API's answer as JSON")
    create.set_defaults(func=cmd_create)
    status = verbs.add_parser("status", help="each group's progress, failures with their log tail, and an ETA")
    status.add_argument("name")
    status.add_argument("-o", "--output", choices=["json"], help="print the plan and its status as JSON")
    status.set_defaults(func=cmd_status)
    for verb, help in CONTROLS.items():
        control = verbs.add_parser(verb, help=help)
        control.add_argument("name")
        control.set_defaults(func=cmd_control)


def cmd_create(args: argparse.Namespace, ktx: Any) -> None:
    from cli.main import _check, _client, _read_files

    (text,) = _read_files([args.filename])
    params = {"preview": "true"} if args.preview else {}
    with _client(ktx.home) as client:
        result = _check(
            client.post("/rollouts", content=text, params=params, headers={"content-type": "application/yaml"})
        )
    if args.output:
        print(json.dumps(result, indent=2))
        return
    if result["applied"]:
        print(f"rolloutplan/{result['applied']['name']} {result['applied']['action']}")
    print("\n".join(preview_lines(result["preview"])))


def preview_lines(preview: dict[str, Any]) -> list[str]:
    window = preview["window"]
    when = "now" if window["open"] else f"when its window opens at {window.get('until', 'never')}"
    lines = [f"{preview['size']} requests in {len(preview['groups'])} groups, starting {when}:"]
    step = 0
    for group in preview["groups"]:
        lines.append(f"group {group['name']} ({len(group['requests'])} requests, at most {group['limit']} at once):")
        for request in group["requests"]:
            step += 1
            lines.append(f"  {step:>4}. {request['namespace']}/{request['name']}")
    for refused in preview["refused"]:
        lines.append(
            f"refused: {refused['namespace']}/{refused['name']} (group {refused['group']}) would not validate: "
            f"{refused['field']}: {refused['reason']}"
        )
    if preview["not_selected"]:
        lines.append(f"not selected: {preview['not_selected']} requests (on another version, or in no group)")
    return lines


def cmd_status(args: argparse.Namespace, ktx: Any) -> None:
    from cli.main import _check, _client

    with _client(ktx.home) as client:
        plan = _check(client.get(f"/rollouts/{args.name}"))
    if args.output:
        print(json.dumps({k: v for k, v in plan.items() if k != "_ktx"}, indent=2))
        return
    print("\n".join(status_lines(plan)))


def status_lines(plan: dict[str, Any]) -> list[str]:
    status = plan.get("status") or {}
    spec = plan.get("spec") or {}
    if not status:
        return [f"rolloutplan/{plan['metadata']['name']}: starting"]
    window = status.get("window") or {}
    if window.get("until"):
        window_text = f"open until {window['until']}" if window.get("open") else f"opens at {window['until']}"
    else:
        window_text = "always open" if window.get("open") else "no window ahead"
    eta = status.get("etaSeconds")
    eta_text = f"{format_duration(round(eta))} (about {status.get('estimatedCompletion')})" if eta is not None else "-"
    lines = [
        f"Name:      {plan['metadata']['name']}",
        f"Promise:   {(spec.get('promiseRef') or {}).get('name')} {status.get('fromVersion')} -> "
        f"{status.get('toVersion')}",
        f"Phase:     {status.get('phase')}",
        f"Window:    {window_text}",
        f"ETA:       {eta_text}",
        f"Failures:  {status.get('failures', 0)} (halts at {status.get('failureThreshold')})",
        "Groups:",
    ]
    for group in status.get("groups") or []:
        counts = ", ".join(f"{state} {n}" for state, n in group["counts"].items()) or "empty"
        lines.append(f"  {group['name']}: {group['total']} requests, at most {group['limit']} at once: {counts}")
    for failure in status.get("failed") or []:
        if failure.get("outcome") == "TimedOut":
            lines.append(
                f"TimedOut: {failure['namespace']}/{failure['name']} on {failure['version']}: {failure['message']}"
            )
            continue
        where = f"pipeline {failure.get('failing_pipeline')}" if failure.get("failing_pipeline") else "its run"
        lines.append(
            f"Failed: {failure['namespace']}/{failure['name']} on {failure['version']} in {where}: {failure['message']}"
        )
        lines += [f"  | {line}" for line in (failure.get("log_tail") or "").splitlines()[-LOG_LINES:]]
    for refused in status.get("refused") or []:
        lines.append(f"Refused: {refused['namespace']}/{refused['name']}: {refused['field']}: {refused['reason']}")
    return lines


def cmd_control(args: argparse.Namespace, ktx: Any) -> None:
    from cli.main import _check, _client

    with _client(ktx.home) as client:
        result = _check(client.post(f"/rollouts/{args.name}/{args.verb}"))
    print(f"rolloutplan/{result['name']} {args.verb}: {result['phase']}")
