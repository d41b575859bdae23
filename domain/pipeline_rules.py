"""What a Pipeline may say, checked when its Promise is applied: every name that becomes a path, a label or an
argument by Kubernetes' grammar, images by the OCI reference grammar, and the numbers that reach timers bounded.

A Promise can come from a team's compound pipeline writing into the platform Destination, so none of it is trusted:
an image `--volume=/etc:/x` would be a container runtime option, a container name `../x` a path out of the logs
directory. The runners check again before use (activities/pipelines/podman_runner.py).
"""

from __future__ import annotations

from domain.documents import Container, Pipeline
from domain.errors import FieldError
from domain.durations import check_wait, format_duration, parse_duration
from domain.kube.pipeline_token import parse_permissions
from domain.grammar import dns_label, env_var_name, image_reference
from domain.labels import label_errors, label_key_error
from domain.pod_fields import check_pod_fields, check_volumes
from domain.names import NAME_PATTERN, SUBDOMAIN_MAX
from domain.validation import validate_name

# Kubernetes' Job has no upper bound; with ktx's doubling delays capped at 6 minutes, 100 retries is about ten hours
# of one failing pipeline, past which a failure is a failure to show, not to retry.
MAX_BACKOFF_LIMIT = 100
RESTART_POLICIES = ("OnFailure", "Never")
# Kubernetes' IsValidUserID / IsValidGroupID.
MAX_ID = 2**31 - 1
# A Pipeline's deadline (ktx): Kratix's Pipeline has no such field, and refuses unknown fields in jobOptions, so it is
# an annotation, which Kratix carries to the Job's Pod and otherwise ignores. A run that outlives it is stopped and is
# a failed run, as a Job past its activeDeadlineSeconds.
PIPELINE_TIMEOUT = "ktx.io/pipeline-timeout"
# The default is an hour: it was every run's limit before (the activity's start-to-close timeout), so no pipeline
# that ran before fails now, and a hung container holds its slot an hour at most. At least a second (below that a
# container cannot start); at most a day: a run longer than that holds a slot, a workspace and a heartbeat for more
# than a day, and is better split or made asynchronous with retryAfter.
DEFAULT_PIPELINE_TIMEOUT_S = 3600.0
MIN_PIPELINE_TIMEOUT_S = 1.0
MAX_PIPELINE_TIMEOUT_S = 24 * 3600.0


def check_pipeline(pipeline: Pipeline, field: str) -> list[FieldError]:
    """Every fault of one Pipeline, each named from `field` (the Pipeline's path in its Promise)."""
    errors = dns_label(f"{field}.metadata.name", pipeline.metadata.name)
    # Kratix checks pipeline labels (they label its Jobs); annotation keys follow the same grammar in Kubernetes.
    errors += label_errors(f"{field}.metadata.labels", pipeline.metadata.labels)
    errors += [
        FieldError(f"{field}.metadata.annotations[{key!r}]", reason)
        for key in pipeline.metadata.annotations
        if (reason := label_key_error(key))
    ]
    spec = pipeline.spec
    errors += check_volumes(spec.volumes, f"{field}.spec.volumes")
    for index, ref in enumerate(spec.image_pull_secrets):
        errors += validate_name(
            f"{field}.spec.imagePullSecrets[{index}].name",
            ref.get("name"),
            max_length=SUBDOMAIN_MAX,
            pattern=NAME_PATTERN,
        )
    names = tuple(c.name for c in spec.containers)
    for index, container in enumerate(spec.containers):
        where = f"{field}.spec.containers[{index}]"
        errors += check_container(container, where)
        errors += check_pod_fields(container.to_doc(), spec.volumes, where, names)
    job = spec.job_options
    if job is not None and job.backoff_limit is not None and not 0 <= job.backoff_limit <= MAX_BACKOFF_LIMIT:
        errors.append(
            FieldError(
                f"{field}.spec.jobOptions.backoffLimit",
                f"Invalid value: {job.backoff_limit}: must be between 0 and {MAX_BACKOFF_LIMIT}",
            )
        )
    errors += _timeout_errors(
        f"{field}.metadata.annotations[{PIPELINE_TIMEOUT!r}]", pipeline.metadata.annotations.get(PIPELINE_TIMEOUT)
    )
    if spec.rbac is not None and spec.rbac.service_account is not None:
        errors += validate_name(
            f"{field}.spec.rbac.serviceAccount",
            spec.rbac.service_account,
            max_length=SUBDOMAIN_MAX,
            pattern=NAME_PATTERN,
        )
    if spec.rbac is not None:
        # The pipeline's token carries these rules (domain/kube/pipeline_token.py): bounded, and each a PolicyRule.
        errors += parse_permissions(spec.rbac.permissions, f"{field}.spec.rbac.permissions")[1]
    if spec.node_selector:
        errors += label_errors(f"{field}.spec.nodeSelector", spec.node_selector)
    if spec.restart_policy is not None and spec.restart_policy not in RESTART_POLICIES:
        # A Job's Pod template takes only these (the apiserver refuses the Job otherwise).
        errors.append(
            FieldError(
                f"{field}.spec.restartPolicy",
                f"Unsupported value: {spec.restart_policy[:64]!r}: supported values: {', '.join(RESTART_POLICIES)}",
            )
        )
    return errors


