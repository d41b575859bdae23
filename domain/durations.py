"""Go-style durations ("1h30m", "10s", "500ms"), as Kratix accepts them for intervals and retryAfter."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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
    if position != len(value):
        raise ValueError(f'failed to parse duration: "{text}"')
    return total
