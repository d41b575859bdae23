"""Getting around the web console in real headless Chromium against the real API and Temporal dev server: paging
the requests list past its first page and back, the keyboard alone (skip link, Tab, visible focus, Enter), every
control on every page named; and the change feed's subscriber limit, answered 429 by the console's change stream and
the Kubernetes watch alike until a slot is freed."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from playwright.async_api import Page, Route, expect

from service.platform import Platform
from tests.console_browser import chromium, console_page
from tests.integration.test_console import apply, console_for
from tests.integration.test_resource_lifecycle import store_and_destination
from tests.kratix_documents import promise, resource
from tests.waiting import eventually

# Every control a keyboard reaches, and any that has no name a screen reader could say: a link or button with no
# text, aria-label or title, a field with no <label> and no aria-label.
UNNAMED = """() => [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter((e) => e.tabIndex >= 0 && e.getClientRects().length > 0)
  .filter((e) => ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName)
    ? !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
    : !(e.textContent.trim() || e.getAttribute('aria-label') || e.getAttribute('title')))
  .map((e) => e.outerHTML.slice(0, 160))"""
FOCUSED = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  return { tag: e.tagName, text: (e.textContent || '').trim().slice(0, 80), href: e.getAttribute('href') || '',
           outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 };
}"""
TABS_MAX = 60


async def widgets(platform: Platform, url: str, git_remote: Path, count: int) -> list[str]:
    """A Promise with no pipelines and `count` requests of it, all Reconciled; their names."""
    await apply(url, [*store_and_destination(git_remote), promise("widgets", "Widget")])
    await platform.wait_condition("promise", "widgets", "default", "Available", timeout=120)
    names = [f"w{i}" for i in range(count)]
    await apply(url, [resource("Widget", n) for n in names])
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await eventually(
            lambda: http.get("/ui/api/requests", params={"phase": "Reconciled"}),
            lambda r: r.status_code == 200 and r.json()["total"] == count,
            what=f"all {count} widgets Reconciled",
            timeout=120,
        )
    return names


async def names_shown(page: Page) -> list[str]:
    return await page.locator("main table tbody tr td:first-child a").all_text_contents()


