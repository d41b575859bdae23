"""Real headless Chromium (Debian's, no browser download) driven by the Python `playwright` package, for the web
console's tests and bench/console.py; every page it opens fails the test on a script error or a CSP violation."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
# A laptop screen: the console has to be usable at this size (issue 19).
VIEWPORT = {"width": 1366, "height": 768}
# KTX_CONSOLE_SCREENSHOTS=docs/images: the screenshots the tests take are written there too (docs/console.md).
SCREENSHOTS = os.environ.get("KTX_CONSOLE_SCREENSHOTS")
# The deadline of each `expect(...)` wait: an apply or a page's first read on a busy 2-core machine takes seconds.
expect.set_options(timeout=30_000)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert shutil.which(CHROMIUM), "Debian's chromium is missing: scripts/install.sh installs it"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def console_page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context (its own sessionStorage) and page; on leaving, no script error or CSP report."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield page
    finally:
        await context.close()
    assert not problems, problems


async def screenshot(page: Page, directory: Path, name: str) -> Path:
    path = directory / f"console-{name}.png"
    await page.screenshot(path=str(path))
    if SCREENSHOTS:
        shutil.copy(path, Path(SCREENSHOTS) / path.name)
    return path
