"""A Promise's revisions and its requests per version in the web console, against the real API on a real Temporal dev
server and worker, in real headless Chromium: the live request workflows record the version they last ran at as the
KtxPromiseVersion search attribute (patch promise-version-attribute), and each revision's count is counted from it,
while pinned requests stay on v1 and floating ones follow v2. A team token's counts, the overview's kept table and the
per-version ones alike, are of its namespaces only, and stay so when they are counted again after changes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from domain.revisions import binding_name, revision_name
from service.platform import Platform
from tests.console_browser import chromium, console_page
from tests.integration.test_api_auth import OTHER, OWN, PLATFORM_TOKEN, TEAM_TOKEN, as_, write_tokens
from tests.integration.test_console import apply, console_for
from tests.integration.test_resource_lifecycle import store_and_destination
from tests.kratix_documents import condition, promise, resource
from tests.waiting import eventually

PROMISE = "widgets"
REVISIONS_TABLE = "PromiseRevisions and the requests last reconciled at each"


def widgets_at(version: str) -> dict[str, Any]:
    """The Promise at `version`, no pipelines (a request is reconciled as soon as its workflow runs). Each version's
    API differs, as a new version's spec does: a new version label alone re-runs no request."""
    properties = {f"since_{version}": {"type": "string"}}
    return promise(PROMISE, "Widget", labels={"kratix.io/promise-version": version}, properties=properties)


async def reconciled_at(platform: Platform, namespace: str, name: str, version: str) -> None:
    await eventually(
        lambda: platform.get("widget", name, namespace),
        lambda o: o["status"].get("promiseVersion") == version and condition(o, "Reconciled").get("status") == "True",
        timeout=120,
        what=f"{namespace}/{name} reconciled at {version}",
    )


async def pin(platform: Platform, namespace: str, name: str, version: str) -> None:
    """Binds the request to `version`, as a team pins it by editing its ResourceBinding."""
    binding = copy.deepcopy(await platform.get("resourcebinding", binding_name(PROMISE, name), namespace))
    binding["spec"]["version"] = version
    assert (await platform.apply(binding)).action == "configured"


def per_version(versions: dict[str, Any]) -> dict[str, Any]:
    """What the versions route says, as (version, revision, latest, requests) rows and the rest."""
    rows = [(r["version"], r["name"], r["latest"], r["requests"]) for r in versions["revisions"]]
    return {"rows": rows, "elsewhere": versions["elsewhere"], "total": versions["total"]}


async def versions_become(http: httpx.AsyncClient, expected: dict[str, Any], token: str | None = None) -> None:
    """Waits for the versions route to count `expected`: the search attribute is visible a moment after a run."""
    headers = as_(token) if token else {}
    await eventually(
        lambda: http.get(f"/ui/api/promises/{PROMISE}/versions", headers=headers),
        lambda r: r.status_code == 200 and per_version(r.json()) == expected,
        timeout=60,
        what=f"the versions route counting {expected}",
    )


async def test_a_promise_page_shows_both_revisions_with_the_requests_reconciled_at_each(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    with console_for(platform, tmp_path / "home") as url:
        await apply(url, [*store_and_destination(git_remote), widgets_at("v1")])
        await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=120)
        names = [f"w{i}" for i in range(5)]
        await apply(url, [resource("Widget", n) for n in names])
        for name in names:
            await reconciled_at(platform, "default", name, "v1")
        v1, v2 = revision_name(PROMISE, "v1"), revision_name(PROMISE, "v2")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await versions_become(http, {"rows": [("v1", v1, True, 5)], "elsewhere": 0, "total": 5})

            # Two requests pinned to v1 stay there; the three floating on `latest` follow the new revision.
            pinned, floating = names[:2], names[2:]
            for name in pinned:
                await pin(platform, "default", name, "v1")
            await apply(url, [widgets_at("v2")])
            for name in floating:
                await reconciled_at(platform, "default", name, "v2")
            for name in pinned:
                assert (await platform.get("widget", name, "default"))["status"]["promiseVersion"] == "v1"
            await versions_become(
                http, {"rows": [("v2", v2, True, 3), ("v1", v1, False, 2)], "elsewhere": 0, "total": 5}
            )

        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/#/promises/{PROMISE}")
            await expect(page.locator("main h1")).to_contain_text(f"Promise {PROMISE}")
            await expect(page.get_by_role("link", name="5 requests")).to_be_visible()
            rows = page.get_by_role("table", name=REVISIONS_TABLE).locator("tbody tr")
            await expect(rows).to_have_count(2)
            cells = [await row.locator("td").all_inner_texts() for row in await rows.all()]
            assert [(c[0], c[1], c[3]) for c in cells] == [("v2 (latest)", v2, "3"), ("v1", v1, "2")], cells
            assert all(c[2] for c in cells), "each revision shows when it was created"
            await expect(page.locator("#versions-elsewhere")).to_have_count(0)


