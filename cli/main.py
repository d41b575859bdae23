"""`ktx`: apply, get, describe, delete and wait on the platform through its HTTP API; `up`/`down` the embedded stack."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from cli import install, kube_credentials, rollout, stack
from cli.author import AuthorError
from cli.author import commands as author_commands
from cli.invocation import Invocation
from domain.durations import parse_duration
from domain.errors import InvalidDocument
from domain.names import GITOPS_AGENTS, LABEL_MAX, NAMESPACE_PATTERN


class CliError(RuntimeError):
    pass


def _client(home: Path) -> httpx.Client:
    # From the environment only: a token on the command line would show in `ps` and in shell history.
    token = os.environ.get("KTX_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=stack.api_url(home), headers=headers, timeout=httpx.Timeout(30, read=None))


def _check(response: httpx.Response) -> Any:
    if response.status_code < 400:
        return response.json()
    try:
        body = response.json()
    except ValueError:
        raise CliError(f"error: {response.status_code} {response.text}") from None
    if response.status_code == 401:
        raise CliError(
            f"Error from server (401): {body.get('message')}; set KTX_TOKEN to a token listed in the API's "
            "KTX_API_TOKENS_FILE (ktx token create)"
        )
    if "errors" in body:
        lines = [f"Error from server ({response.status_code}): {body['message']}"]
        lines += [f"  - {e['field']}: {e['reason']}" for e in body.get("errors", [])]
        raise CliError("\n".join(lines))
    raise CliError(f"Error from server ({response.status_code}): {body.get('detail') or body.get('message')}")


def _read_files(paths: list[str]) -> list[str]:
    texts: list[str] = []
    for path in paths:
        if path == "-":
            texts.append(sys.stdin.read())
            continue
        target = Path(path)
        files = (
            sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
            if target.is_dir()
            else [target]
        )
        if not files or not all(f.exists() for f in files):
            raise CliError(f"error: the path {path!r} does not exist or holds no YAML/JSON files")
        texts += [f.read_text() for f in files]
    return texts


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int(
        (datetime.now(timezone.utc) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c.get("type") == type_), {})


def _row(obj: dict[str, Any]) -> dict[str, str]:
    kind, meta, status, spec = obj.get("kind"), obj.get("metadata", {}), obj.get("status") or {}, obj.get("spec") or {}
    if kind == "Promise":
        return {
            "NAME": meta["name"],
            "STATUS": status.get("status", "Unavailable"),
            "KIND": status.get("kind", ""),
            "API VERSION": status.get("apiVersion", ""),
            "VERSION": status.get("version", ""),
            "MESSAGE": status.get("message", ""),
            "AGE": _age(meta.get("creationTimestamp")),
        }
    if kind == "PromiseRelease":  # Kratix's printer columns: Status, Version
        return {
            "NAME": meta["name"],
            "STATUS": status.get("status", ""),
            "VERSION": spec.get("version", ""),
            "MESSAGE": _condition(status, "Installed").get("message", ""),
            "AGE": _age(meta.get("creationTimestamp")),
        }
    if kind == "Destination":
        ref, extra = spec.get("stateStoreRef", {}), obj.get("_ktx") or {}
        ready = _condition(status, "Ready")
        return {
            "NAME": meta["name"],
            "STATESTOREKIND": ref.get("kind", ""),
            "STATESTORENAME": ref.get("name", ""),
            "PATH": spec.get("path", ""),
            "MODE": (spec.get("filepath") or {}).get("mode", "nestedByMetadata"),
            "READY": ready.get("status", "Unknown"),
            "OBJECTS": str(extra.get("objects", "")),
            "LABELS": ",".join(f"{k}={v}" for k, v in meta.get("labels", {}).items()),
            "REASON": "" if ready.get("status") == "True" else ready.get("reason", ""),
        }
    if kind == "Secret":
        return {
            "NAMESPACE": meta.get("namespace", ""),
            "NAME": meta["name"],
            "TYPE": obj.get("type", ""),
            "DATA": str(len(obj.get("keys", []))),
        }
    if kind == "HealthRecord":
        data = obj.get("data") or {}
        return {
            "NAMESPACE": meta.get("namespace", ""),
            "NAME": meta["name"],
            "STATUS": data.get("state", ""),
            "AGE": _age(str(data.get("lastRun") or "") or None),
        }
    if kind == "DryRun":
        completed = _condition(status, "Completed")
        return {
            "NAMESPACE": meta.get("namespace", ""),
            "NAME": meta["name"],
            "PROMISE": (spec.get("promiseRef") or {}).get("name", ""),
            "REQUEST": (spec.get("resourceRequestRef") or {}).get("name", ""),
            "COMPLETED": completed.get("status", "Unknown"),
            "REASON": completed.get("reason", status.get("message", "")),
            "AGE": _age(meta.get("creationTimestamp")),
        }
    if kind == "PromiseRevision":  # Kratix's printer columns: Promise, Version, Latest
        return {
            "NAME": meta["name"],
            "PROMISE": (spec.get("promiseRef") or {}).get("name", ""),
            "VERSION": spec.get("version", ""),
            "LATEST": "true" if status.get("latest") else "",  # as kubectl shows Kratix's: omitted when false
        }
    if kind == "ResourceBinding":  # Kratix's printer columns: Resource, Promise, Desired, Applied
        return {
            "NAMESPACE": meta.get("namespace", ""),
            "NAME": meta["name"],
            "RESOURCE": (spec.get("resourceRef") or {}).get("name", ""),
            "PROMISE": (spec.get("promiseRef") or {}).get("name", ""),
            "DESIRED": spec.get("version", ""),
            "APPLIED": status.get("lastAppliedVersion", ""),
        }
    if kind in ("GitStateStore", "BucketStateStore"):
        return {
            "NAME": meta["name"],
            "URL": spec.get("url") or spec.get("endpoint", ""),
            "BRANCH": spec.get("branch") or spec.get("bucketName", ""),
            "READY": status.get("status", "Unknown"),
            "MESSAGE": _condition(status, "Ready").get("message", ""),
        }
    return {
        "NAMESPACE": meta.get("namespace", ""),
        "NAME": meta["name"],
        "STATUS": _condition(status, "Reconciled").get("message", "Pending"),
        "MESSAGE": status.get("message", ""),
        "AGE": _age(meta.get("creationTimestamp")),
    }


def _table(rows: list[dict[str, str]], show_namespace: bool) -> str:
    if not rows:
        return "No resources found."
    if not show_namespace:
        rows = [{k: v for k, v in r.items() if k != "NAMESPACE"} for r in rows]
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["   ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["   ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "_ktx"}


def _print(data: Any, output: str | None) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False), end="")


def describe(obj: dict[str, Any]) -> str:
    meta, status, extra = obj.get("metadata", {}), obj.get("status") or {}, obj.get("_ktx", {})
    lines = [f"Name:         {meta.get('name')}"]
    if meta.get("namespace"):
        lines.append(f"Namespace:    {meta['namespace']}")
    lines += [
        f"Kind:         {obj.get('kind')}",
        f"API Version:  {obj.get('apiVersion')}",
        f"Labels:       {', '.join(f'{k}={v}' for k, v in meta.get('labels', {}).items()) or '<none>'}",
        f"Generation:   {meta.get('generation', '')}",
        f"Workflow:     {extra.get('workflowId', '')}",
        "Spec:",
    ]
    lines += ["  " + line for line in yaml.safe_dump(obj.get("spec") or {}, sort_keys=False).splitlines()]
    lines += [
        "Status:",
        f"  Message:             {status.get('message', '')}",
        f"  Observed Generation: {status.get('observedGeneration', '')}",
        "  Conditions:",
        "    TYPE                         STATUS    REASON                          MESSAGE",
    ]
    for c in status.get("conditions", []):
        lines.append(
            f"    {c.get('type', ''):<28} {c.get('status', ''):<9} {c.get('reason', ''):<31} {c.get('message', '')}"
        )
    free = {
        k: v for k, v in status.items() if k not in ("conditions", "message", "observedGeneration", "kratix", "actions")
    }
    if free:
        lines.append("  Fields:")
        lines += ["    " + line for line in yaml.safe_dump(free, sort_keys=False).splitlines()]
    binding = extra.get("binding")
    if binding:
        bound, applied = binding.get("spec") or {}, binding.get("status") or {}
        upgrade = _condition(applied, "UpgradeSucceeded")
        lines += [
            f"Binding:      {binding['metadata']['name']}",
            f"  Version:        {bound.get('version', '')}",
            f"  Last applied:   {applied.get('lastAppliedVersion') or '<none>'}",
            f"  Failed version: {applied.get('failedVersion') or '<none>'}",
        ]
        if upgrade:
            lines.append(f"  Upgrade:        {upgrade.get('reason')}: {upgrade.get('message')}")
    pipelines = (status.get("kratix") or {}).get("workflows", {}).get("pipelines", [])
    if pipelines:
        lines.append("Pipelines:")
        lines += [f"  {p['name']:<24} {p.get('phase', ''):<10} {p.get('message', '')}".rstrip() for p in pipelines]
    for run in extra.get("runs", []):
        outcome = "Succeeded" if run["succeeded"] else f"Failed: {run['message']}"
        lines.append(
            f"Run {run['action']}/{run['pipeline']} (generation {run['generation']}, {run['finished_at']}): {outcome}"
        )
        lines += [f"  note: {note}" for note in run.get("notes", [])]
        for c in run.get("containers", []):
            lines.append(
                f"  container {c['name']} ({c['image']}): exit code {c['exit_code']}, {c['duration_seconds']}s"
            )
            lines += ["    | " + line for line in (c.get("log_tail") or "").rstrip().splitlines()[-10:]]
    timers = {k: v for k, v in (extra.get("schedule") or {}).items() if v}
    if timers:
        lines.append("Timers:")
        lines += [
            f"  {label:<16} {timers[key]}"
            for key, label in (
                ("nextReconcileAt", "Next reconcile:"),
                ("retryAt", "Retry at:"),
                ("deliveryRetryAt", "Delivery retry:"),
            )
            if key in timers
        ]
    health = status.get("healthStatus")
    if health:
        lines.append(f"Health:       {health.get('state')}")
        lines += [
            f"  {r['source']['namespace']}/{r['source']['name']}: {r['state']}" for r in health.get("healthRecords", [])
        ]
    if status.get("actions"):
        lines.append("Actions:")
        for a in status["actions"]:
            detail = " ".join(
                x
                for x in (
                    a.get("externalId", ""),
                    a.get("link", ""),
                    f"incident {a['incident']}" if a.get("incident") else "",
                    a.get("message", ""),
                )
                if x
            )
            lines.append(f"  {a['pipeline']}/{a['name']:<20} {a['provider']:<10} {a['state']:<12} {detail}".rstrip())
    if extra.get("placements"):
        lines.append("Placements:")
        for p in extra["placements"]:
            where = p["path"] + (f" [{p['key']}]" if p.get("key") else "")
            flags = "".join(
                [" MISPLACED" if p.get("misplaced") else "", f" ERROR: {p['error']}" if p.get("error") else ""]
            )
            lines.append(
                f"  {p['pipeline'] or 'static'}/{p['directory']} -> Destination {p['destination']} "
                f"({p['store_kind']}/{p['store_name']}, {p.get('mode', 'nestedByMetadata')}) {where} "
                f"@ {(p['version_id'] or '-')[:12]}{flags}"
            )
    for g in extra.get("pending", []):
        lines.append(
            f"  {g['pipeline'] or 'static'}/{g['directory']} waiting for a Destination matching {g['selector']}"
        )
    preview = extra.get("dryRun") or {}
    if preview.get("files"):
        lines.append("Changes:")
        lines += [f"  {f['change']:<9} {f['pipeline']}/{f['path']}" for f in preview["files"]]
    if preview.get("wouldRun"):
        lines.append("Would run (skipped in a dry run):")
        lines += [f"  {w['pipeline']}/{w['name']} ({w['provider']})" for w in preview["wouldRun"]]
    if extra.get("events"):
        lines += ["Events:", "  TYPE     REASON                       AGE     COUNT  MESSAGE"]
        for e in extra["events"]:
            lines.append(f"  {e['type']:<8} {e['reason']:<28} {_age(e['last_seen']):<7} {e['count']:<6} {e['message']}")
    return "\n".join(lines)


def tree_lines(node: dict[str, Any], prefix: str = "") -> list[str]:
    where = f"{node['namespace']}/" if node.get("namespace") else ""
    lines = [f"{prefix}{node['kind']}/{where}{node['name']} ({node['promise']}): {node['status']}"]
    for index, child in enumerate(node["children"]):
        last = index == len(node["children"]) - 1
        lines += [("    " if prefix else "") + line for line in tree_lines(child, "└── " if last else "├── ")]
    return lines


def cmd_up(args: argparse.Namespace, ktx: Invocation) -> None:
    settings = ktx.settings
    if args.api_port:
        settings = settings.model_copy(update={"api_port": args.api_port})
    if args.kube_api_port:
        settings = settings.model_copy(update={"kube_api_port": args.kube_api_port})
    state = stack.up(settings, args.temporal_port, args.ui_port, args.worker_health_port)
    verb = "already running" if state["reused"] else "started"
    print(
        f"ktx stack {verb}\n  API:          {state['api_url']}\n  Temporal:     {state['temporal_address']}\n"
        f"  Temporal UI:  {state['ui_url']}\n  Worker health: {state.get('worker_health_url', '')}\n"
        f"  Kubernetes API: {state.get('kube_api_url', '')} (ktx kubeconfig > kubeconfig)\n"
        f'  State store:  {state["state_store"]} (Destination "local")'
    )


def cmd_kubeconfig(args: argparse.Namespace, ktx: Invocation) -> None:
    """A kubeconfig for the Kubernetes API: the stack's HTTPS URL and CA unless given, the admin token unless given."""
    if len(args.namespace) > LABEL_MAX or not NAMESPACE_PATTERN.match(args.namespace):
        raise CliError(f"error: --namespace {args.namespace!r} is not a namespace name (a DNS-1123 label)")
    server = args.server or stack.kube_api(ktx.home)["kube_api_url"]
    ca_pem = Path(args.certificate_authority or stack.kube_api(ktx.home)["kube_api_ca"]).read_bytes()
    token = args.token or kube_credentials.admin_token(ktx.home)
    config = kube_credentials.kubeconfig(server, ca_pem, token, args.context, args.namespace)
    print(yaml.safe_dump(config, sort_keys=False), end="")


