"""Bounds on what a pipeline leaves and what a request carries (issue 14, classes 1 and 7), on real files and processes.

The integration suite (tests/integration/test_hostile_pipeline_output.py) runs the same through real containers;
these pin each bound and the memory it keeps, without Temporal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from activities.artifacts.store import ArtifactStore
from activities.pipelines.container_logs import BoundedLog, read_tail, sweep_logs
from activities.artifacts.output_files import OverLimit, output_files, read_regular
from activities.pipelines.workspaces import Workspaces
from domain.errors import InvalidDocument
from domain.labels import LABELS_MAX_BYTES, check_label_change, label_key_error, label_value_error
from domain.parsing import MalformedInput, load_metadata
from domain.scheduling import parse_destination_selectors
from domain.status import STATUS_MAX_BYTES, check_status_file, merge_status_file
from tests.unit.test_input_limits import billion_laughs

ROOT = Path(__file__).resolve().parents[2]


# --- metadata: shape and size ---


def _nested(levels: int) -> list:
    value: list = [1]
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "incoming, reason",
    [
        ([1, 2], "must be a map of status fields, not a list"),
        (7, "not a number"),
        ("text", "not a string"),
        ({"kratix": {}}, "reserved"),
        ({"conditions": "banana"}, "must be a list of conditions"),
        ({"conditions": [{"type": "Ready"}, 3]}, "conditions[1]: must be a map with a string `type`"),
        ({"conditions": [{"status": "True"}]}, "conditions[0]"),
        ({"healthStatus": "fine"}, "healthStatus: must be a map"),
        ({"a": _nested(40)}, "nested deeper than 32"),
        ({"message": "x" * STATUS_MAX_BYTES}, f"over the limit of {STATUS_MAX_BYTES}"),
    ],
)
def test_a_status_file_must_be_a_bounded_map(incoming, reason) -> None:
    with pytest.raises(InvalidDocument, match=reason.replace("[", r"\[").replace("]", r"\]")):
        check_status_file(incoming)
    with pytest.raises(InvalidDocument):
        merge_status_file({}, incoming, promise_workflow=False)


def test_merged_conditions_cannot_outgrow_the_status_limit() -> None:
    """Conditions merge by type, so each run may add some: the bound is on what the object would carry."""
    status: dict = {}
    batch = [{"type": f"T{i:05d}", "status": "True", "message": "m" * 100} for i in range(1000)]
    status = merge_status_file(status, {"conditions": batch}, promise_workflow=False)
    with pytest.raises(InvalidDocument, match="merged into the status, it would be"):
        for start in range(1000, 10_000, 1000):
            more = [{**c, "type": f"T{start + i:05d}"} for i, c in enumerate(batch)]
            status = merge_status_file(status, {"conditions": more}, promise_workflow=False)
    assert len(status["conditions"]) < 3000


def test_metadata_is_read_with_the_api_loader() -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedInput, match="aliases may add at most"):
        load_metadata(billion_laughs())
    assert time.perf_counter() - started < 0.5
    assert load_metadata("") is None
    # JSON-shaped, as a status must be to travel in Temporal: a date stays the text written.
    assert load_metadata("when: 2024-01-01\n---\nsecond: document\n") == {"when": "2024-01-01"}


@pytest.mark.parametrize(
    "data, reason",
    [
        ([{"matchLabels": ["env", "dev"]}], "must be a map of label keys"),
        ([{"matchLabels": {"env": 5}}], "a label value must be a string"),
        ([{"matchLabels": {"env": "not ok"}}], "a valid label must be"),
        ([{"matchLabels": {"-bad": "x"}}], "name part must be"),
        ([{"matchLabels": {"env": "dev"}, "directory": ["a"]}], "directory: must be a string"),
        ([{"matchLabels": {"env": "dev"}, "directory": ".."}], "must be a directory of /kratix/output"),
        ([{"matchLabels": {"env": "dev"}, "directory": f"d{i}"} for i in range(300)], "over the limit of 256"),
    ],
)
def test_destination_selectors_hold_kubernetes_labels(data, reason) -> None:
    with pytest.raises(InvalidDocument, match=reason):
        parse_destination_selectors(data)


# --- labels ---


@pytest.mark.parametrize(
    "key, ok",
    [
        ("app", True),
        ("kratix.io/paused", True),
        ("a.b-c/x_y.z", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("", False),
        ("/x", False),
        ("a/", False),
        ("A.io/x", False),
        ("a b", False),
        ("-x", False),
        (f"{'p' * 254}/x", False),
    ],
)
def test_label_keys_follow_kubernetes(key: str, ok: bool) -> None:
    assert (label_key_error(key) is None) == ok


@pytest.mark.parametrize(
    "value, ok",
    [("", True), ("v1.2_3-x", True), ("x" * 63, True), ("x" * 64, False), ("a b", False), ("-x", False), (5, False)],
)
def test_label_values_follow_kubernetes(value, ok: bool) -> None:
    assert (label_value_error(value) is None) == ok


def test_a_label_change_is_bounded_with_the_labels_it_joins() -> None:
    with pytest.raises(InvalidDocument, match=r"set\['big'\].*\(1500002 characters\)"):
        check_label_change({"big": "x" * 1_500_000}, [])
    current = {f"k{i:05d}": "v" * 63 for i in range(3000)}
    check_label_change({"one": "more"}, [], {})
    with pytest.raises(InvalidDocument, match=f"over the limit of {LABELS_MAX_BYTES}"):
        check_label_change({f"n{i:05d}": "v" * 63 for i in range(1000)}, [], current)
    check_label_change({f"n{i:05d}": "v" * 63 for i in range(1000)}, list(current)[:2000], current)
    errors = pytest.raises(InvalidDocument, check_label_change, {f"bad {i}": "v" for i in range(500)}, [])
    assert len(errors.value.errors) == 20  # the reason stays readable, and small


# --- output: count, names, streaming ---


def test_the_output_walk_stops_at_its_limits(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i:02d}.yaml").write_text("x")
    assert len(output_files(tmp_path, max_files=30)) == 30
    with pytest.raises(OverLimit, match="holds more than 29 files"):
        output_files(tmp_path, max_files=29)
    with pytest.raises(OverLimit, match="more than 100 bytes"):
        output_files(tmp_path, max_name_bytes=100)
    empty = tmp_path / "dirs"
    for i in range(100):
        (empty / f"d{i}").mkdir(parents=True)
    with pytest.raises(OverLimit):
        output_files(empty, max_files=40)


def test_a_metadata_file_is_not_read_past_its_limit(tmp_path: Path) -> None:
    (tmp_path / "status.yaml").write_bytes(b"x" * 1001)
    with pytest.raises(OverLimit, match="over the limit of 1000 bytes"):
        read_regular(tmp_path / "status.yaml", 1000)
    assert len(read_regular(tmp_path / "status.yaml", 1001)) == 1001


def test_a_large_output_is_stored_without_reading_it_whole(tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.mkdir()
    chunk = os.urandom(1024 * 1024)
    with (output / "big.yaml").open("wb") as big:
        for _ in range(64):
            big.write(chunk)
    store = ArtifactStore(tmp_path / "artifacts")
    tracemalloc.start()
    digest, files = store.put_tree(output)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert files == ["big.yaml"]
    assert (store.path(digest, "big.yaml")).stat().st_size == 64 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, peak  # was the whole file, twice
    assert store.put_tree(output)[0] == digest


# --- logs ---


def test_a_bounded_log_keeps_the_end_and_says_what_it_dropped(tmp_path: Path) -> None:
    path = tmp_path / "run" / "c.log"
    log = BoundedLog(path, keep=1000)
    for i in range(1000):
        log.write(f"line {i:04d}\n".encode())
    log.close()
    text = path.read_text()
    first, rest = text.split("\n", 1)
    assert first.startswith("[ktx: the first ") and "bytes of this container's output were dropped" in first
    assert rest.endswith("line 0999\n") and 500 <= len(rest) <= 1000
    assert list(path.parent.iterdir()) == [path]
    assert read_tail(path, 10) == ("line 0999\n", len(text))

    small = BoundedLog(tmp_path / "small.log", keep=1000)
    small.write(b"hello\n")
    small.close()
    assert (tmp_path / "small.log").read_bytes() == b"hello\n"


def test_logs_are_kept_for_the_newest_runs_of_each_pipeline(tmp_path: Path) -> None:
    now = time.time()
    for i in range(8):
        run = tmp_path / f"default-web-configure-{i:08x}"
        (run).mkdir()
        (run / "c.log").write_text("x")
        os.utime(run, (now - 100 + i, now - 100 + i))
    other = tmp_path / "default-db-configure-0000abcd"
    other.mkdir()
    old = tmp_path / "default-old-configure-0000abcd"
    old.mkdir()
    os.utime(old, (now - 40 * 86400, now - 40 * 86400))
    (tmp_path / "temporal.log").write_text("not a run")  # `ktx up` keeps its processes' logs here too
    assert sweep_logs(tmp_path, keep=5, now=now) == 4
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["default-db-configure-0000abcd"] + [f"default-web-configure-{i:08x}" for i in range(3, 8)] + [
        "temporal.log"
    ]


# --- workspaces ---

_HOLDER = """
import sys, time
from pathlib import Path
from activities.pipelines.workspaces import Workspaces
workspace = Workspaces(Path(sys.argv[1])).new()
(workspace / "output").mkdir()
print(workspace, flush=True)
time.sleep(600)
"""


def test_workspaces_of_a_killed_worker_are_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    holders = [
        subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        dead, alive = (Path(h.stdout.readline().strip()) for h in holders)  # type: ignore[union-attr]
        assert dead.is_dir() and alive.is_dir()
        holders[0].send_signal(signal.SIGKILL)
        holders[0].wait(timeout=10)
        mine = Workspaces(root)
        own = mine.new()
        assert mine.sweep() == 1
        assert not dead.exists() and not (root / f"{dead.parent.name}.lock").exists()
        assert alive.is_dir() and own.is_dir()
    finally:
        for holder in holders:
            holder.kill()
            holder.wait(timeout=10)