async def test_a_team_token_counts_only_its_namespaces_requests_as_they_change(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    with console_for(platform, tmp_path / "home", api_tokens_file=tokens) as url:
        await apply(url, [*store_and_destination(git_remote), widgets_at("v1")], PLATFORM_TOKEN)
        await platform.wait_condition("promise", PROMISE, "default", "Available", timeout=120)
        first = [(OWN, "ours-0"), (OTHER, "theirs-0"), (OTHER, "theirs-1")]
        await apply(url, [resource("Widget", n, namespace=ns) for ns, n in first], PLATFORM_TOKEN)
        for namespace, name in first:
            await reconciled_at(platform, namespace, name, "v1")

        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def overview(token: str) -> dict[str, Any]:
                response = await http.get("/ui/api/overview", headers=as_(token))
                assert response.status_code == 200, response.text
                return response.json()

            def reconciled(body: dict[str, Any]) -> int:
                return body["counts"].get(PROMISE, {}).get("Reconciled", 0)

            # Both tables kept: every namespace's (the platform token's) and the team's own, each counted apart.
            await eventually(lambda: overview(PLATFORM_TOKEN), lambda o: reconciled(o) == 3, timeout=60)
            team = await eventually(lambda: overview(TEAM_TOKEN), lambda o: reconciled(o) == 1, timeout=60)
            assert sum(team["counts"][PROMISE].values()) == 1 and team["countedAt"]
            assert "theirs" not in str(team)

            # One of each namespace's pinned to v1, then v2, then one more request in each namespace.
            for namespace, name in ((OWN, "ours-0"), (OTHER, "theirs-0")):
                await pin(platform, namespace, name, "v1")
            await apply(url, [widgets_at("v2")], PLATFORM_TOKEN)
            later = [(OWN, "ours-1"), (OTHER, "theirs-2")]
            await apply(url, [resource("Widget", n, namespace=ns) for ns, n in later], PLATFORM_TOKEN)
            for namespace, name in (*later, (OTHER, "theirs-1")):
                await reconciled_at(platform, namespace, name, "v2")

            # The kept tables are counted again after the changes: the team's still holds its namespace alone.
            await eventually(lambda: overview(PLATFORM_TOKEN), lambda o: reconciled(o) == 5, timeout=60)
            # Quiet again: the table says no counting is due (a page that read one due would read it again).
            quiet = await eventually(lambda: overview(PLATFORM_TOKEN), lambda o: not o["countsDue"], timeout=60)
            assert reconciled(quiet) == 5
            team = await eventually(lambda: overview(TEAM_TOKEN), lambda o: reconciled(o) == 2, timeout=60)
            assert sum(team["counts"][PROMISE].values()) == 2
            assert "theirs" not in str(team)

            v1, v2 = revision_name(PROMISE, "v1"), revision_name(PROMISE, "v2")
            await versions_become(
                http,
                {"rows": [("v2", v2, True, 1), ("v1", v1, False, 1)], "elsewhere": 0, "total": 2},
                TEAM_TOKEN,
            )
            await versions_become(
                http,
                {"rows": [("v2", v2, True, 3), ("v1", v1, False, 2)], "elsewhere": 0, "total": 5},
                PLATFORM_TOKEN,
            )