def cmd_down(args: argparse.Namespace, ktx: Invocation) -> None:
    print("ktx stack stopped" if stack.down(ktx.settings) else "ktx stack is not running")


def cmd_apply(args: argparse.Namespace, ktx: Invocation) -> None:
    objects: list[dict[str, Any]] = []
    dry_run = {"dryRun": "All"} if args.dry_run == "server" else {}
    with _client(ktx.home) as client:
        for text in _read_files(args.filename):
            result = _check(
                client.post("/apply", content=text, params=dry_run, headers={"content-type": "application/yaml"})
            )
            if dry_run:
                # kubectl's --dry-run=server: what would be stored, as admitted; nothing was.
                for item, admitted in zip(result["applied"], result["objects"]):
                    if not args.output:
                        print(f"{item['kind'].lower()}/{item['name']} {item['action']} (server dry run)")
                    objects.append(admitted)
                continue
            for item in result["applied"]:
                for warning in item.get("warnings") or []:
                    print(warning, file=sys.stderr)
                if not args.output:
                    print(f"{item['kind'].lower()}/{item['name']} {item['action']}")
                    continue
                # As kubectl apply -o: each object as the platform now holds it (a new request has no status yet).
                params = {"namespace": item["namespace"]} if item.get("namespace") else {}
                objects.append(_public(_check(client.get(f"/objects/{item['kind']}/{item['name']}", params=params))))
    if args.output:
        _print(objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}, args.output)


