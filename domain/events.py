"""A short event list per object, like `kubectl describe` shows: repeated events are counted, not repeated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

EVENTS_KEPT = 30


class Event(BaseModel):
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    first_seen: str
    last_seen: str
    count: int = 1


def record_event(
    events: list[Event], type_: Literal["Normal", "Warning"], reason: str, message: str, now: str
) -> list[Event]:
    last = events[-1] if events else None
    if last is not None and (last.type, last.reason, last.message) == (type_, reason, message):
        last.count += 1
        last.last_seen = now
        return events
    events = events + [Event(type=type_, reason=reason, message=message, first_seen=now, last_seen=now)]
    return events[-EVENTS_KEPT:]
