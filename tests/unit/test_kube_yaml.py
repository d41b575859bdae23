"""object.yaml's bytes: what Kratix's reader writes with sigs.k8s.io/yaml (go-yaml v2 over JSON), pinned literally.

The small cases are go-yaml v2.4's own expectations (encode_test.go: marshalTests, TestSortedOutput); the request
shows how a whole object comes out: keys in go-yaml's order at every level, sequences not indented under their key,
timestamps and strings that read as other types double-quoted, multi-line strings as literal blocks.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.pipelines.models import ContainersOutcome, RunPipelineInput
from activities.pipelines.activity import PipelineActivities
from domain.kube_yaml import marshal, sorted_keys
from tests.unit.test_pipeline_job import run_input


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"v": "hi"}, "v: hi\n"),
        ({"v": "true"}, 'v: "true"\n'),
        ({"v": "10"}, 'v: "10"\n'),
        ({"v": ""}, 'v: ""\n'),
        ({"v": 10}, "v: 10\n"),
        ({"v": -0.1}, "v: -0.1\n"),
        ({"v": None}, "v: null\n"),
        ({"v": ["A", "B"]}, "v:\n- A\n- B\n"),
        ({"v": ["A", "B\nC"]}, "v:\n- A\n- |-\n  B\n  C\n"),
        ({"v": ["A", 1, {"B": [2, 3]}]}, "v:\n- A\n- 1\n- B:\n  - 2\n  - 3\n"),
        ({"a": {"b": "c"}}, "a:\n  b: c\n"),
        ({"a": "-"}, "a: '-'\n"),
        ({}, "{}\n"),
        ({"a": "你好"}, "a: 你好\n"),
        ({"a": "2015-02-24T18:19:39Z"}, 'a: "2015-02-24T18:19:39Z"\n'),
        ({"a": "b: c"}, "a: 'b: c'\n"),
        ({"a": "Hello #comment"}, "a: 'Hello #comment'\n"),
        ({"a": 100.5}, "a: 100.5\n"),
        (
            {
                "a": "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 abcdefghijklmnopqrstuvwxyz "
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 "
            },
            "a: 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 abcdefghijklmnopqrstuvwxyz\n"
            "  ABCDEFGHIJKLMNOPQRSTUVWXYZ 1234567890 '\n",
        ),
    ],
)
def test_go_yaml_marshal_cases(value: object, expected: str) -> None:
    assert marshal(value) == expected


def test_keys_come_in_go_yaml_order_not_byte_order() -> None:
    order = [
        "",
        ".1",
        ".2",
        ".a",
        "1",
        "2",
        "a!10",
        "a/0001",
        "a/002",
        "a/3",
        "a/10",
        "a/11",
        "a/0012",
        "a/100",
        "a~10",
        "ab/1",
        "b/1",
        "b/01",
        "b/2",
        "b/02",
        "b/3",
        "b/03",
        "b1",
        "b01",
        "b3",
        "c2.10",
        "c10.2",
        "d1",
        "d7",
        "d7abc",
        "d12",
        "d12a",
    ]
    shuffled = order[:]
    random.Random(7).shuffle(shuffled)
    assert sorted_keys(shuffled) == order
    # A non-letter sorts before any letter, which byte order puts the other way round for "_" and capitals.
    assert marshal({"aB": 1, "a_b": 2}) == "a_b: 2\naB: 1\n"


def test_numbers_go_through_go_json_first() -> None:
    assert marshal({"a": 2.0, "b": 1234567.5, "c": 0.0001, "d": 0.00001, "e": 1e20}) == (
        "a: 2\nb: 1.2345675e+06\nc: 0.0001\nd: 1e-05\ne: 1e+20\n"
    )


def test_a_resource_request_as_the_reader_writes_it() -> None:
    request = {
        "apiVersion": "example.kratix.io/v1alpha1",
        "kind": "AppConfig",
        "metadata": {
            "name": "checkout",
            "namespace": "default",
            "generation": 1,
            "labels": {"kratix.io/promise-name": "app-config", "app": "shop"},
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "uid": "7f3c9a1e-5b2d-4c8e-9f10-2a6b4d8e0c11",
        },
        "spec": {
            "replicas": 3,
            "env": ["prod", "eu-west"],
            "enabled": True,
            "ports": [{"port": 8080, "name": "http"}],
            "script": "echo hi\necho bye\n",
            "version": "1.10",
            "y": "on",
        },
        "status": {
            "message": "Resource requested",
            "conditions": [{"type": "Reconciled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:05Z"}],
        },
    }
    assert marshal(request) == (
        "apiVersion: example.kratix.io/v1alpha1\n"
        "kind: AppConfig\n"
        "metadata:\n"
        '  creationTimestamp: "2024-05-01T10:00:00Z"\n'
        "  generation: 1\n"
        "  labels:\n"
        "    app: shop\n"
        "    kratix.io/promise-name: app-config\n"
        "  name: checkout\n"
        "  namespace: default\n"
        "  uid: 7f3c9a1e-5b2d-4c8e-9f10-2a6b4d8e0c11\n"
        "spec:\n"
        "  enabled: true\n"
        "  env:\n"
        "  - prod\n"
        "  - eu-west\n"
        "  ports:\n"
        "  - name: http\n"
        "    port: 8080\n"
        "  replicas: 3\n"
        "  script: |\n"
        "    echo hi\n"
        "    echo bye\n"
        '  version: "1.10"\n'
        '  "y": "on"\n'
        "status:\n"
        "  conditions:\n"
        '  - lastTransitionTime: "2024-05-01T10:00:05Z"\n'
        '    status: "True"\n'
        "    type: Reconciled\n"
        "  message: Resource requested\n"
    )


def test_strings_that_cannot_be_plain_or_literal() -> None:
    assert marshal({"a": "x\ty", "b": "😀", "c": " lead\n", "d": "trailing \nspace"}) == (
        'a: "x\\ty"\nb: "\\U0001F600"\nc: |2\n   lead\nd: "trailing \\nspace"\n'
    )


async def test_the_pipeline_activity_hands_containers_these_bytes(tmp_path: Path) -> None:
    seen: list[bytes] = []

    class Recorder:
        name = "recorder"

        async def run(self, input: RunPipelineInput, workspace: Path) -> ContainersOutcome:
            seen.append((workspace / "input" / "object.yaml").read_bytes())
            return ContainersOutcome(failed_container="render", message="stopped after reading its input")

    run = run_input()
    run.object = {"metadata": {"name": "acid-db", "labels": {"b": "2", "a": "1"}}, "apiVersion": "v1", "kind": "X"}
    await PipelineActivities(Recorder(), ArtifactStore(tmp_path)).run_pipeline(run)
    assert seen == [b'apiVersion: v1\nkind: X\nmetadata:\n  labels:\n    a: "1"\n    b: "2"\n  name: acid-db\n']