def _with_components(diffs: list[dict[str, Any]], parent: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Each request's diff headed by who it is, a compound request's components after it, recursively, each named
    under the request that asked for it (`GoldenPath/default/shop > Database/default/shop-db`)."""
    found = []
    for item in diffs:
        request = item["request"]
        who = f"{parent}{request['kind']}/{request['namespace']}/{request['name']}"
        found.append((who, item))
        found += _with_components(item.get("components") or [], f"{who} > ")
    return found


def diff_text(diffs: list[dict[str, Any]]) -> str:
    """Each changed file as `diff -u` prints it, headed by the request, pipeline and the Destinations the live request
    holds that output on; then the off-platform actions that would run. A compound request's components follow it."""
    lines: list[str] = []
    for who, item in _with_components(diffs):
        for f in item["files"]:
            where = ", ".join(f["destinations"]) or "no Destination yet"
            lines.append(f"# {who}: pipeline {f['pipeline']}, {f['change']} {f['path']} (Destination {where})")
            lines.append(f"diff -u -N live/{f['pipeline']}/{f['path']} dry-run/{f['pipeline']}/{f['path']}")
            lines.append(f["diff"].rstrip("\n") if f["diff"] else "(diff over the size shown)")
        for w in item["wouldRun"]:
            lines.append(f"# {who}: pipeline {w['pipeline']} would run action {w['name']} ({w['provider']})")
    return "\n".join(lines)


def cmd_diff(args: argparse.Namespace, ktx: Invocation) -> None:
    """kubectl diff's contract: exit 0 when nothing would change, 1 when something would, 2 on any error."""
    try:
        diffs: list[dict[str, Any]] = []
        with _client(ktx.home) as client:
            for text in _read_files(args.filename):
                params = {"timeout": parse_duration(args.timeout), **({"limit": args.limit} if args.limit else {})}
                headers = {"content-type": "application/yaml"}
                diffs += _check(client.post("/diff", content=text, params=params, headers=headers))["diffs"]
        failed = [(who, d) for who, d in _with_components(diffs) if d.get("failed")]
        if failed:
            who, item = failed[0]
            raise CliError(f"error: the dry run of {who} failed: {item['failed']['message']}")
    except Exception as exc:  # noqa: BLE001 - an error is exit code 2, as kubectl diff has it
        print(_failure(exc), file=sys.stderr)
        sys.exit(2)
    text = diff_text(diffs)
    if text:
        print(text)
    # Actions that would run are listed, not counted: only a change to what is committed is a difference.
    sys.exit(1 if any(d["files"] for _, d in _with_components(diffs)) else 0)


def cmd_install(args: argparse.Namespace, ktx: Invocation) -> None:
    """A URL: a PromiseRelease the platform fetches and keeps installed. A file: the Promise it holds, applied."""
    if install.is_url(args.source):
        text = json.dumps(install.release_document(args.source, args.name, args.version, args.secret))
        what = "promiserelease"
    else:
        if args.name or args.secret:
            raise CliError("error: --name and --secret are for a URL; a file is applied as the Promise it holds")
        text = install.promise_file(args.source, args.version).decode()
        what = "promise"
    with _client(ktx.home) as client:
        result = _check(client.post("/apply", content=text, headers={"content-type": "application/yaml"}))
    for item in result["applied"]:
        for warning in item.get("warnings") or []:
            print(warning, file=sys.stderr)
        print(f"{what}/{item['name']} {item['action']}")


def cmd_get(args: argparse.Namespace, ktx: Invocation) -> None:
    with _client(ktx.home) as client:
        if args.tree:
            if not args.name:
                raise CliError("error: --tree needs a NAME")
            print(
                "\n".join(
                    tree_lines(
                        _check(
                            client.get(f"/objects/{args.kind}/{args.name}/tree", params={"namespace": args.namespace})
                        )
                    )
                )
            )
            return
        if args.name:
            data = _check(client.get(f"/objects/{args.kind}/{args.name}", params={"namespace": args.namespace}))
            items = [data]
        else:
            params = {} if args.all_namespaces else {"namespace": args.namespace}
            items = _check(client.get(f"/objects/{args.kind}", params=params))
    if args.output:
        _print(
            _public(items[0])
            if args.name
            else {"apiVersion": "v1", "kind": "List", "items": [_public(i) for i in items]},
            args.output,
        )
        return
    print(_table([_row(i) for i in items], show_namespace=args.all_namespaces))


def cmd_create_secret(args: argparse.Namespace, ktx: Invocation) -> None:
    """`ktx create secret generic NAME --from-literal=key=value --from-file=key=path`, as kubectl does it."""
    data: dict[str, str] = {}
    for item in args.from_literal or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"error: --from-literal {item!r} is not key=value")
        data[key] = base64.b64encode(value.encode()).decode()
    for item in args.from_file or []:
        key, sep, path = item.partition("=")
        source = Path(path if sep else key)
        data[key if sep else source.name] = base64.b64encode(source.read_bytes()).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": args.name, "namespace": args.namespace},
        "data": data,
    }
    with _client(ktx.home) as client:
        result = _check(
            client.post("/apply", content=json.dumps(document), headers={"content-type": "application/yaml"})
        )
    for item in result["applied"]:
        print(f"secret/{item['name']} {item['action']}")


