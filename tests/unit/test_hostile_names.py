"""The grammars and bounds that keep names out of command lines and paths, and waits within what a timer holds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from activities.pipelines.podman_runner import ContainerRuntime, log_path
from domain.config import PlatformConfig
from domain.documents import Container, GitStateStoreSpec, Promise
from domain.durations import GO_MAX_DURATION_S, MAX_WAIT_S, check_wait, parse_duration
from domain.errors import InvalidDocument
from domain.grammar import IMAGE_REFERENCE_MAX, dns_label, env_var_name, image_reference
from domain.promise_api import check_promise, reconciliation_interval
from domain.workflow_control import parse_workflow_control, retry_after_error

GOOD_IMAGES = [
    "busybox",
    "localhost/ktx-test/behave:v0.1.0",
    "ghcr.io/syntasso/kratix-pipeline-utility:v0.0.1",
    "registry.example.com:5000/team_a/img__x.y-z:1.0-rc_2",
    "[::1]:5000/img:tag",
    "Registry.Example.com/x",
    "docker.io/library/alpine:3.19@sha256:" + "a" * 64,
    "alpine@sha512:" + "0" * 128,
]
BAD_IMAGES = [
    "--volume=/etc:/hostetc",
    "--network=host",
    "-v",
    "busybox --privileged",
    "Busybox",
    " busybox",
    "busybox ",
    "img:tag\n",
    "ghcr.io/../x",
    "a//b",
    "img:ëtag",
    "a@sha256:abc",
    "a:b:c",
    "/abs",
    "x/",
    "img:" + "t" * 129,
    "x" * 256,
    "a" * (IMAGE_REFERENCE_MAX + 1),
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_oci_references_are_accepted(image: str) -> None:
    assert image_reference("image", image) == []


@pytest.mark.parametrize("image", BAD_IMAGES)
def test_anything_else_is_refused_and_nothing_refused_could_be_an_option(image: str) -> None:
    assert image_reference("image", image)


def test_no_accepted_reference_starts_with_a_dash_and_matching_is_linear() -> None:
    """The OCI grammar is matched with Python's backtracking `re`: bounded in length, and no input near the bound
    takes measurable time (the nested repetitions cannot blow up on these shapes)."""
    for text in ["a-" * 255 + "!", "A." * 250 + "/!", "a-a." * 120 + "/A", "a_a" * 160 + "!", "a:1/" * 120 + "!"]:
        started = time.perf_counter()
        assert image_reference("image", text)
        assert time.perf_counter() - started < 0.05
    assert image_reference("image", "-" + GOOD_IMAGES[1])


@pytest.mark.parametrize(
    "name, ok",
    [
        ("c", True),
        ("render-2", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("../x", False),
        ("-c", False),
        ("C", False),
        ("a.b", False),
        ("", False),
        ("a/b", False),
        ("a_b", False),
    ],
)
def test_container_and_pipeline_names_are_dns_1123_labels(name: str, ok: bool) -> None:
    assert (dns_label("name", name) == []) is ok


@pytest.mark.parametrize(
    "name, ok",
    [
        ("PATH", True),
        ("my.var-1", True),
        ("_X", True),
        ("-x", True),
        ("1X", False),
        ("A=B", False),
        ("A B", False),
        (".", False),
        ("..x", False),
        ("", False),
        ("Ä", False),
    ],
)
def test_env_var_names_follow_kubernetes(name: str, ok: bool) -> None:
    assert (env_var_name("env", name) == []) is ok


def test_podman_arguments_end_options_before_the_image(tmp_path: Path) -> None:
    container = Container(
        name="c",
        image="--volume=/etc:/x",
        command=["sh"],
        args=["--network=host"],
        working_dir="-w",
        env=[{"name": "E", "value": "-e"}],
    )
    args = ContainerRuntime("podman", []).run_args("n", container, {tmp_path: ("/kratix/input", True)}, {"K": "--v"})
    separator = args.index("--")
    assert args[separator + 1 :] == ["--volume=/etc:/x", "--network=host"]
    # Before the separator every value is glued to its option, so none is an argument of its own.
    assert all(a.startswith("--") for a in args[2:separator]), args
    assert "--env=K=--v" in args and "--workdir=-w" in args and f"--volume={tmp_path}:/kratix/input:ro" in args


@pytest.mark.parametrize(
    "run_id, container",
    [("r", "../x"), ("../r", "c"), ("r/s", "c"), (".", "c"), ("r", ".hidden"), ("r", ""), ("r", "a/b")],
)
def test_log_paths_stay_under_the_logs_directory(tmp_path: Path, run_id: str, container: str) -> None:
    with pytest.raises(ValueError, match="refusing log path"):
        log_path(tmp_path, run_id, container)
    assert (
        log_path(tmp_path, "default-first-configure-0a1b", "render")
        == tmp_path / "default-first-configure-0a1b" / "render.log"
    )


@pytest.mark.parametrize(
    "branch",
    [
        "-x",
        "--upload-pack=x",
        "a..b",
        "a b",
        "a/",
        "/a",
        "a//b",
        ".a",
        "a/.b",
        "a.lock",
        "a.",
        "@",
        "a@{1}",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "a\x00",
        "",
        "x" * 256,
    ],
)
def test_git_branches_follow_check_ref_format(branch: str) -> None:
    with pytest.raises(ValueError, match="Git branch name"):
        GitStateStoreSpec(url="file:///r", branch=branch)
    for fine in ("main", "feature/x", "release-1.0", "v1.2", "a@b"):
        assert GitStateStoreSpec(url="file:///r", branch=fine).branch == fine
    with pytest.raises(ValueError, match="not starting with '-'"):
        GitStateStoreSpec(url="--upload-pack=touch /tmp/x")


# --- durations and numbers ---


def test_durations_past_gos_limit_do_not_parse_as_in_kratix() -> None:
    assert parse_duration("2562047h") == 2562047 * 3600.0 < GO_MAX_DURATION_S
    for text in ("2562048h", "999999999h", "1" * 400 + "h"):
        with pytest.raises(ValueError, match="failed to parse duration"):
            parse_duration(text)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("banana", "failed to parse"),
        ("59s", "at least 1m"),
        ("721h", "at most 720h"),
        ("999999999h", "failed to parse"),
        (5, "failed to parse"),
    ],
)
def test_waits_are_bounded(text: object, reason: str) -> None:
    [error] = check_wait("f", text, minimum_s=60, minimum="1m")
    assert error.field == "f" and reason in error.reason
    assert check_wait("f", "720h", minimum_s=60, minimum="1m") == [] and parse_duration("720h") == MAX_WAIT_S


def test_retry_after_out_of_range_is_a_reason_never_a_timer() -> None:
    with pytest.raises(InvalidDocument, match='failed to parse retry duration: "999999999h"'):
        parse_workflow_control({"retryAfter": "999999999h"})
    control = parse_workflow_control({"retryAfter": "721h"})
    assert control is not None and "must be at most 720h" in (retry_after_error(control) or "")
    assert retry_after_error(parse_workflow_control({"retryAfter": "720h"})) is None  # type: ignore[arg-type]


def test_an_interval_accepted_before_the_bounds_still_reads_and_never_fails() -> None:
    """A Promise in a workflow already: nonsense falls back to the platform default, as Kratix ignores a bad
    annotation."""
    doc = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "p", "annotations": {"kratix.io/reconciliation-interval": "999999999h"}},
    }
    assert reconciliation_interval(Promise.model_validate(doc)) is None
    with pytest.raises(InvalidDocument, match="reconciliation-interval"):
        check_promise(Promise.model_validate(doc))


def test_backoff_never_overflows_however_many_failures() -> None:
    config = PlatformConfig()
    assert [config.backoff(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert config.backoff(5000) == config.backoff_cap_s
    assert config.backoff(10**9, config.delete_retry_base_s, config.delete_retry_cap_s) == config.delete_retry_cap_s


def test_every_fault_of_a_promise_is_named_at_once() -> None:
    pipeline = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "Bad_Name"},
        "spec": {
            "containers": [{"name": "../c", "image": "--network=host", "env": [{"name": "1X", "value": ""}]}],
            "jobOptions": {"backoffLimit": 101},
        },
    }
    doc = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": "p"},
        "spec": {"workflows": {"resource": {"configure": [pipeline]}}},
    }
    with pytest.raises(InvalidDocument) as caught:
        check_promise(Promise.model_validate(doc))
    prefix = "spec.workflows.resource.configure[0]"
    assert {e.field for e in caught.value.errors} == {
        f"{prefix}.metadata.name",
        f"{prefix}.spec.containers[0].name",
        f"{prefix}.spec.containers[0].image",
        f"{prefix}.spec.containers[0].env[0].name",
        f"{prefix}.spec.jobOptions.backoffLimit",
    }


def test_an_argument_or_env_value_over_linuxs_limit_is_refused_at_apply() -> None:
    """Linux's MAX_ARG_STRLEN: a runtime handed a longer string could never start the container (podman said
    "Argument list too long" at run time, after the Promise was admitted)."""
    from domain.pipeline_rules import MAX_ARGUMENT_BYTES, check_container

    fits = Container(name="c", image="img:1", env=[{"name": "OK", "value": "x" * MAX_ARGUMENT_BYTES}])
    assert check_container(fits, "c") == []
    over = Container(
        name="c",
        image="img:1",
        env=[{"name": "OK", "value": "x" * (MAX_ARGUMENT_BYTES + 1)}],
        args=["é" * (MAX_ARGUMENT_BYTES // 2 + 1)],
    )
    assert [(e.field, e.reason.split(":")[0]) for e in check_container(over, "c")] == [
        ("c.env[0].value", "Too long"),
        ("c.args[0]", "Too long"),
    ]
