"""The HTTP API fuzzed from its own OpenAPI document (schemathesis): whatever arrives, no answer is a 5xx."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import openapi

from api.platform import Platform
from tests.conftest import ROOT
from tests.kratix_documents import eventually, git_store_and_destinations, promise, resource
from tests.servers.git_servers import free_port

TOKEN = "fuzz-platform-token-0123456789"
# Generated kinds and names are almost never real, so each case is also sent against these objects.
EXISTING = [{"kind": "widget", "name": "first"}, {"kind": "promise", "name": "widgets"}, {"kind": "destination", "name": "dev"},
            {"kind": "gitstatestore", "name": "default"}]
# Per operation; derandomized, so every run tries the same cases and a failure reproduces.
EXAMPLES = 25


async def serve_api(platform: Platform, home: Path) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    home.mkdir(parents=True)
    tokens = home / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"name": "fuzz", "role": "platform", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]))
    port = free_port()
    env = {**os.environ, "KTX_HOME": str(home), "KTX_API_PORT": str(port), "KTX_API_TOKENS_FILE": str(tokens),
           "KTX_TEMPORAL_ADDRESS": platform.client.service_client.config.target_host,
           "KTX_TEMPORAL_NAMESPACE": platform.client.namespace, "KTX_TASK_QUEUE": platform.task_queue}
    process = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=(home / "api.log").open("wb"))
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        assert process.poll() is None, (home / "api.log").read_text()
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(up, bool, timeout=60, what="the API answering")
    return process, url


def fuzz(schema_document: dict[str, Any], url: str, statuses: Counter[int]) -> list[str]:
    """Every operation, EXAMPLES generated cases each; returns the cases answered with a 5xx (or not at all)."""
    schema = openapi.from_dict(schema_document)
    failures: list[str] = []
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the OpenAPI document lost its operations"
    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            # A long poll (a wait's 30 s default, or what the fuzzer asked for) is not what is tested here; a 5xx is.
            if case.path.endswith("/wait"):
                case.query = {**(case.query or {}), "timeout": 0}
            elif case.query and "wait" in case.query:
                case.query["wait"] = 0
            variants = [dict(case.path_parameters or {})]
            if case.method == "DELETE":
                pass  # deleting the real objects would leave nothing for the other operations to reach
            elif case.path_parameters and "kind" in case.path_parameters:
                variants.append({**case.path_parameters, **EXISTING[sum(statuses.values()) % len(EXISTING)]})
            elif case.path_parameters and "name" in case.path_parameters:
                variants.append({**case.path_parameters, "name": "dev"})
            for parameters in variants:
                case.path_parameters = parameters
                try:
                    response = case.call(base_url=url, session=session, timeout=60)
                except requests.RequestException as exc:
                    failures.append(f"{case.method} {case.formatted_path} {case.query}: no answer ({exc})")
                    continue
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: "
                                    f"{response.status_code} {response.text[:300]}")

        check()
    return failures


async def test_no_generated_request_gets_a_server_error(platform: Platform, git_remote: Path, tmp_path: Path) -> None:
    # Something to find: a store, a Destination, a Promise and one of its resources.
    for doc in [*git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}), promise("widgets", "Widget"),
                resource("Widget", "first", {"size": "s"})]:
        await platform.apply(doc)
    process, url = await serve_api(platform, tmp_path / "api")
    try:
        async with httpx.AsyncClient() as http:
            document = (await http.get(f"{url}/openapi.json")).json()
        statuses: Counter[int] = Counter()
        failures = await asyncio.to_thread(fuzz, document, url, statuses)  # the worker keeps running on this loop meanwhile
        assert failures == []
        # The cases got past authentication and reached the handlers, with good and bad input alike.
        assert sum(statuses.values()) >= 100 and statuses[200] > 0 and statuses[404] > 0, statuses
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            # The objects accepted before the fuzzing are all still there.
            for path in ("/objects/promise/widgets", "/objects/destination/dev", "/objects/widget/first"):
                assert (await http.get(url + path)).status_code == 200, path
    finally:
        process.terminate()
        process.wait()