def cmd_token_create(args: argparse.Namespace, ktx: Invocation) -> None:
    """A fresh token, shown once, and the entry for the API's tokens file, which holds its SHA-256 only."""
    from domain.access import TokenEntry, problems, token_digest

    token = secrets.token_urlsafe(32)
    try:
        entry = TokenEntry(name=args.name, role=args.role, namespaces=args.namespace or [], sha256=token_digest(token))
    except ValidationError as exc:
        raise CliError(f"error: {problems(exc)}") from None
    print(f'Token "{entry.name}" (shown once; its holder sets KTX_TOKEN to it):\n{token}\n')
    print("Entry to add to the API's tokens file (KTX_API_TOKENS_FILE), then restart the API:")
    print(yaml.safe_dump([entry.model_dump(exclude_defaults=True)], sort_keys=False), end="")


def cmd_label(args: argparse.Namespace, ktx: Invocation) -> None:
    change: dict[str, Any] = {"set": {}, "remove": []}
    for item in args.labels:
        if item.endswith("-") and "=" not in item:
            change["remove"].append(item[:-1])
        elif "=" in item:
            key, value = item.split("=", 1)
            change["set"][key] = value
        else:
            raise CliError(f"error: {item!r} is neither key=value nor key-")
    with _client(ktx.home) as client:
        _check(
            client.post(f"/objects/{args.kind}/{args.name}/labels", params={"namespace": args.namespace}, json=change)
        )
    print(f"{args.kind}/{args.name} labeled")