async def test_the_requests_list_pages_forward_and_back_in_the_browser(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    with console_for(platform, tmp_path / "home") as url:
        names = await widgets(platform, url, git_remote, 5)
        # The pages as the API gives them, to compare the browser's with.
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = (await http.get("/ui/api/requests", params={"limit": 2})).json()
            second = (await http.get("/ui/api/requests", params={"limit": 2, "page": first["next"]})).json()
        page_1 = [r["name"] for r in first["items"]]
        page_2 = [r["name"] for r in second["items"]]
        assert len(page_1) == len(page_2) == 2 and not set(page_1) & set(page_2)

        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/#/requests?limit=2")
            info = page.locator("#page-info")
            await expect(info).to_have_text("1–2 of 5")
            assert await names_shown(page) == page_1
            await expect(page.get_by_role("button", name="First page")).to_be_disabled()

            await page.get_by_role("button", name="Next page").click()
            await expect(info).to_have_text("3–4 of 5")
            assert await names_shown(page) == page_2
            assert "limit=2" in page.url, "the page size stays in the URL while paging"

            await page.get_by_role("button", name="Next page").click()
            await expect(info).to_have_text("5–5 of 5")
            (last,) = await names_shown(page)
            assert sorted([*page_1, *page_2, last]) == sorted(names), "every request once, none twice"
            await expect(page.get_by_role("button", name="Next page")).to_be_disabled()

            # The browser's Back goes to the page before, as it was.
            await page.go_back()
            await expect(info).to_have_text("3–4 of 5")
            assert await names_shown(page) == page_2
            await page.go_back()
            await expect(info).to_have_text("1–2 of 5")
            assert await names_shown(page) == page_1
            await page.go_forward()
            await expect(info).to_have_text("3–4 of 5")
            await page.get_by_role("button", name="First page").click()
            await expect(info).to_have_text("1–2 of 5")


async def test_the_keyboard_reaches_and_opens_a_request_and_every_control_is_named(
    platform: Platform, git_remote: Path, tmp_path: Path
) -> None:
    with console_for(platform, tmp_path / "home") as url:
        await widgets(platform, url, git_remote, 2)
        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/#/requests")
            await expect(page.locator("#page-info")).to_have_text("1–2 of 2")

            # The first Tab reaches the skip link, shown while focused; Enter moves the focus to the view.
            await page.keyboard.press("Tab")
            skip = page.get_by_role("link", name="Skip to content")
            await expect(skip).to_be_focused()
            await expect(skip).to_be_in_viewport()
            await page.keyboard.press("Enter")
            await expect(page.locator("#main")).to_be_focused()
            await expect(page.locator("h1")).to_have_text("Requests")

            # Tab from the view's start through its controls, each with a visible focus, to the first request.
            visited: list[dict[str, Any]] = []
            for _ in range(TABS_MAX):
                await page.keyboard.press("Tab")
                focused = await page.evaluate(FOCUSED)
                visited.append(focused)
                assert focused["outline"], f"no visible focus on {focused}"
                if focused["href"].startswith("#/requests/Widget/"):
                    break
            else:
                raise AssertionError(f"no request link within {TABS_MAX} tabs: {visited}")
            kinds = [(v["tag"], v["text"]) for v in visited]
            # The filters come first, each field reached in order, then the Filter button, then the list.
            assert [t for t, _ in kinds[:5]] == ["INPUT", "INPUT", "SELECT", "INPUT", "BUTTON"], kinds
            opened = visited[-1]["text"]
            # A live update while the keyboard is on that link (its request relabelled: the feed's change re-reads
            # the list) leaves the focus on the same link in the new rows, not at the page's top.
            await apply(url, [resource("Widget", opened, labels={"tier": "dev"})])
            await expect(page.locator("main table")).to_contain_text("tier=dev")
            assert (await page.evaluate(FOCUSED))["href"] == visited[-1]["href"]
            await page.keyboard.press("Enter")
            await expect(page.locator("h1")).to_contain_text(f"Widget default/{opened}")
            # The view that opened has the focus: the next Tab goes into it, not back to the page's top.
            await expect(page.locator("#main")).to_be_focused()
            await page.keyboard.press("Tab")
            assert await page.evaluate("() => document.getElementById('main').contains(document.activeElement)")

            # Every page: each control has a name (links and buttons their text, fields their labels).
            for route, heading in (
                ("#/", "Overview"),
                ("#/requests", "Requests"),
                (f"#/requests/Widget/default/{opened}", f"Widget default/{opened}"),
                ("#/promises", "Promises"),
                ("#/promises/widgets", "Promise widgets"),
                ("#/destinations", "Destinations and state stores"),
                ("#/map", "Map"),
                ("#/apply", "Apply a document"),
            ):
                await page.goto(f"{url}/ui/{route}")
                await expect(page.locator("main h1")).to_contain_text(heading)
                assert await page.evaluate(UNNAMED) == [], route


async def test_a_page_load_fetches_its_own_view_and_reads_it_while_the_session_is_checked(
    platform: Platform, tmp_path: Path
) -> None:
    with console_for(platform, tmp_path / "home") as url:
        async with chromium() as browser, console_page(browser) as page:
            fetched: list[str] = []
            listed = asyncio.Event()
            answered: list[bool] = []  # each session call: was the list's call made before it was answered

            def seen(path: str) -> None:
                fetched.append(path)
                if path == "/ui/api/requests":
                    listed.set()

            page.on("request", lambda r: seen(urlparse(r.url).path))

            # The session's answer is held until the list's call has gone out: a console that read its view only
            # after the session would make no such call, and the session would be answered at the wait's deadline.
            async def session_after_list(route: Route) -> None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(listed.wait(), timeout=10)
                answered.append(listed.is_set())
                await route.continue_()

            await page.route("**/ui/api/session", session_after_list)
            await page.goto(f"{url}/ui/#/requests")
            await expect(page.locator("#page-info")).to_be_visible()
            assert answered == [True], f"the list was read only after the session: {fetched}"
            code = sorted(p for p in fetched if p.endswith(".js"))
            version = code[0].split("/")[3]
            # The shell's modules and the list's own, not every view's, all of one version.
            assert code == [f"/ui/static/{version}/js/{m}.js" for m in ("api", "dom", "main", "requests")], fetched
            assert fetched.count("/ui/api/session") == fetched.count("/ui/api/requests") == 1, fetched

            # Another view's code comes as that view is first shown.
            await page.get_by_role("link", name="Destinations").click()
            await expect(page.locator("main h1")).to_have_text("Destinations and state stores")
            assert f"/ui/static/{version}/js/stores.js" in fetched, fetched


async def test_the_code_is_cached_for_good_under_its_version_and_a_tab_left_on_an_older_one_reloads(
    platform: Platform, tmp_path: Path
) -> None:
    with console_for(platform, tmp_path / "home") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            page = await http.get("/ui/")
            assert page.headers["cache-control"] == "no-store"
            (version,) = set(re.findall(r"/ui/static/([0-9a-f]{16})/", page.text))
            module = await http.get(f"/ui/static/{version}/js/main.js")
            assert module.status_code == 200
            assert module.headers["cache-control"] == "public, max-age=31536000, immutable"
            # Files of a version this API does not serve are not found: not today's files under an old name.
            assert (await http.get("/ui/static/0123456789abcdef/js/main.js")).status_code == 404
            assert (await http.get("/ui/static/js/main.js")).status_code == 404

        async with chromium() as browser, console_page(browser) as page:
            loads: list[str] = []
            page.on("request", lambda r: loads.append(r.url) if urlparse(r.url).path == "/ui/" else None)
            gone = [True]

            # The first fetch of a view's module fails, as it does for a tab opened before an upgrade (its version is
            # no longer served): the page loads again, once, and shows the view with the code it now names.
            async def missing_once(route: Route) -> None:
                if gone:
                    gone.clear()
                    await route.fulfill(status=404, body="not found")
                else:
                    await route.continue_()

            await page.route("**/js/stores.js", missing_once)
            await page.goto(f"{url}/ui/#/destinations")
            await expect(page.locator("main h1")).to_have_text("Destinations and state stores")
            assert len(loads) == 2, loads


async def test_a_full_change_feed_answers_429_until_a_slot_is_freed(platform: Platform, tmp_path: Path) -> None:
    with console_for(platform, tmp_path / "home", api_max_watchers=2) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def refused() -> None:
                """Both routes that subscribe to the feed say it is full, each in its own API's words."""
                stream = await http.get("/ui/api/changes", params={"timeout": 5})
                assert stream.status_code == 429, stream.text
                assert stream.headers["retry-after"] == "5"
                assert stream.json()["message"] == "this API process serves at most 2 watches at once"
                watch = await http.get("/apis/platform.kratix.io/v1alpha1/promises", params={"watch": "true"})
                assert watch.status_code == 429, watch.text
                status = watch.json()
                assert (status["kind"], status["reason"], status["code"]) == ("Status", "TooManyRequests", 429)
                assert status["message"] == "this API process serves at most 2 watches at once"

            async with http.stream("GET", "/ui/api/changes", params={"timeout": 60}) as one:
                assert one.status_code == 200
                async with http.stream(
                    "GET",
                    "/apis/platform.kratix.io/v1alpha1/promises",
                    params={"watch": "true", "timeoutSeconds": "60"},
                ) as two:
                    assert two.status_code == 200
                    await refused()
                # The watch's connection closed: its slot is free again, for a stream of the console's.
                freed = await eventually(
                    lambda: http.get("/ui/api/changes", params={"timeout": 1}),
                    lambda r: r.status_code == 200,
                    what="a freed slot serves the console's change stream",
                    timeout=30,
                )
                assert freed.text.startswith("retry: 2000")