def _timeout_errors(field: str, value: str | None) -> list[FieldError]:
    if value is None:
        return []
    errors = check_wait(field, value, MIN_PIPELINE_TIMEOUT_S, format_duration(MIN_PIPELINE_TIMEOUT_S))
    if not errors and parse_duration(value) > MAX_PIPELINE_TIMEOUT_S:
        errors.append(
            FieldError(field, f"Invalid value: {value!r}: must be at most {format_duration(MAX_PIPELINE_TIMEOUT_S)}")
        )
    return errors


def timed_out(timeout_s: float) -> str:
    """The reason a run past its deadline failed, as status and events show it."""
    return (
        f"timed out after {format_duration(timeout_s)} (the deadline set by {PIPELINE_TIMEOUT} or KTX_PIPELINE_TIMEOUT)"
    )


def pipeline_timeout_s(pipeline: Pipeline, default_s: float) -> float:
    """The Pipeline's deadline: its annotation, else the platform's default. A value past the bounds (a Promise
    admitted before they were checked) is held to them, so no run goes without a deadline."""
    value = pipeline.metadata.annotations.get(PIPELINE_TIMEOUT)
    try:
        seconds = parse_duration(value) if value is not None else default_s
    except ValueError:
        seconds = default_s
    return min(max(seconds, MIN_PIPELINE_TIMEOUT_S), MAX_PIPELINE_TIMEOUT_S)


def check_container(container: Container, field: str) -> list[FieldError]:
    errors = dns_label(f"{field}.name", container.name) + image_reference(f"{field}.image", container.image)
    for index, env in enumerate(container.env):
        errors += env_var_name(f"{field}.env[{index}].name", env.name)
        errors += _argument(f"{field}.env[{index}].value", env.value)
    for key in ("command", "args"):
        for index, value in enumerate(getattr(container, key) or []):
            errors += _argument(f"{field}.{key}[{index}]", value)
    errors += _argument(f"{field}.workingDir", container.working_dir)
    context = container.security_context or {}
    for key in ("runAsUser", "runAsGroup"):
        value = context.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID):
            errors.append(
                FieldError(
                    f"{field}.securityContext.{key}",
                    f"Invalid value: {value!r}: must be between 0 and {MAX_ID}, inclusive",
                )
            )
    return errors


# Linux's MAX_ARG_STRLEN: no single argument or environment string of a process may be longer, so a runtime given one
# (podman's `--env=NAME=VALUE`, the container's own exec) could never start the container. Less the room `NAME=`
# takes, kept simple by leaving a KiB.
MAX_ARGUMENT_BYTES = 128 * 1024 - 1024


def _argument(field: str, value: str | None) -> list[FieldError]:
    # No process argument or environment can hold a NUL: the runtime could never start the container.
    if value is not None and "\0" in value:
        return [FieldError(field, "Invalid value: must not contain a NUL character")]
    if value is not None and len(value.encode()) > MAX_ARGUMENT_BYTES:
        return [
            FieldError(
                field,
                f"Too long: {len(value.encode())} bytes, over the {MAX_ARGUMENT_BYTES} a process "
                "argument or environment value may hold",
            )
        ]
    return []
