"""Watches, waits and optimistic concurrency with clients nobody here wrote: real kubectl (`get --watch`, `wait`,
`delete --wait`, `replace`) and the `kubernetes` Python client's watch.Watch, against the API served by uvicorn on a
free port over a real Temporal dev server and worker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from domain.labels import PAUSED
from service.platform import Platform
from tests.e2e import test_kubectl as quick_start
from tests.e2e.test_kubectl import KUBECTL, Kubectl, write
from tests.kratix_documents import GROUP, git_store_and_destinations, promise, resource
from tests.waiting import eventually

KIND, PLURAL = "Gadget", "gadgets"
kubectl = quick_start.kubectl  # the fixture: the API on a free port and a kubeconfig for it


class Streamed:
    """A long-running kubectl (`get --watch`, `wait`) whose output is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode().rstrip("\n"))

    async def stop(self) -> str:
        if self.process.returncode is None:
            self.process.terminate()
        await asyncio.wait_for(self.process.wait(), 30)
        await asyncio.wait_for(self.reader, 30)
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode()


async def start(kubectl: Kubectl, *args: str) -> Streamed:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        f"--cache-dir={kubectl.cache / 'kube-cache'}",
        *args,
        env=kubectl.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Streamed(process)


async def gadgets_promise(kubectl: Kubectl, tmp_path: Path, git_remote: Path) -> None:
    """A Promise whose requests reconcile without a pipeline: what is watched is the platform, not podman."""
    docs = [*git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}), promise("gadgets", KIND)]
    await kubectl("apply", "-f", write(tmp_path / "platform.yaml", *docs))
    await kubectl("wait", "--for=condition=Available", "promise/gadgets", "--timeout=90s")


def events(lines: list[str], name: str) -> list[str]:
    """`kubectl get --watch --output-watch-events` rows: EVENT NAME ..."""
    return [line.split()[0] for line in lines if len(line.split()) > 1 and line.split()[1] == name]


async def test_kubectl_get_watch_sees_a_request_added_modified_and_deleted(
    kubectl: Kubectl, tmp_path: Path, git_remote: Path
) -> None:
    await gadgets_promise(kubectl, tmp_path, git_remote)
    watching = await start(kubectl, "get", PLURAL, "--watch", "--output-watch-events", "-L", "team")
    try:
        request = write(tmp_path / "one.yaml", resource(KIND, "one", {"size": 1}))
        await kubectl("apply", "-f", request)
        await eventually(lambda: events(watching.lines, "one"), lambda e: "ADDED" in e, what="ADDED one")
        await kubectl("wait", "--for=condition=Reconciled", "gadget/one", "--timeout=60s")
        await kubectl("label", "gadget", "one", "team=blue")
        await eventually(
            lambda: [line for line in watching.lines if line.split()[:2] == ["MODIFIED", "one"]],
            lambda rows: any(row.split()[-1] == "blue" for row in rows),
            what="MODIFIED one, labelled",
        )
        _, out, _ = await kubectl("delete", "-f", request, "--wait", "--timeout=60s")
        assert 'gadget.test.ktx.io "one" deleted' in out
        await eventually(lambda: events(watching.lines, "one"), lambda e: "DELETED" in e, what="DELETED one")
        # kubectl delete --wait returned once the delete workflow ended: the object is gone.
        code, _, err = await kubectl("get", "gadget", "one", check=False)
        assert code == 1 and "NotFound" in err
    finally:
        err = await watching.stop()
    seen = events(watching.lines, "one")
    assert seen[0] == "ADDED" and seen[-1] == "DELETED", (watching.lines, err)
    # Each event is a row of the Promise's printer columns, as the list was: one header for the whole watch.
    assert watching.lines[0].split() == ["EVENT", "NAME", "MESSAGE", "STATUS", "TEAM"], watching.lines
    assert sum(line.split()[0] == "EVENT" for line in watching.lines) == 1, watching.lines


async def test_kubectl_wait_for_a_condition_and_for_a_terminating_object_to_go(
    kubectl: Kubectl, platform: Platform, tmp_path: Path, git_remote: Path
) -> None:
    await gadgets_promise(kubectl, tmp_path, git_remote)
    # Waiting before the object is Reconciled: the watch, not a poll, tells kubectl when it is.
    await kubectl("apply", "-f", write(tmp_path / "two.yaml", resource(KIND, "two")))
    _, out, _ = await kubectl("wait", "--for=condition=Reconciled", "gadget/two", "--timeout=60s")
    assert "gadget.test.ktx.io/two condition met" in out
    # Paused, its delete waits: kubectl shows it Terminating (deletionTimestamp) until the delete workflow ends.
    await kubectl("label", "gadget", "two", f"{PAUSED}=true")
    await kubectl("delete", "gadget", "two", "--wait=false")
    _, out, _ = await kubectl("get", "gadget", "two", "-o", "jsonpath={.metadata.deletionTimestamp}")
    assert out.strip().endswith("Z")
    waiting = await start(kubectl, "wait", "--for=delete", "gadget/two", "--timeout=60s")
    # Unpaused through the platform: the Kubernetes PATCH route refuses any change of a deleting object for now.
    await platform.label(KIND, "two", remove=[PAUSED])
    await asyncio.wait_for(waiting.process.wait(), 90)
    err = await waiting.stop()
    assert waiting.process.returncode == 0, (waiting.lines, err)
    code, _, err = await kubectl("get", "gadget", "two", check=False)
    assert code == 1 and "NotFound" in err


