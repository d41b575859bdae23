"""The HTTP API fuzzed from its own OpenAPI document (schemathesis): whatever arrives, no answer is a 5xx."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
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
from hypothesis import strategies as st
from schemathesis import openapi

from service.platform import Platform
from tests.conftest import ROOT
from tests.kratix_documents import eventually, git_store_and_destinations, promise, resource
from tests.servers.git_servers import free_port

TOKEN = "fuzz-platform-token-0123456789"
# Generated kinds and names are almost never real, so each case is also sent against these objects.
EXISTING = [
    {"kind": "widget", "name": "first"},
    {"kind": "promise", "name": "widgets"},
    {"kind": "destination", "name": "dev"},
    {"kind": "gitstatestore", "name": "default"},
]
# Per operation; derandomized, so every run tries the same cases and a failure reproduces.
EXAMPLES = 25
# Stateful: scenarios of at most STEPS linked calls (apply, then get/label/delete... the object it answered).
SCENARIOS, STEPS = 40, 6
# Raw bodies for POST /apply: each a few ms to refuse, so a few hundred stay well under a minute.
RAW_BODIES = 300


async def serve_api(platform: Platform, home: Path) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    home.mkdir(parents=True)
    tokens = home / "tokens.yaml"
    tokens.write_text(
        yaml.safe_dump([{"name": "fuzz", "role": "platform", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}])
    )
    port = free_port()
    env = {
        **os.environ,
        "KTX_HOME": str(home),
        "KTX_API_PORT": str(port),
        "KTX_API_TOKENS_FILE": str(tokens),
        "KTX_TEMPORAL_ADDRESS": platform.client.service_client.config.target_host,
        "KTX_TEMPORAL_NAMESPACE": platform.client.namespace,
        "KTX_TASK_QUEUE": platform.task_queue,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(home / "api.log").open("wb"),
    )
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


def bounded_waits(case: Any) -> None:
    """A long poll (a wait's 30 s default, or what the fuzzer asked for) is not what is tested here; a 5xx is."""
    if case.path.endswith("/wait"):
        case.query = {**(case.query or {}), "timeout": 0}
    elif case.query and "wait" in case.query:
        case.query["wait"] = 0


def fuzz(schema_document: dict[str, Any], url: str, statuses: Counter[int]) -> list[str]:
    """Every operation, EXAMPLES generated cases each; returns the cases answered with a 5xx (or not at all)."""
    schema = openapi.from_dict(schema_document)
    failures: list[str] = []
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the OpenAPI document lost its operations"
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            bounded_waits(case)
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
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: "
                        f"{response.status_code} {response.text[:300]}"
                    )

        check()
    return failures


def fuzz_stateful(schema_document: dict[str, Any], url: str, statuses: Counter[tuple[str, str, int]]) -> list[str]:
    """schemathesis' state machine over the OpenAPI links: apply, then the operations on the object it answered."""
    # Only the operations the links join: every other root operation (rollouts, the console's views) would take
    # scenarios from the linked ones, and the plain fuzzing above covers them.
    schema = openapi.from_dict(schema_document).include(path_regex=r"^/(apply$|objects/)")
    assert schema.statistic.transitions.total >= 7, "POST /apply lost its links"
    failures: list[str] = []
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    serial = itertools.count()

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            bounded_waits(case)
            # A generated document is almost never a real request, so links would have nothing to follow: every
            # other apply is a real resource, with its own name, that the following steps get, label and delete.
            if case.method == "POST" and case.path == "/apply" and next(serial) % 2 == 0:
                case.media_type = "application/json"
                case.body = resource("Widget", f"stateful-{next(serial)}", {"size": "s"})

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": url, "session": session, "timeout": 60}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            statuses[(case.method, case.path, response.status_code)] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: "
                    f"{response.status_code} {response.text[:300]}"
                )

    Scenarios.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    return failures


