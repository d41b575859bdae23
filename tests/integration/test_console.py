"""The web console's golden paths in real headless Chromium, against the real API on a real Temporal dev server,
worker, podman pipelines and git: install a Promise and request through the form, watch it reconcile live with its
logs, see the placement's commit; pause, approve a suspended pipeline, delete; and a team token's restricted view
through the browser and through the console's own JSON routes."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from playwright.async_api import Page, expect

from api.app import create_app
from service.platform import Platform
from tests.console_browser import chromium, console_page, screenshot
from tests.integration.test_api_auth import OTHER, OWN, TEAM_TOKEN, PLATFORM_TOKEN, as_, served, write_tokens
from tests.integration.test_resource_lifecycle import EXAMPLE, example, store_and_destination
from tests.kratix_documents import pipeline, promise, resource
from tests.waiting import eventually
from worker.settings import Settings

WAIT_MS = 120_000
TEMPORAL_UI = "http://127.0.0.1:8233"


@contextmanager
def console_for(platform: Platform, home: Path, **overrides: Any) -> Iterator[str]:
    settings = Settings(
        home=home,
        temporal_address=platform.client.service_client.config.target_host,
        temporal_namespace=platform.client.namespace,
        task_queue=platform.task_queue,
        temporal_ui_url=TEMPORAL_UI,
        **overrides,
    )
    with served(create_app(settings)) as url:
        yield url


async def apply(url: str, documents: list[dict[str, Any]], token: str | None = None) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=as_(token) if token else {}) as http:
        response = await http.post("/apply", content=yaml.safe_dump_all(documents))
        assert response.status_code == 200, response.text


async def phase_shown(page: Page, phase: str) -> None:
    await expect(page.locator("h1 .phase")).to_have_text(phase, timeout=WAIT_MS)


def worker_home(platform: Platform, tmp_path: Path) -> Path:
    """The home of the platform fixture's worker: an API on the worker's host, reading its git cache."""
    return tmp_path / f"ktx-home-{platform.client.namespace}"


def git(remote: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(remote), *args], check=True, capture_output=True, text=True).stdout


async def test_install_request_through_the_form_watch_it_reconcile_and_see_the_commit(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    with console_for(platform, worker_home(platform, tmp_path)) as url:
        await apply(url, store_and_destination(git_remote))
        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/")
            # Loopback with no tokens configured: the API asks for none, so neither does the console.
            await expect(page.locator("#who")).to_contain_text("platform")
            await page.get_by_role("link", name="Apply").click()
            await page.locator("#yaml").fill((EXAMPLE / "promise.yaml").read_text())
            await page.get_by_role("button", name="Apply", exact=True).click()
            await expect(page.locator("#apply-result")).to_contain_text("Promise app-config created")
            await platform.wait_condition("promise", "app-config", "default", "Available", timeout=120)

            await page.goto(f"{url}/ui/#/promises/app-config")
            await expect(page.locator("h1")).to_contain_text("Promise app-config")
            form = page.locator("form.request-form")
            await form.get_by_label("Name", exact=True).fill("checkout")
            await form.get_by_label("team", exact=True).fill("Payments Team")
            await form.get_by_label("replicas", exact=True).fill("9")
            await form.get_by_role("button", name="Request AppConfig").click()
            # The browser's reasons are the API's, word for word: ask the API with the same document.
            bad = example("resource-request.yaml")
            bad["spec"] = {"team": "Payments Team", "replicas": 9}
            async with httpx.AsyncClient(base_url=url) as http:
                refused = await http.post("/apply", params={"dryRun": "All"}, json=bad)
            assert refused.status_code == 422
            reasons = {e["field"]: e["reason"] for e in refused.json()["errors"]}
            assert set(reasons) == {"spec.team", "spec.replicas"}
            await expect(page.locator("#field-spec-team-error")).to_have_text(reasons["spec.team"])
            await expect(page.locator("#field-spec-replicas-error")).to_have_text(reasons["spec.replicas"])
            await expect(page.locator("#field-spec-team")).to_have_attribute("aria-invalid", "true")
            await screenshot(page, tmp_path, "request-form")
            assert await platform.list("appconfig") == [], "a request the browser refused reached the platform"

            await form.get_by_label("team", exact=True).fill("payments")
            await form.get_by_label("replicas", exact=True).fill("2")
            await form.get_by_label("size", exact=True).select_option(label="medium")
            await form.get_by_role("button", name="Request AppConfig").click()
            await expect(page.locator("h1")).to_contain_text("AppConfig default/checkout")
            # No reload from here on: the page follows the change feed's server-sent events.
            await phase_shown(page, "Reconciled")
            await expect(page.locator("#live")).to_have_text("● live")

            await page.get_by_role("button", name="Logs of configure/render").click()
            await expect(page.locator("#logs-configure-render pre")).to_contain_text(
                "rendered checkout: 4 replicas for team payments"
            )
            placement = page.locator("section", has=page.get_by_role("heading", name="Placements")).locator("tbody tr")
            await expect(placement).to_have_count(1)
            obj = await platform.get("appconfig", "checkout")
            (placed,) = obj["_ktx"]["placements"]
            head = git(git_remote, "log", "-1", "--format=%H", "main", "--", placed["path"]).strip()
            assert placed["version_id"] == head
            await expect(placement).to_contain_text("local")
            await expect(placement).to_contain_text(placed["path"])
            await expect(placement).to_contain_text(head[:12])

            # Each file the placement committed, as the git remote holds it at that commit.
            committed = git(git_remote, "ls-tree", "-r", "--name-only", head, "--", placed["path"]).split()
            assert committed
            await placement.get_by_role("button", name="Files on local").click()
            viewer = page.locator("#placement-files")
            await expect(viewer.locator("h3")).to_contain_text(head[:12])
            await expect(viewer.locator("summary")).to_have_count(len(committed))
            for number, file in enumerate(committed):
                await viewer.locator("summary").nth(number).click()
                shown = viewer.locator("details pre").nth(number)
                await expect(shown).to_be_visible()
                assert await shown.text_content() == git(git_remote, "show", f"{head}:{file}")
            await expect(viewer.locator("summary").first).to_contain_text(committed[0])
            temporal = page.get_by_role("link", name="in the Temporal UI")
            await expect(temporal).to_have_attribute(
                "href",
                f"{TEMPORAL_UI}/namespaces/{platform.client.namespace}/workflows/resource%2Fapp-config%2Fdefault%2Fcheckout",
            )
            await screenshot(page, tmp_path, "request")

            # Edit YAML: the API's 422 lands on the line of the field it names.
            await page.get_by_role("button", name="Edit YAML").click()
            editor = page.locator("#yaml")
            await expect(editor).to_have_value(re.compile(r"replicas: 2"))
            await editor.fill((await editor.input_value()).replace("replicas: 2", "replicas: 9"))
            await page.get_by_role("button", name="Apply", exact=True).click()
            problem = page.locator(".field-errors li")
            await expect(problem).to_have_count(1)
            lines = (await editor.input_value()).split("\n")
            line = next(i for i, text in enumerate(lines) if text.strip() == "replicas: 9")
            await expect(problem).to_have_text(
                f"line {line + 1} spec.replicas: Invalid value: 9: should be less than or equal to 5"
            )
            selected = await editor.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)")
            assert selected.strip() == "replicas: 9"
            assert (await platform.get("appconfig", "checkout"))["spec"]["replicas"] == 2, "a refusal changed nothing"

            for section_link, heading in (("Promises", "Promises"), ("Destinations", "Destinations and state stores")):
                await page.get_by_role("link", name=section_link, exact=True).click()
                await expect(page.locator("h1")).to_have_text(heading)
            await expect(page.locator("main table").first).to_contain_text("local")

            await page.get_by_role("link", name="Overview").click()
            counts = page.locator("section", has=page.get_by_role("heading", name="Requests by phase"))
            await expect(counts.locator("tbody tr")).to_contain_text("app-config")
            await expect(counts.get_by_role("link", name="1")).to_have_attribute(
                "href", "#/requests?promise=app-config&phase=Reconciled"
            )
            await screenshot(page, tmp_path, "overview")

            await page.get_by_role("link", name="Map").click()
            await expect(page.get_by_role("link", name="request default/checkout")).to_be_visible()
            await page.get_by_role("link", name="promise app-config").focus()
            await page.keyboard.press("ArrowRight")
            await expect(page.get_by_role("link", name="request default/checkout")).to_be_focused()
            await page.keyboard.press("ArrowRight")
            await expect(page.get_by_role("link", name="destination local")).to_be_focused()
            await screenshot(page, tmp_path, "map")


async def test_pause_resume_approve_a_suspended_pipeline_and_delete(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    gate = pipeline(
        "gate",
        GATE_LABEL="approved",
        FILES={"ok.yaml": {"ok": 1}},
        CONTROL={"suspend": True, "message": "needs approval"},
    )
    with console_for(platform, tmp_path / "home") as url:
        await apply(url, [*store_and_destination(git_remote), promise("gated", "Gated", configure=[gate])])
        await platform.wait_condition("promise", "gated", "default", "Available", timeout=120)
        await apply(url, [resource("Gated", "one")])
        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/#/requests")
            await page.get_by_role("link", name="one", exact=True).click()
            await phase_shown(page, "Suspended")
            control = page.locator("section", has=page.get_by_role("heading", name="Workflow control"))
            await expect(control).to_contain_text("needs approval")
            await screenshot(page, tmp_path, "suspended")

            # Approve: the label the gate reads, then resume the suspended workflow.
            await page.get_by_label("Label (key=value, or key- to remove)").fill("approved=yes")
            await page.get_by_role("button", name="Apply label").click()
            await expect(page.locator(".label", has_text="approved=yes")).to_be_visible(timeout=WAIT_MS)
            await page.get_by_role("button", name="Resume (approve)").click()
            await phase_shown(page, "Reconciled")

            await page.get_by_role("button", name="Pause").click()
            await phase_shown(page, "Paused")
            await page.get_by_role("button", name="Unpause").click()
            await phase_shown(page, "Reconciled")

            await page.get_by_role("button", name="Force delete").click()
            dialog = page.locator("dialog[open]")
            await expect(dialog).to_contain_text("Force cancels the delete pipelines")
            await dialog.get_by_role("button", name="Cancel").click()
            await expect(page.locator("dialog[open]")).to_have_count(0)

            await page.get_by_role("button", name="Delete", exact=True).click()
            await expect(page.locator("dialog[open]")).to_contain_text("The delete pipelines run")
            await page.locator("#confirm-delete").click()
            await expect(page.locator("#gone")).to_have_text("This request was deleted.", timeout=WAIT_MS)
    assert await platform.list("gated") == []


async def test_a_running_pipelines_log_shows_while_it_runs(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    # The container prints its first line, then hangs until the test force-deletes the request.
    slow = pipeline("slow", SLEEP="3600")
    with console_for(platform, worker_home(platform, tmp_path)) as url:
        await apply(url, [*store_and_destination(git_remote), promise("sluggish", "Sluggish", configure=[slow])])
        await platform.wait_condition("promise", "sluggish", "default", "Available", timeout=120)
        await apply(url, [resource("Sluggish", "one")])
        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/#/requests/Sluggish/default/one")
            live = page.locator("#live-logs")
            await expect(live).to_contain_text("resource/configure slow for one", timeout=WAIT_MS)
            await expect(live).to_contain_text("(running)")
            # Still running: no finished run is recorded yet, and the logs route says which entry is live.
            await expect(
                page.locator("section", has=page.get_by_role("heading", name="Pipeline runs"))
            ).to_contain_text("No runs yet.")
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            entries = (await http.get("/objects/sluggish/one/logs", params={"namespace": "default"})).json()
        assert [(e["pipeline"], e["running"], e["exitCode"]) for e in entries] == [("slow", True, None)]
        assert "resource/configure slow for one" in entries[0]["log"]
    await platform.delete("sluggish", "one", "default", force=True)
    await eventually(lambda: platform.list("sluggish"), lambda found: found == [], timeout=120)


async def test_a_team_token_sees_and_reads_only_its_namespaces(
    platform: Platform, git_remote: Path, pipeline_images, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    widgets = promise("widgets", "Widget", configure=[pipeline("make", FILES={"widget.yaml": {"made": True}})])
    with console_for(platform, worker_home(platform, tmp_path), api_tokens_file=tokens) as url:
        await apply(url, [*store_and_destination(git_remote), widgets], PLATFORM_TOKEN)
        await platform.wait_condition("promise", "widgets", "default", "Available", timeout=120)
        await apply(
            url,
            [resource("Widget", "ours", namespace=OWN), resource("Widget", "theirs", namespace=OTHER)],
            PLATFORM_TOKEN,
        )
        for namespace, name in ((OWN, "ours"), (OTHER, "theirs")):
            await platform.wait_condition("widget", name, namespace, "Reconciled", timeout=120)

        async with httpx.AsyncClient(base_url=url, headers=as_(TEAM_TOKEN), timeout=30) as http:
            listed = (await http.get("/ui/api/requests")).json()
            assert [(r["namespace"], r["name"]) for r in listed["items"]] == [(OWN, "ours")]
            assert listed["total"] == 1
            refused = await http.get("/ui/api/requests", params={"namespace": OTHER})
            assert refused.status_code == 403
            assert refused.json()["message"].endswith(f'in namespace "{OTHER}": its namespaces are {OWN}')
            detail = await http.get("/ui/api/requests/widget/theirs", params={"namespace": OTHER})
            assert detail.status_code == 403
            # What its own request placed it may read; what another namespace's placed, never, not even by its path.
            (own,) = (await platform.get("widget", "ours", OWN))["_ktx"]["placements"]
            (other,) = (await platform.get("widget", "theirs", OTHER))["_ktx"]["placements"]
            files = "/ui/api/requests/widget/{}/files"
            mine = await http.get(files.format("ours"), params={"namespace": OWN, **_where(own)})
            assert mine.status_code == 200, mine.text
            assert mine.json()["commit"] == own["version_id"] and mine.json()["files"]
            theirs = await http.get(files.format("theirs"), params={"namespace": OTHER, **_where(other)})
            assert theirs.status_code == 403
            elsewhere = await http.get(files.format("ours"), params={"namespace": OWN, **_where(other)})
            assert elsewhere.status_code == 404, elsewhere.text
            overview = (await http.get("/ui/api/overview")).json()
            assert sum(overview["counts"]["widgets"].values()) == 1
            assert overview["stores"] == [], "a team token may not read Destinations or stores"
            assert "theirs" not in json.dumps(overview)
            # The live feed carries only its namespaces' changes: label both, read the stream's events.
            async with http.stream("GET", "/ui/api/changes", params={"timeout": 8}) as stream:
                for namespace, name in ((OTHER, "theirs"), (OWN, "ours")):
                    await platform.label("widget", name, namespace, set={"touched": "yes"})
                text = "".join([chunk async for chunk in stream.aiter_text()])
            events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
            assert {e["name"] for e in events} == {"ours"}, events
            assert all(e["namespace"] == OWN for e in events)
            assert (await http.get("/ui/api/overview", headers=as_("not-a-token"))).status_code == 401

        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/")
            await page.get_by_label("API token").fill("not-a-token")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_contain_text("unknown token")
            await page.get_by_label("API token").fill(TEAM_TOKEN)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#who")).to_contain_text(f"team: {OWN}")
            await page.get_by_role("link", name="Requests").click()
            await expect(page.locator("#page-info")).to_have_text("1–1 of 1")
            await expect(page.get_by_role("link", name="ours")).to_be_visible()
            assert "theirs" not in await page.content()
            await screenshot(page, tmp_path, "team")
            await page.goto(f"{url}/ui/#/requests/Widget/{OTHER}/theirs")
            await expect(page.locator("main .error")).to_contain_text(f'in namespace "{OTHER}"')
            # The token stays in this tab's sessionStorage: never a cookie, never in the URL.
            assert await page.context.cookies() == []
            assert TEAM_TOKEN not in page.url


def _where(placement: dict[str, Any]) -> dict[str, str]:
    return {"destination": placement["destination"], "path": placement["path"]}


async def test_the_requests_list_pages_and_filters_on_the_server(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    with console_for(platform, tmp_path / "home") as url:
        await apply(url, [*store_and_destination(git_remote), promise("widgets", "Widget")])
        await platform.wait_condition("promise", "widgets", "default", "Available", timeout=120)
        names = [f"w{i}" for i in range(7)]
        await apply(
            url,
            [
                resource("Widget", n, namespace="blue" if i % 2 else "red", labels={"tier": "gold" if i < 3 else "tin"})
                for i, n in enumerate(names)
            ],
        )
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def listed(**params: Any) -> dict[str, Any]:
                response = await http.get("/ui/api/requests", params=params)
                assert response.status_code == 200, response.text
                return response.json()

            await eventually(
                lambda: listed(phase="Reconciled"), lambda p: p["total"] == 7, what="all 7 widgets Reconciled"
            )
            seen, token = [], None
            for _ in range(3):
                page = await listed(limit=3, **({"page": token} if token else {}))
                assert page["total"] == 7 and len(page["items"]) <= 3
                seen += [r["name"] for r in page["items"]]
                token = page["next"]
            assert token is None, "three pages of 3 hold all 7"
            assert sorted(seen) == names, "every request once, none twice"
            assert {r["name"] for r in (await listed(namespace="blue"))["items"]} == {"w1", "w3", "w5"}
            assert (await listed(phase="Failed"))["total"] == 0
            gold = await listed(label="tier=gold", limit=2)
            assert [r["name"] for r in gold["items"]] == ["w1", "w0"] and gold["total"] == 3
            rest = await listed(label="tier=gold", limit=2, page=gold["next"])
            assert [r["name"] for r in rest["items"]] == ["w2"] and rest["next"] is None
            for params, reason in (
                # Not one this API gave (Temporal would fail on it): refused before Temporal sees it.
                ({"page": "v" + base64.urlsafe_b64encode(b"x" * 16 + b"not-a-token").decode()}, "page: not a page"),
                ({"page": "vbm90LWEtdG9rZW4"}, "page: not a page"),
                ({"page": "x1"}, "page: not a page"),
                ({"label": "tier in (gold"}, "label: "),
            ):
                refused = await http.get("/ui/api/requests", params=params)
                assert refused.status_code == 400, (params, refused.text)
                assert refused.json()["message"].startswith(reason), refused.text
            for params in ({"phase": "Bogus"}, {"limit": 201}, {"namespace": "Not_A_Namespace"}, {"page": "v!"}):
                assert (await http.get("/ui/api/requests", params=params)).status_code == 422, params
