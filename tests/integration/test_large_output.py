"""A pipeline writing 20 MB in 2,000 files is delivered intact, and none of those bytes pass through Temporal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from service.platform import Platform
from tests.conftest import remote_files
from tests.integration.test_destinations import destination, git_store
from tests.kratix_documents import condition, eventually, get, pipeline, promise, resource

COUNT, SIZE = 2000, 10 * 1024


async def test_twenty_megabytes_in_two_thousand_files(platform: Platform, git_remote: Path, pipeline_images) -> None:
    await platform.apply(git_store(git_remote))
    await platform.apply(destination("dev"))
    await platform.apply(promise("bulk", "Bulk", configure=[pipeline("generate", GENERATE=f"{COUNT}x{SIZE}")]))
    await platform.wait_condition("promise", "bulk", "default", "Available", timeout=60)
    await platform.apply(resource("Bulk", "big"))
    obj = await eventually(
        lambda: get(platform, "bulk", "big"),
        lambda o: condition(o, "WorksSucceeded").get("status") == "True",
        timeout=300,
        what="2,000 files delivered",
    )
    prefix = "dev/resources/default/bulk/big/generate/5058f/generated/"
    written = [f for f in remote_files(git_remote) if f.startswith(prefix)]
    assert len(written) == COUNT
    sizes = subprocess.run(
        ["git", "--git-dir", str(git_remote), "ls-tree", "-r", "-l", "main", prefix],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    total = sum(int(line.split()[3]) for line in sizes if line.strip())
    assert total > COUNT * SIZE
    last = subprocess.run(
        ["git", "--git-dir", str(git_remote), "show", f"main:{prefix}cm-01999.yaml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "name: cm-01999" in last and "0000199900001999" in last
    # The workflow's whole history stays small: outputs travel as an artifact reference and file names only.
    history = await platform.client.get_workflow_handle(obj["_ktx"]["workflowId"]).fetch_history()
    assert len(history.to_json()) < 2_000_000
    assert "0000199900001999" not in history.to_json()
