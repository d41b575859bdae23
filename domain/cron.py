"""Standard 5-field cron expressions (minute hour day-of-month month day-of-week) and the allowed windows built on them.

The grammar is Vixie cron's, as Kubernetes CronJobs take it: `*`, `a`, `a-b`, `*/n`, `a-b/n`, `a/n` (a to the field's
end), comma lists, month and weekday names (JAN-DEC, SUN-SAT), 0 and 7 both Sunday. When both day fields are
restricted a day matches either (cron's rule), otherwise both. Times are wall-clock times in the window's IANA zone.

No cron library is in the platform's dependencies; this is small, pure and deterministic, so a workflow computes its
next window from `workflow.now()` and replays to the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# An expression is text from a client: short (so at most 50 list items), so parsing it is cheap whatever it holds.
CRON_MAX_CHARS = 100
# How far ahead (and back) a schedule is searched: five years holds every Feb 29 and every weekday of every date.
SEARCH_DAYS = 5 * 366 + 1

_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_WEEKDAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# (name, lowest, highest, names)
_FIELDS = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
]


@dataclass(frozen=True)
class CronSchedule:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    any_day: bool  # day of month was `*`
    any_weekday: bool  # day of week was `*`

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def _times(self) -> list[tuple[int, int]]:
        return [(h, m) for h in self.hours for m in self.minutes]

    def next_at_or_after(self, moment: datetime) -> datetime | None:
        """The first firing at or after `moment` (naive wall-clock time; part minutes round up), within SEARCH_DAYS."""
        start = moment.replace(second=0, microsecond=0)
        if start < moment:
            start += timedelta(minutes=1)
        times = self._times()
        for offset in range(SEARCH_DAYS):
            day = start.date() + timedelta(days=offset)
            if not self.matches_day(day):
                continue
            floor = (start.hour, start.minute) if offset == 0 else (0, 0)
            for hour, minute in times:
                if (hour, minute) >= floor:
                    return datetime(day.year, day.month, day.day, hour, minute)
        return None

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The last firing at or before `moment` (naive wall-clock time), within SEARCH_DAYS back."""
        times = self._times()[::-1]
        for offset in range(SEARCH_DAYS):
            day = moment.date() - timedelta(days=offset)
            if not self.matches_day(day):
                continue
            ceiling = (moment.hour, moment.minute) if offset == 0 else (23, 59)
            for hour, minute in times:
                if (hour, minute) <= ceiling:
                    return datetime(day.year, day.month, day.day, hour, minute)
        return None


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit() or len(text) > 2:
        raise ValueError(f"{field}: {text!r} is not a number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _field(text: str, low: int, high: int, names: dict[str, int], field: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or len(step_text) > 2 or int(step_text) == 0:
                raise ValueError(f"{field}: step {step_text!r} is not a number from 1 to 99")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, low, high, names, field), _value(b, low, high, names, field)
            if first > last:
                raise ValueError(f"{field}: range {base!r} runs backwards")
        else:
            first = _value(base, low, high, names, field)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return values


def parse_cron(text: str) -> CronSchedule:
    """The schedule; ValueError naming the part that is wrong."""
    if not isinstance(text, str):
        raise ValueError("must be a string of five fields")
    if len(text) > CRON_MAX_CHARS:
        raise ValueError(f"must be at most {CRON_MAX_CHARS} characters")
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"must have five fields (minute hour day-of-month month day-of-week), not {len(parts)}")
    parsed = [_field(part, low, high, names, name) for part, (name, low, high, names) in zip(parts, _FIELDS)]
    minutes, hours, days, months, weekdays = parsed
    schedule = CronSchedule(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(d % 7 for d in weekdays),
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )
    if schedule.next_at_or_after(datetime(2000, 1, 1)) is None:
        raise ValueError("never fires (no such date)")
    return schedule


def zone_of(name: str) -> ZoneInfo:
    """An IANA time zone; ValueError for a name that is not one (or would read as a path)."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise ValueError("must be an IANA time zone name such as Europe/London")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Window:
    """Work may start from each firing of `schedule` for `duration_s`, in `zone`'s wall-clock time."""

    schedule: CronSchedule
    duration_s: float
    zone: ZoneInfo

    def _utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.zone).astimezone(timezone.utc)

    def open_until(self, now: datetime) -> datetime | None:
        """When the window holding `now` (aware) closes, or None when `now` is outside it."""
        local = now.astimezone(self.zone).replace(tzinfo=None)
        start = self.schedule.last_at_or_before(local)
        if start is None:
            return None
        end = self._utc(start) + timedelta(seconds=self.duration_s)
        return end if self._utc(start) <= now < end else None

    def next_open(self, now: datetime) -> datetime | None:
        local = now.astimezone(self.zone).replace(tzinfo=None)
        start = self.schedule.next_at_or_after(local)
        return None if start is None else self._utc(start)


@dataclass(frozen=True)
class WindowState:
    open: bool
    # While open: when the last open window closes. While closed: when the next one opens (None: never again).
    until: datetime | None

    def describe(self) -> dict[str, object]:
        """As the status shows it: `open`, and `until` in RFC 3339 UTC."""
        until = self.until.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if self.until else None
        return {"open": self.open, **({"until": until} if until else {})}


def window_state(windows: list[Window], now: datetime) -> WindowState:
    """Whether work may start at `now` (aware): always, with no windows."""
    if not windows:
        return WindowState(open=True, until=None)
    ends = [end for w in windows if (end := w.open_until(now)) is not None]
    if ends:
        return WindowState(open=True, until=max(ends))
    starts = [start for w in windows if (start := w.next_open(now)) is not None]
    return WindowState(open=False, until=min(starts) if starts else None)