def cmd_reconcile(args: argparse.Namespace, ktx: Invocation) -> None:
    with _client(ktx.home) as client:
        _check(client.post(f"/objects/{args.kind}/{args.name}/reconcile", params={"namespace": args.namespace}))
    print(f"{args.kind}/{args.name} reconciliation requested")


def cmd_logs(args: argparse.Namespace, ktx: Invocation) -> None:
    params = {
        "namespace": args.namespace,
        **({"pipeline": args.pipeline} if args.pipeline else {}),
        **({"container": args.container} if args.container else {}),
    }
    with _client(ktx.home) as client:
        entries = _check(client.get(f"/objects/{args.kind}/{args.name}/logs", params=params))
    for entry in entries:
        if len(entries) > 1:
            state = "running" if entry.get("running") else f"exit code {entry['exitCode']}"
            print(f"==> {entry['action']}/{entry['pipeline']}/{entry['container']} ({state}) <==")
        if entry.get("truncated"):
            print(f"[ktx: the last {len(entry['log'].encode())} of {entry['bytes']} bytes]", file=sys.stderr)
        print(entry["log"], end="" if entry["log"].endswith("\n") or not entry["log"] else "\n")


def cmd_describe(args: argparse.Namespace, ktx: Invocation) -> None:
    with _client(ktx.home) as client:
        print(describe(_check(client.get(f"/objects/{args.kind}/{args.name}", params={"namespace": args.namespace}))))