async def test_a_stale_resource_version_is_a_conflict_for_kubectl_and_the_python_client(
    kubectl: Kubectl, tmp_path: Path, git_remote: Path
) -> None:
    await gadgets_promise(kubectl, tmp_path, git_remote)
    await kubectl("apply", "-f", write(tmp_path / "three.yaml", resource(KIND, "three", {"size": 1})))
    await kubectl("wait", "--for=condition=Reconciled", "gadget/three", "--timeout=60s")
    _, out, _ = await kubectl("get", "gadget", "three", "-o", "json")
    read: dict[str, Any] = json.loads(out)
    await kubectl("label", "gadget", "three", "changed=yes")  # someone else changes it meanwhile
    read["spec"] = {"size": 2}
    code, _, err = await kubectl("replace", "-f", write(tmp_path / "stale.json", read), check=False)
    assert code == 1
    assert (
        'Error from server (Conflict): error when replacing "' in err
        and 'Operation cannot be fulfilled on gadgets.test.ktx.io "three": the object has been modified; please '
        "apply your changes to the latest version and try again"
        in err
    ), err

    api = kubernetes.client.CustomObjectsApi(client_for(kubectl))
    stale = {**read, "spec": {"size": 3}}
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(api.replace_namespaced_custom_object, GROUP, "v1", "default", PLURAL, "three", stale)
    assert refused.value.status == 409
    assert json.loads(refused.value.body)["reason"] == "Conflict"
    current = await asyncio.to_thread(api.get_namespaced_custom_object, GROUP, "v1", "default", PLURAL, "three")
    current["spec"] = {"size": 4}
    await asyncio.to_thread(api.replace_namespaced_custom_object, GROUP, "v1", "default", PLURAL, "three", current)


def client_for(kubectl: Kubectl) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=kubectl.env["KUBECONFIG"])


async def test_the_python_client_watches_resumes_and_is_told_when_too_old(
    kubectl: Kubectl, platform: Platform, tmp_path: Path, git_remote: Path
) -> None:
    await gadgets_promise(kubectl, tmp_path, git_remote)
    api = kubernetes.client.CustomObjectsApi(client_for(kubectl))
    listed = await asyncio.to_thread(api.list_namespaced_custom_object, GROUP, "v1", "default", PLURAL)
    since = listed["metadata"]["resourceVersion"]
    await kubectl("apply", "-f", write(tmp_path / "four.yaml", resource(KIND, "four")))
    await kubectl("wait", "--for=condition=Reconciled", "gadget/four", "--timeout=60s")
    await kubectl("label", "gadget", "four", "team=red")

    def watched(since: str, until: str) -> list[tuple[str, str, dict[str, str], str]]:
        """watch.Watch over list_namespaced_custom_object from `since`, until the team label shows `until`."""
        seen = []
        stream = kubernetes.watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            "v1",
            "default",
            PLURAL,
            resource_version=since,
            allow_watch_bookmarks=True,
            timeout_seconds=60,
        )
        for event in stream:
            metadata = event["object"]["metadata"]
            labels = metadata.get("labels") or {}
            seen.append((event["type"], metadata.get("name", ""), labels, metadata["resourceVersion"]))
            if labels.get("team") == until:
                break
        return seen

    # From the list's version: the request was created since, so it is ADDED (changes between two polls of the
    # feed arrive as one event, with the newest state).
    seen = await asyncio.to_thread(watched, since, "red")
    assert seen[0][:2] == ("ADDED", "four"), seen
    assert all(kind in ("ADDED", "MODIFIED", "BOOKMARK") for kind, *_ in seen)
    # Resumed from the last version it saw, it gets the next change, as MODIFIED.
    resumed = asyncio.create_task(asyncio.to_thread(watched, seen[-1][3], "green"))
    await kubectl("label", "gadget", "four", "team=green", "--overwrite")
    after = await asyncio.wait_for(resumed, 90)
    changes = [e for e in after if e[0] != "BOOKMARK"]
    assert [(e[0], e[1], e[2]["team"]) for e in changes] == [("MODIFIED", "four", "green")], after

    def too_old() -> ApiException:
        try:
            for _ in kubernetes.watch.Watch().stream(
                api.list_namespaced_custom_object, GROUP, "v1", "default", PLURAL, resource_version="1"
            ):
                pass
        except ApiException as exc:
            return exc
        raise AssertionError("a watch from resourceVersion 1 was not refused")

    refused = await asyncio.to_thread(too_old)
    assert refused.status == 410
    status = json.loads(refused.body)
    assert status["reason"] == "Expired" and status["message"].startswith("too old resource version: 1 ")
