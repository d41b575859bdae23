"""A list holds every object that exists while it is read, although their workflows continue as new meanwhile: a
continued run closes and its successor starts with a newer start time, which visibility orders onto a page already
read. A dev server of its own suggests continuing as new after a few events, and relabelling every request makes them
continue as new again and again while lists of a few workflows a page are read."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest

from activities.platform.search_attributes import PROMISE
from domain.visibility import CONTINUED_AS_NEW, closed_since, equals
from service.platform import Platform
from tests.integration.test_reconciliation import install
from tests.kratix_documents import GROUP, eventually, promise, resource

SUGGEST_AFTER = 10
REQUESTS = 60
LISTINGS = 8
PAGE = 5  # 12 visibility calls a list: a wide window for runs to continue as new in

pytestmark = pytest.mark.parametrize(
    "temporal_env", [{"limit.historyCount.suggestContinueAsNew": SUGGEST_AFTER}], indirect=True
)


async def test_lists_hold_every_request_while_they_continue_as_new(platform: Platform, git_remote: Path) -> None:
    await install(platform, git_remote, promise("listed", "Listed"))
    # The catalog continues as new often on this server too; its new run publishes the catalog a moment later.
    await eventually(
        platform.catalog, lambda c: c.find_api(f"{GROUP}/v1", "Listed") is not None, timeout=30, what="the API served"
    )
    names = {f"r{i:03d}" for i in range(REQUESTS)}
    gate = asyncio.Semaphore(8)

    async def apply(name: str) -> None:
        async with gate:
            await platform.apply(resource("Listed", name, {"v": 1}))

    await asyncio.gather(*[apply(n) for n in sorted(names)])
    lister = Platform(platform.client, platform.task_queue, platform.secrets, list_page_size=PAGE)
    listed_names = lambda objects: {o["metadata"]["name"] for o in objects}  # noqa: E731
    await eventually(
        lambda: lister.list("listed"), lambda found: listed_names(found) == names, timeout=60, what="every request"
    )

    stop = asyncio.Event()

    async def relabel(name: str) -> None:
        change = 0
        while not stop.is_set():
            change += 1
            async with gate:
                await platform.label("listed", name, set={"change": str(change)})

    async def paged() -> list[dict]:
        """The console's requests list read page after page, as its Next button does."""
        found, token = [], None
        while True:
            page, token, _ = await lister.resources_page("listed", None, None, PAGE, token)
            found += page
            if token is None:
                return found

    began = datetime.now(timezone.utc)
    churn = [asyncio.create_task(relabel(n)) for n in sorted(names)]
    short: list[tuple[str, int, list[str]]] = []
    rounds = 0

    async def list_all_ways() -> int:
        """Each list once; how many runs have continued as new since the churn began."""
        nonlocal rounds
        for what, found in (
            ("Platform.list", await lister.list("listed")),
            ("Platform.resources", await lister.resources("listed")),
            ("Platform.resources_page", await paged()),
        ):
            if listed_names(found) != names:
                short.append((what, len(found), sorted(names - listed_names(found))))
            if what != "Platform.resources_page":  # pages read apart may show a request on two of them
                assert len(found) == len(listed_names(found)), f"{what} listed a request twice"
        rounds += 1
        continued = f"{equals(PROMISE.name, 'listed')} AND {CONTINUED_AS_NEW} AND {closed_since(began)}"
        return (await platform.client.count_workflows(continued)).count

    try:
        # Listed until the requests have continued as new while being listed, each about twice.
        await eventually(
            list_all_ways,
            lambda continued: rounds >= LISTINGS and continued >= 2 * REQUESTS,
            timeout=180,
            what=f"{LISTINGS} rounds of lists while the requests continue as new {2 * REQUESTS} times",
        )
    finally:
        stop.set()
        await asyncio.gather(*churn)
    assert not short, short
