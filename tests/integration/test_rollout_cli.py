"""`ktx rollout ...` through the real API (uvicorn on a loopback port) against a real platform: every command the
rollouts page shows, with what it prints."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml

from service.platform import Platform
from tests.integration.test_gitops_manifests_api import api, run_cli
from tests.integration.test_rollouts import fleet, phase, plan, writer

__all__ = ["api"]  # the fixture, served over this module's pinned platform


@pytest_asyncio.fixture
async def platform(platform_factory) -> Platform:
    return await platform_factory(resource_binding_version_strategy="pinned")


async def test_rollout_commands_preview_create_control_and_report(
    platform: Platform, api: httpx.AsyncClient, git_remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await fleet(platform, git_remote, {"team-a": ["a0"], "team-b": ["b0", "b1"]}, writer("write-v2", SLEEP="1"))
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan()))

    code, out, err = await run_cli(capsys, "rollout", "create", "-f", str(path), "--preview")
    assert code == 0, err
    assert out.splitlines() == [
        "3 requests in 2 groups, starting now:",
        "group canary (1 requests, at most 1 at once):",
        "     1. team-a/a0",
        "group rest (2 requests, at most 1 at once):",
        "     2. team-b/b0",
        "     3. team-b/b1",
    ]
    with pytest.raises(Exception, match="not found"):
        await platform.rollout("db-v2")  # the preview started nothing

    code, out, err = await run_cli(capsys, "rollout", "create", "-f", str(path))
    assert (code, out.splitlines()[0]) == (0, "rolloutplan/db-v2 created"), err
    code, out, err = await run_cli(capsys, "rollout", "pause", "db-v2")
    assert (code, out) == (0, "rolloutplan/db-v2 pause: Paused\n"), err
    code, out, _ = await run_cli(capsys, "rollout", "status", "db-v2")
    assert "Promise:   db v1 -> v2" in out
    assert "Window:    always open" in out
    code, out, err = await run_cli(capsys, "rollout", "resume", "db-v2")
    assert (code, out) == (0, "rolloutplan/db-v2 resume: Running\n"), err

    await phase(platform, "db-v2", "Succeeded")
    code, out, _ = await run_cli(capsys, "rollout", "status", "db-v2")
    assert "Phase:     Succeeded" in out
    assert "  canary: 1 requests, at most 1 at once: Succeeded 1" in out
    assert "  rest: 2 requests, at most 1 at once: Succeeded 2" in out

    code, _, err = await run_cli(capsys, "rollout", "abort", "db-v2")
    assert code == 1 and "(409): cannot abort a rollout that is Succeeded" in err
    code, _, err = await run_cli(capsys, "rollout", "rollback", "db-v2")
    assert code == 1 and "rollback applies when Halted or Aborted" in err
    code, out, err = await run_cli(capsys, "rollout", "delete", "db-v2")
    assert (code, out) == (0, "rolloutplan/db-v2 delete: Succeeded\n"), err
    code, _, err = await run_cli(capsys, "rollout", "status", "db-v2")
    assert code == 1 and 'rolloutplan "db-v2" not found' in err


async def test_bad_plans_are_refused_with_the_field(
    platform: Platform, api: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = plan(maxConcurrent="250%", windows=[{"schedule": "61 * * * *", "duration": "1h"}])
    response = await api.post("/rollouts", content=yaml.safe_dump(document))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"spec.maxConcurrent", "spec.windows[0].schedule"}
    response = await api.post("/rollouts", content=yaml.safe_dump(plan()))
    assert (response.status_code, response.json()["detail"]) == (404, 'promise "db" not found (spec.promiseRef.name)')
    assert (await api.post("/rollouts/db-v2/explode")).status_code == 422
    assert (await api.post("/rollouts/db-v2/pause")).status_code == 404