def cmd_delete(args: argparse.Namespace, ktx: Invocation) -> None:
    targets: list[tuple[str, str, str]] = []
    if args.filename:
        for text in _read_files(args.filename):
            for doc in yaml.safe_load_all(text):
                if doc:
                    targets.append(
                        (doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace") or args.namespace)
                    )
    elif args.kind and args.name:
        targets.append((args.kind, args.name, args.namespace))
    else:
        raise CliError("error: give KIND NAME or -f FILE")
    timeout = parse_duration(args.timeout)
    with _client(ktx.home) as client:
        for kind, name, namespace in reversed(targets):  # dependants (resources) go before what they need
            params = {"namespace": namespace, "force": str(args.force).lower(), "wait": timeout if args.wait else 0}
            result = _check(client.delete(f"/objects/{kind}/{name}", params=params))
            print(f"{kind.lower()}/{name} {'deleted' if result['deleted'] else 'deletion still in progress'}")


def cmd_wait(args: argparse.Namespace, ktx: Invocation) -> None:
    prefix = "condition="
    if not args.for_.startswith(prefix):
        raise CliError("error: --for must be condition=NAME")
    params = {
        "namespace": args.namespace,
        "condition": args.for_[len(prefix) :],
        "timeout": parse_duration(args.timeout),
    }
    with _client(ktx.home) as client:
        _check(client.get(f"/objects/{args.kind}/{args.name}/wait", params=params))
    print(f"{args.kind}/{args.name} condition met")


def cmd_destination_manifests(args: argparse.Namespace, ktx: Invocation) -> None:
    with _client(ktx.home) as client:
        documents = _check(client.get(f"/objects/destination/{args.name}/manifests", params={"gitops": args.gitops}))
    print(yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True), end="")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ktx", description="A Kratix-compatible platform orchestrator on Temporal")
    sub = root.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the embedded stack in the background")
    up.add_argument("--temporal-port", type=int, default=int(os.environ.get("KTX_TEMPORAL_PORT", 7233)))
    up.add_argument("--ui-port", type=int, default=int(os.environ.get("KTX_UI_PORT", 8233)))
    up.add_argument("--api-port", type=int, default=None)
    health = os.environ.get("KTX_WORKER_HEALTH_PORT")
    up.add_argument(
        "--worker-health-port",
        type=int,
        default=int(health) if health else None,
        help="the worker's /healthz, /readyz and /metrics (default: a free port, kept in stack.json)",
    )
    kube_api = os.environ.get("KTX_KUBE_API_PORT")
    up.add_argument(
        "--kube-api-port",
        type=int,
        default=int(kube_api) if kube_api else None,
        help="the Kubernetes API over HTTPS, for kubectl (default: a free port, kept in stack.json)",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the embedded stack").set_defaults(func=cmd_down)
    kubeconfig = sub.add_parser(
        "kubeconfig",
        help="print a kubeconfig for kubectl and Kubernetes clients (KUBECONFIG=FILE kubectl get promises)",
    )
    kubeconfig.add_argument("--token", help="the bearer token to use (default: the embedded stack's admin token)")
    kubeconfig.add_argument("--context", default="ktx", help="the name of the cluster, user and context")
    kubeconfig.add_argument("-n", "--namespace", default="default", help="the context's namespace")
    kubeconfig.add_argument("--server", help="the API's HTTPS URL (default: the embedded stack's)")
    kubeconfig.add_argument(
        "--certificate-authority", help="the CA file the API's certificate is verified with (default: the stack's)"
    )
    kubeconfig.set_defaults(func=cmd_kubeconfig)

    def namespaced(p: argparse.ArgumentParser) -> None:
        p.add_argument("-n", "--namespace", default="default")

    apply = sub.add_parser("apply", help="apply documents from files, directories or stdin")
    apply.add_argument("-f", "--filename", action="append", required=True)
    apply.add_argument(
        "-o", "--output", choices=["json", "yaml"], help="print the applied objects instead of a summary"
    )
    apply.add_argument(
        "--dry-run",
        choices=["none", "server"],
        default="none",
        help="server: validate, default and admit each document and show it as it would be stored, storing nothing",
    )
    apply.set_defaults(func=cmd_apply)
    diff = sub.add_parser(
        "diff",
        help="what applying requests would change in the state stores, from a dry run of their pipelines "
        "(exit 0: no changes, 1: changes, 2: error)",
    )
    diff.add_argument("-f", "--filename", action="append", required=True)
    diff.add_argument("--timeout", default="300s", help="how long each request's dry run may take")
    diff.add_argument(
        "--limit", type=int, help="for a Promise: diff this many of its requests (by namespace and name), not all"
    )
    diff.set_defaults(func=cmd_diff)
    installer = sub.add_parser(
        "install",
        help="install a Promise: from a URL as a PromiseRelease (fetched, kept installed), or from a file",
    )
    installer.add_argument("source", help="an http(s) URL of a Promise document, or a local Promise file")
    installer.add_argument("--name", help="the PromiseRelease's name (default: from the URL's path)")
    installer.add_argument("--version", default="", help="the Promise's kratix.io/promise-version (default: its own)")
    installer.add_argument(
        "--secret", help="NAMESPACE/NAME of a Secret whose key authorizationHeader is sent as the Authorization header"
    )
    installer.set_defaults(func=cmd_install)
    get = sub.add_parser("get", help="list objects of a kind, or show one")
    get.add_argument("kind")
    get.add_argument("name", nargs="?")
    namespaced(get)
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=["json", "yaml"])
    get.add_argument("--tree", action="store_true", help="show the component resources a compound resource requested")
    get.set_defaults(func=cmd_get)

    def on_object(command: str, help: str, func) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        """A command acting on one named object: KIND NAME [-n NAMESPACE]."""
        p = sub.add_parser(command, help=help)
        p.add_argument("kind")
        p.add_argument("name")
        namespaced(p)
        p.set_defaults(func=func)
        return p

    create = sub.add_parser("create", help="create objects from the command line").add_subparsers(
        dest="what", required=True
    )
    secret = create.add_parser("secret", help="create a Secret for state-store credentials").add_subparsers(
        dest="type", required=True
    )
    generic = secret.add_parser("generic", help="a Secret from literal values and files")
    generic.add_argument("name")
    namespaced(generic)
    generic.add_argument("--from-literal", action="append", help="key=value")
    generic.add_argument("--from-file", action="append", help="[key=]path")
    generic.set_defaults(func=cmd_create_secret)
    on_object("describe", "spec, conditions, pipeline runs, placements and events of an object", cmd_describe)
    delete = sub.add_parser("delete", help="delete by name or by file")
    delete.add_argument("kind", nargs="?")
    delete.add_argument("name", nargs="?")
    delete.add_argument("-f", "--filename", action="append")
    namespaced(delete)
    delete.add_argument("--force", action="store_true", help="skip the delete pipeline and remove records and files")
    delete.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True)
    delete.add_argument("--timeout", default="300s")
    delete.set_defaults(func=cmd_delete)
    label = on_object("label", "set (key=value) or remove (key-) labels, e.g. kratix.io/paused=true", cmd_label)
    label.add_argument("labels", nargs="+")
    on_object(
        "reconcile",
        "run the configure workflow again from its first pipeline; for a Destination, rewrite everything placed on it",
        cmd_reconcile,
    )
    logs = on_object("logs", "container logs of an object's latest pipeline runs", cmd_logs)
    logs.add_argument("--pipeline")
    logs.add_argument("--container")
    wait = on_object("wait", "wait for a condition", cmd_wait)
    wait.add_argument("--for", dest="for_", required=True)
    wait.add_argument("--timeout", default="30s")
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="what", required=True)
    create_token = token.add_parser("create", help="a new API token and its entry for the API's tokens file")
    create_token.add_argument("name", help="who holds it, e.g. team-a-ci; shown in the API's refusals")
    create_token.add_argument("--role", choices=["platform", "team"], required=True)
    create_token.add_argument(
        "-n", "--namespace", action="append", help="a namespace a team token may act in (repeat for several)"
    )
    create_token.set_defaults(func=cmd_token_create)
    destination = sub.add_parser(
        "destination", aliases=["dest"], help="tools for a Destination's cluster"
    ).add_subparsers(dest="what", required=True)
    manifests = destination.add_parser(
        "manifests",
        help="the Flux or ArgoCD objects that make a Destination's cluster pull "
        "its directory from the state store, for kubectl apply -f -",
    )
    manifests.add_argument("name")
    manifests.add_argument("--gitops", choices=GITOPS_AGENTS, default="flux")
    manifests.set_defaults(func=cmd_destination_manifests)
    # The Promise author's commands, which need no stack (cli/author/).
    author_commands.register(sub)
    rollout.register(sub)
    return root


def _failure(exc: BaseException) -> str:
    """One or two lines, kubectl style, for whatever stopped a command."""
    if isinstance(
        exc, (CliError, stack.StackError, kube_credentials.CredentialsError, AuthorError, install.InstallError)
    ):
        return str(exc)
    if isinstance(exc, InvalidDocument):
        return f"error: {exc}"
    if isinstance(exc, httpx.ConnectError):
        return "error: cannot reach the ktx API; is the stack up? (ktx up)"
    if isinstance(exc, httpx.TimeoutException):
        return f"error: the ktx API did not answer in time ({type(exc).__name__})"
    if isinstance(exc, ValidationError):
        from domain.access import problems

        return f"error: {problems(exc)}"
    if isinstance(exc, yaml.YAMLError):
        return f"error: not valid YAML: {' '.join(str(exc).split())}"
    if isinstance(exc, OSError):
        return f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    return f"error: {type(exc).__name__}: {exc} (KTX_DEBUG=1 shows where)"


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args, Invocation())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a CLI failure is a message, not a traceback
        if os.environ.get("KTX_DEBUG"):
            raise
        print(_failure(exc), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