VALID = yaml.safe_dump(resource("Widget", "raw", {"size": "s"})).encode()


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bytes that are no document, and documents broken at the byte level: control characters, invalid UTF-8,
    byte-order marks, deep nesting, huge integers, lone surrogates."""
    kind = draw(st.sampled_from(["bytes", "text", "spliced", "bom", "nested", "integer", "escape"]))
    if kind == "bytes":
        return draw(st.binary(max_size=512))
    if kind == "text":
        # Surrogates too, as the invalid UTF-8 bytes they encode to (derandomized examples follow the test's source,
        # so a reformat of this file once drew one, which a plain encode() cannot encode).
        return draw(st.text(st.characters(min_codepoint=0), max_size=256)).encode("utf-8", "surrogatepass")
    if kind == "spliced":  # a valid document with a few random bytes put in anywhere
        at = draw(st.integers(0, len(VALID)))
        return VALID[:at] + draw(st.binary(min_size=1, max_size=8)) + VALID[at:]
    if kind == "bom":
        bom = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"]))
        return bom + VALID.decode().encode(draw(st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32"])))
    if kind == "nested":
        depth = draw(st.integers(50, 20_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ('{"a": ', "}"), ("- ", "")]))
        return VALID + b"nested: " + (opener * depth + "1" + closer * depth).encode()
    if kind == "integer":
        digits = draw(st.integers(1, 20_000))
        return VALID.replace(b"size: s", b"size: " + draw(st.sampled_from([b"", b"-"])) + b"9" * digits)
    escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\ud83d\\ude00", "\\x00", "\\U0010ffff"]))
    document = json.dumps(resource("Widget", "raw", {"size": "ESCAPE"})).replace("ESCAPE", escape)
    return draw(st.sampled_from([document, document.replace('"', "'")])).encode()


def fuzz_raw_bodies(url: str, statuses: Counter[int]) -> list[str]:
    failures: list[str] = []
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    @settings(
        max_examples=RAW_BODIES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(body=raw_bodies(), content_type=st.sampled_from(["application/yaml", "application/json", "text/plain"]))
    def check(body: bytes, content_type: str) -> None:
        try:
            response = session.post(f"{url}/apply", data=body, headers={"Content-Type": content_type}, timeout=60)
        except requests.RequestException as exc:
            failures.append(f"{body[:120]!r}: no answer ({exc})")
            return
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{body[:120]!r}: {response.status_code} {response.text[:300]}")

    check()
    return failures


async def test_no_generated_request_gets_a_server_error(platform: Platform, git_remote: Path, tmp_path: Path) -> None:
    # Something to find: a store, a Destination, a Promise and one of its resources.
    for doc in [
        *git_store_and_destinations(git_remote, {"dev": {"env": "dev"}}),
        promise("widgets", "Widget"),
        resource("Widget", "first", {"size": "s"}),
    ]:
        await platform.apply(doc)
    process, url = await serve_api(platform, tmp_path / "api")
    try:
        async with httpx.AsyncClient() as http:
            document = (await http.get(f"{url}/openapi.json")).json()
        statuses: Counter[int] = Counter()
        failures = await asyncio.to_thread(
            fuzz, document, url, statuses
        )  # the worker keeps running on this loop meanwhile
        assert failures == []
        # The cases got past authentication and reached the handlers, with good and bad input alike.
        assert sum(statuses.values()) >= 100 and statuses[200] > 0 and statuses[404] > 0, statuses
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            # The objects accepted before the fuzzing are all still there.
            for path in ("/objects/promise/widgets", "/objects/destination/dev", "/objects/widget/first"):
                assert (await http.get(url + path)).status_code == 200, path

        raw: Counter[int] = Counter()
        assert await asyncio.to_thread(fuzz_raw_bodies, url, raw) == []
        # Refused as bad input, nearly all before reaching Temporal; some spliced documents still apply.
        assert sum(raw.values()) == RAW_BODIES and raw[400] > RAW_BODIES // 2, raw

        linked: Counter[tuple[str, str, int]] = Counter()
        assert await asyncio.to_thread(fuzz_stateful, document, url, linked) == []
        # The links were followed to real objects: applied, then found, labelled, deleted... each answered 200.
        followed = {(method, path) for method, path, status in linked if status == 200 and path != "/apply"}
        assert linked[("POST", "/apply", 200)] > 0 and len(followed) >= 3, linked
    finally:
        process.terminate()
        process.wait()
