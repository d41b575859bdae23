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
