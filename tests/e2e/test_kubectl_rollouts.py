"""Real kubectl against ktx's Kubernetes API for RolloutPlans (docs/rollouts.md): discovery, explain, apply (created,
unchanged, a changed spec refused), the controls as the `ktx.dev/control` annotation, get with the plan's columns,
`wait` and `get --watch` on its phase, delete; and a team token's view of a plan reaching beyond its namespaces, the
same from the routes as from `can-i`. Over a real Temporal dev server, workers and podman pipelines."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import httpx
import pytest_asyncio
import yaml

from api.app import create_app
from domain.revisions import binding_name, revision_name
from service.platform import Platform
from tests.e2e.test_kubectl import Kubectl, kubectl, write  # noqa: F401  (kubectl: the fixture)
from tests.e2e.test_kubectl_watch import start
from tests.integration.test_api_auth import served
from tests.integration.test_rollouts import fleet, plan, writer
from tests.waiting import eventually
from worker.settings import Settings

PLANS = "/apis/platform.ktx.dev/v1alpha1/rolloutplans"


@pytest_asyncio.fixture
async def platform(platform_factory) -> Platform:
    # Pinned, so installing v2 moves no request: the plan does.
    return await platform_factory(resource_binding_version_strategy="pinned")


def phases(lines: list[str], name: str) -> list[str]:
    """The PHASE column of `kubectl get rolloutplans --watch --output-watch-events` rows for `name`."""
    header = next(line.split() for line in lines if line.startswith("EVENT"))
    at = header.index("PHASE")
    return [line.split()[at] for line in lines if len(line.split()) > at and line.split()[1] == name]


async def test_kubectl_applies_controls_watches_and_deletes_a_rollout_plan(
    kubectl: Kubectl,  # noqa: F811  (the fixture)
    platform: Platform,
    tmp_path: Path,
    git_remote: Path,
) -> None:
    revisions = await start(kubectl, "get", "promiserevisions", "--watch", "--output-watch-events")
    try:
        await fleet(platform, git_remote, {"team-a": ["a0"], "team-b": ["b0", "b1"]}, writer("write-v2", SLEEP="2"))
        v1, v2 = revision_name("db", "v1"), revision_name("db", "v2")
        # v1 made, then v2 made the latest and v1 no longer it: EVENT NAME PROMISE VERSION [LATEST]
        await eventually(
            lambda: [line.split() for line in revisions.lines],
            lambda rows: ["MODIFIED", v1, "db", "v1"] in rows,
            what="v1's revision modified when v2 became the latest",
        )
    finally:
        await revisions.stop()
    rows = [line.split() for line in revisions.lines]
    assert rows.index(["ADDED", v1, "db", "v1", "true"]) < rows.index(["ADDED", v2, "db", "v2", "true"])
    _, out, _ = await kubectl("api-resources", "--api-group=platform.ktx.dev", "--no-headers")
    assert [line.split() for line in out.splitlines()] == [
        ["rolloutplans", "platform.ktx.dev/v1alpha1", "false", "RolloutPlan"]
    ]
    _, out, _ = await kubectl("explain", "rolloutplans.spec")
    assert "fromVersion" in out and "The version the requests upgraded run on now." in out

    watching = await start(kubectl, "get", "rolloutplans", "--watch", "--output-watch-events")
    bindings = await start(kubectl, "get", "resourcebindings", "-n", "team-a", "--watch", "--output-watch-events")
    try:
        path = write(tmp_path / "plan.yaml", plan())
        _, out, _ = await kubectl("apply", "-f", path)
        assert out.strip() == "rolloutplan.platform.ktx.dev/db-v2 created"
        _, out, _ = await kubectl("annotate", "rolloutplan", "db-v2", "ktx.dev/control=pause")
        assert out.strip() == "rolloutplan.platform.ktx.dev/db-v2 annotated"
        await kubectl("wait", "--for=jsonpath={.status.phase}=Paused", "rolloutplan/db-v2", "--timeout=60s")

        _, out, _ = await kubectl("apply", "-f", path)
        assert out.strip() == "rolloutplan.platform.ktx.dev/db-v2 unchanged"
        changed = write(tmp_path / "changed.yaml", plan(failureThreshold=2))
        code, _, err = await kubectl("apply", "-f", changed, check=False)
        assert code != 0 and "Error from server (Conflict)" in err and "does not change once it runs" in err
        code, _, err = await kubectl("annotate", "rolloutplan", "db-v2", "ktx.dev/control=rollback", check=False)
        assert code != 0 and "Error from server (Conflict)" in err and "rollback applies when Halted or Aborted" in err
        code, _, err = await kubectl("annotate", "rolloutplan", "db-v2", "ktx.dev/control=explode", check=False)
        assert code != 0 and "is invalid" in err and "metadata.annotations[ktx.dev/control]: Unsupported value" in err

        _, out, _ = await kubectl("get", "rolloutplans")
        rows = [line.split() for line in out.splitlines()]
        assert rows[0] == ["NAME", "PROMISE", "FROM", "TO", "PHASE", "PROGRESS", "FAILURES", "AGE"]
        assert rows[1][:5] == ["db-v2", "db", "v1", "v2", "Paused"]
        _, out, _ = await kubectl("get", "rolloutplan", "db-v2", "-o", "yaml")
        shown = yaml.safe_load(out)
        assert shown["metadata"]["uid"] and shown["metadata"]["creationTimestamp"]
        assert [g["name"] for g in shown["status"]["groups"]] == ["canary", "rest"]
        assert "ktx.dev/control" not in shown["metadata"].get("annotations", {})  # an instruction, not kept

        await kubectl("annotate", "rolloutplan", "db-v2", "ktx.dev/control=resume")
        pin = binding_name("db", "a0")
        await kubectl("wait", "--for=jsonpath={.spec.version}=v2", f"resourcebinding/{pin}", "-n", "team-a")
        await kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "rolloutplan/db-v2", "--timeout=240s")
        _, out, _ = await kubectl("get", "rolloutplan", "db-v2", "--no-headers")
        assert out.split()[4:7] == ["Succeeded", "3/3", "0"]
        await eventually(lambda: phases(watching.lines, "db-v2"), lambda p: "Succeeded" in p, what="watched")
    finally:
        await watching.stop()
        await bindings.stop()
    # EVENT NAME RESOURCE PROMISE DESIRED APPLIED: the binding listed on v1, then re-bound to v2 by the plan.
    rows = [line.split() for line in bindings.lines]
    assert rows[1][:5] == ["ADDED", pin, "a0", "db", "v1"]
    assert ["MODIFIED", pin, "a0", "db", "v2"] in [r[:5] for r in rows]
    seen = phases(watching.lines, "db-v2")
    # The watch saw the plan made, paused, resumed and done, in that order.
    assert seen.index("Paused") < seen.index("Succeeded")
    assert [line.split()[0] for line in watching.lines if "db-v2" in line][0] == "ADDED"

    await team_sees_only_what_it_manages(platform, tmp_path)
    _, out, _ = await kubectl("auth", "can-i", "patch", "rolloutplans/db-v2")
    assert out.strip() == "yes"
    _, out, _ = await kubectl("delete", "rolloutplan", "db-v2")
    assert out.strip() == 'rolloutplan.platform.ktx.dev "db-v2" deleted'
    code, _, err = await kubectl("get", "rolloutplan", "db-v2", check=False)
    assert code != 0 and "NotFound" in err


async def team_sees_only_what_it_manages(platform: Platform, tmp_path: Path) -> None:
    """A team of team-a alone may not read or control db-v2, which reaches team-b: the routes refuse it (403 Status)
    and `can-i` says no, for the same reason; a list shows it nothing."""
    token = secrets.token_urlsafe(32)
    tokens = tmp_path / "tokens.yaml"
    digest = hashlib.sha256(token.encode()).hexdigest()
    tokens.write_text(yaml.safe_dump([{"name": "a-ci", "role": "team", "namespaces": ["team-a"], "sha256": digest}]))
    settings = Settings(
        home=tmp_path / "team-api",
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
        api_tokens_file=tokens,
    )
    with served(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            await team_requests(http)
    assert (await platform.rollout("db-v2"))["status"]["phase"] == "Succeeded"  # the refused abort did nothing


async def team_requests(http: httpx.AsyncClient) -> None:
    refused = await http.get(f"{PLANS}/db-v2")
    assert (refused.status_code, refused.json()["reason"]) == (403, "Forbidden")
    assert 'in namespace "team-b"' in refused.json()["message"]
    patched = await http.patch(
        f"{PLANS}/db-v2",
        content=json.dumps({"metadata": {"annotations": {"ktx.dev/control": "abort"}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 403
    assert (await http.get(PLANS)).json()["items"] == []

    async def can(verb: str, name: str = "") -> bool:
        attributes = {"verb": verb, "group": "platform.ktx.dev", "resource": "rolloutplans", "name": name}
        review = {"spec": {"resourceAttributes": attributes}}
        answer = await http.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
        return answer.raise_for_status().json()["status"]["allowed"]

    assert not await can("get", "db-v2") and not await can("patch", "db-v2")
    assert await can("create") and await can("list")  # a new plan is decided by the namespaces it lists
