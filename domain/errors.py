"""Errors of the domain, each naming the field at fault so the API can answer 422 precisely."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class InvalidDocument(ValueError):
    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


class DocumentTooLarge(ValueError):
    """One document over the per-document limit: it would not fit in Temporal's payloads (2 MB each) as state and
    memo."""

    def __init__(self, size: int, limit: int):
        super().__init__(
            f"the document is {size} bytes as JSON, over the limit of {limit} bytes per document "
            "(KTX_API_MAX_DOCUMENT); large content belongs in a pipeline's output, not in the request"
        )


class NotFound(LookupError):
    """The object, or what it refers to, does not exist (the API's 404)."""


class Conflict(RuntimeError):
    """The object cannot be changed that way now (the API's 409): ended, being replaced, set by its document."""


class StaleResourceVersion(Conflict):
    """A change made from an old read: its metadata.resourceVersion is not the object's current one (a 409, in
    Kubernetes' words, which the Kubernetes routes prefix with `Operation cannot be fulfilled on <resource> "name"`)."""

    def __init__(self) -> None:
        super().__init__("the object has been modified; please apply your changes to the latest version and try again")


def errors_from_pydantic(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        reason = err["msg"]
        if err["type"] == "missing":
            reason = "Required value"
        elif err["type"] == "extra_forbidden":
            reason = "field not declared in schema"
        elif err["type"] == "literal_error":
            reason = f"Unsupported value: {err.get('input')!r}: {err['msg']}"
        errors.append(FieldError(field, reason))
    return errors
