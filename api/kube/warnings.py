"""Admission warnings as the Kubernetes API sends them: one `Warning: 299 - "<text>"` header each (RFC 7234's
warn-code 299, "miscellaneous persistent warning", with no agent), which kubectl prints on stderr as
`Warning: <text>`. Bounded and escaped as k8s.io/apiserver's warning recorder does."""

from __future__ import annotations

from starlette.responses import Response

# The apiserver's bounds: past 4 KiB in all, each warning is cut to 256 characters and the rest are dropped.
TOTAL_MAX = 4 * 1024
ITEM_MAX = 256


def bounded(warnings: list[str]) -> list[str]:
    """Duplicates dropped, and text with control characters (which a header cannot carry) left out, as the
    apiserver leaves it out; then the size bounds."""
    kept = [w for w in dict.fromkeys(warnings) if w and all(c.isprintable() for c in w)]
    if sum(len(w) for w in kept) <= TOTAL_MAX:
        return kept
    out: list[str] = []
    total = 0
    for text in kept:
        text = text[:ITEM_MAX]
        if total + len(text) > TOTAL_MAX:
            break
        out.append(text)
        total += len(text)
    return out


def header_value(text: str) -> bytes:
    """RFC 7230's quoted-string: `"` and `\\` escaped; UTF-8, as Go's client reads it."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{quoted}"'.encode()


def with_warnings(response: Response, warnings: list[str]) -> Response:
    for text in bounded(warnings):
        response.raw_headers.append((b"warning", header_value(text)))
    return response
