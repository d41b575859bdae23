"""The grammars of the names that become file paths, labels or command-line arguments.

Kubernetes' own rules (apimachinery's validation package) for container, pipeline and env var names (label keys
and values are domain/labels.py's), and the OCI distribution reference grammar for images. A value that passes cannot
start with '-' (so no runtime reads it as an option) and cannot hold '/' where it becomes one path component. Each
check returns the FieldErrors for one value, worded as the Kubernetes API server words them, so callers can report
every fault at once.
"""

from __future__ import annotations

import re

from domain.errors import FieldError
from domain.validation import validate_namespace

# apimachinery IsEnvVarName.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")

# github.com/distribution/reference regexp.go, the grammar podman, containerd and the kubelet parse images with.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
# The distribution library's NameTotalLengthMax; the whole reference is bounded before matching (a tag is at most
# 128 characters, a sha512 digest 135), so the match never sees more than this.
IMAGE_NAME_MAX = 255
IMAGE_REFERENCE_MAX = 512


def dns_label(field: str, value: object) -> list[FieldError]:
    """Kubernetes' container-name rule (IsDNS1123Label): also ktx's for pipeline names, which become path components,
    label values and parts of container and Job names."""
    return validate_namespace(value, field)


def env_var_name(field: str, value: object) -> list[FieldError]:
    if not isinstance(value, str) or not value:
        return [FieldError(field, "Required value")]
    if not _ENV_NAME.fullmatch(value):
        return [
            FieldError(
                field,
                f"Invalid value: {value!r}: a valid environment variable name must consist of "
                "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
            )
        ]
    if value == "." or value.startswith(".."):
        return [FieldError(field, f"Invalid value: {value!r}: must not be '.' or start with '..'")]
    return []


def image_reference(field: str, value: object) -> list[FieldError]:
    """An OCI reference: [domain[:port]/]path[:tag][@digest]; never an option, never blank or padded."""
    if not isinstance(value, str) or not value:
        return [FieldError(field, "Required value")]
    if len(value) > IMAGE_REFERENCE_MAX:
        return [FieldError(field, f"must be no more than {IMAGE_REFERENCE_MAX} characters")]
    match = IMAGE_REFERENCE.fullmatch(value)
    if match is None:
        return [
            FieldError(
                field,
                f"Invalid value: {value!r}: must be an image reference "
                "([registry[:port]/]repository[:tag][@digest], repository in lower case)",
            )
        ]
    if len(match.group("name")) > IMAGE_NAME_MAX:
        return [
            FieldError(
                field, f"Invalid value: {value!r}: the repository name must be no more than {IMAGE_NAME_MAX} characters"
            )
        ]
    return []
