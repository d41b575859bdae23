"""Go-style durations ("1h30m", "10s", "500ms"), as Kratix accepts them for intervals and retryAfter."""

from __future__ import annotations

import re

from domain.errors import FieldError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Go's time.Duration is an int64 of nanoseconds: ParseDuration refuses anything longer (about 292 years), and so
# does Kratix for every duration it reads.
GO_MAX_DURATION_S = (2**63 - 1) / 1e9
# ktx's bound on any wait a document or a pipeline asks for (reconciliation intervals, retryAfter): far above any
# cadence Kratix documents (10h by default), far below what a timer or a datetime can hold. A longer wait is better
# a suspension a person resumes.
MAX_WAIT_S = 30 * 24 * 3600.0
MAX_WAIT = "720h"


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; raises ValueError with Kratix's wording on nonsense."""
    value = text.strip()
    if value in ("0", ""):
        if value == "0":
            return 0.0
        raise ValueError(f'failed to parse duration: "{text}"')
    position, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        position = match.end()
    if position != len(value) or total > GO_MAX_DURATION_S:
        raise ValueError(f'failed to parse duration: "{text}"')
    return total


def check_wait(field: str, text: object, minimum_s: float = 0.0, minimum: str = "0s") -> list[FieldError]:
    """A wait a document asks for: a Go duration between `minimum` and MAX_WAIT, else the reason, naming `field`."""
    try:
        seconds = parse_duration(str(text))
    except ValueError as exc:
        return [FieldError(field, f"Invalid value: {text!r}: {exc}")]
    if seconds < minimum_s:
        return [FieldError(field, f"Invalid value: {text!r}: must be at least {minimum}")]
    if seconds > MAX_WAIT_S:
        return [FieldError(field, f"Invalid value: {text!r}: must be at most {MAX_WAIT} (30 days)")]
    return []


def format_duration(seconds: float) -> str:
    """Go's short form of a duration, as a person wrote it: 600 is "10m", 5400 "1h30m", 2.5 "2.5s"."""
    whole, fraction = divmod(seconds, 1)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    secs_part = f"{secs + fraction:.3f}".rstrip("0").rstrip(".")
    return text + (f"{secs_part}s" if secs_part != "0" or not text else "")
