"""A Bucket state store's placement files in the console, read from a real S3 server (SeaweedFS) with the store's
access keys from its Secret: through the console's JSON route and in real headless Chromium, each file's contents
equal to the object in the bucket, and only the keys the request itself placed (a flat Destination holds another
request's files beside its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from service.platform import Platform
from tests.console_browser import chromium, console_page, screenshot
from tests.integration.test_console import apply, console_for, worker_home
from tests.integration.test_destinations import destination
from tests.integration.test_state_store_credentials import bucket_store, secret
from tests.kratix_documents import pipeline, promise, resource
from tests.servers.s3_server import WRITER, objects

WAIT_S = 120


def request(kind: str, name: str) -> dict[str, Any]:
    """A request whose pipeline writes the files its spec names, named after it: two requests share a flat directory."""
    return resource(
        kind, name, spec={"files": {f"{name}.yaml": f"owner: {name}\n", f"notes/{name}.txt": f"{name} note\n"}}
    )


async def test_a_buckets_placement_files_are_read_from_the_bucket(
    platform: Platform, s3_server, s3_bucket: str, pipeline_images, tmp_path: Path
) -> None:
    writes = pipeline("write", SPEC_FILES="files")
    with console_for(platform, worker_home(platform, tmp_path)) as url:
        await apply(
            url,
            [
                secret("s3-creds", accessKeyID=WRITER[0], secretAccessKey=WRITER[1]),
                bucket_store(s3_server.endpoint, s3_bucket),
                destination(
                    "nested", {"mode": "nested"}, kind="BucketStateStore", store="bucket", strictMatchLabels=True
                ),
                destination(
                    "flat",
                    {"mode": "flat"},
                    kind="BucketStateStore",
                    store="bucket",
                    strictMatchLabels=True,
                    filepath={"mode": "none"},
                ),
                destination(
                    "agg",
                    {"mode": "agg"},
                    kind="BucketStateStore",
                    store="bucket",
                    strictMatchLabels=True,
                    filepath={"mode": "aggregatedYAML", "filename": "all.yaml"},
                ),
                promise("deep", "Deep", configure=[writes], selectors={"mode": "nested"}),
                promise("aggs", "Agg", configure=[writes], selectors={"mode": "agg"}),
                promise("flats", "Flat", configure=[writes], selectors={"mode": "flat"}),
            ],
        )
        for name in ("deep", "flats", "aggs"):
            await platform.wait_condition("promise", name, "default", "Available", timeout=WAIT_S)
        kinds = ("Deep", "Flat", "Agg")
        await apply(url, [request(kind, name) for kind in kinds for name in ("one", "two")])
        for kind, name in ((kind.lower(), name) for kind in kinds for name in ("one", "two")):
            await platform.wait_condition(kind, name, "default", "Reconciled", timeout=WAIT_S)
        stored = objects(s3_server.client(), s3_bucket)

        async with httpx.AsyncClient(base_url=url, timeout=60) as http:

            async def shown(kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
                (placed,) = (await platform.get(kind, name))["_ktx"]["placements"]
                where = {"namespace": "default", "destination": placed["destination"], "path": placed["path"]}
                response = await http.get(f"/ui/api/requests/{kind}/{name}/files", params=where)
                assert response.status_code == 200, response.text
                assert WRITER[1] not in response.text, "the store's secret key is never answered"
                return placed, response.json()

            placed, deep = await shown("deep", "one")
            prefix = f"fleet/{placed['path']}/"
            assert deep["store"] == "BucketStateStore/bucket" and deep["total"] == 2
            assert {f["name"]: f["text"].encode() for f in deep["files"]} == {
                k: v for k, v in stored.items() if k.startswith(prefix)
            }
            assert stored[f"{prefix}one.yaml"] == b"owner: one\n"

            _, flat = await shown("flat", "one")
            # The flat directory holds both requests' files; request one is shown its own two, none of two's.
            assert {"fleet/flat/one.yaml", "fleet/flat/two.yaml"} <= set(stored)
            assert [f["name"] for f in flat["files"]] == ["fleet/flat/notes/one.txt", "fleet/flat/one.yaml"], flat
            assert all(stored[f["name"]] == f["text"].encode() for f in flat["files"])
            assert all("two" not in f["text"] for f in flat["files"])

            # The aggregate file holds both requests' documents; request one is shown its own, each by its file.
            _, agg = await shown("agg", "one")
            assert b"owner: two" in stored["fleet/agg/all.yaml"]
            assert [f["name"] for f in agg["files"]] == [
                "fleet/agg/all.yaml#notes/one.txt",
                "fleet/agg/all.yaml#one.yaml",
            ]
            assert [f["text"] for f in agg["files"]] == ["one note\n", "owner: one\n"]

            # A path no placement of its names is refused, whatever the bucket holds there.
            refused = await http.get(
                "/ui/api/requests/flat/one/files",
                params={"namespace": "default", "destination": "flat", "path": "flat/.kratix"},
            )
            assert refused.status_code == 404, refused.text

        async with chromium() as browser, console_page(browser) as page:
            await page.goto(f"{url}/ui/#/requests/Flat/default/one")
            placement = page.locator("section", has=page.get_by_role("heading", name="Placements")).locator("tbody tr")
            await expect(placement).to_have_count(1)
            await placement.get_by_role("button", name="Files on flat").click()
            viewer = page.locator("#placement-files")
            await expect(viewer.locator("h3")).to_contain_text("as the bucket holds them now")
            await expect(viewer.locator("summary")).to_have_count(len(flat["files"]))
            for number, file in enumerate(flat["files"]):
                await expect(viewer.locator("summary").nth(number)).to_contain_text(file["name"])
                await viewer.locator("summary").nth(number).click()
                pre = viewer.locator("details pre").nth(number)
                await expect(pre).to_be_visible()
                assert (await pre.text_content()).encode() == stored[file["name"]]
            await screenshot(page, tmp_path, "bucket-files")
