"""The 5-field cron parser and the allowed windows built on it (domain/cron.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.cron import Window, parse_cron, window_state, zone_of

UTC = timezone.utc


@pytest.mark.parametrize(
    "text, after, expected",
    [
        ("* * * * *", datetime(2026, 3, 1, 10, 0, 30), datetime(2026, 3, 1, 10, 1)),
        ("*/15 * * * *", datetime(2026, 3, 1, 10, 1), datetime(2026, 3, 1, 10, 15)),
        ("0 22 * * 1-5", datetime(2026, 3, 6, 23, 0), datetime(2026, 3, 9, 22, 0)),  # Friday night -> Monday
        ("30 2 29 2 *", datetime(2026, 3, 1), datetime(2028, 2, 29, 2, 30)),  # the next leap day
        ("0 0 1 JAN,jul *", datetime(2026, 2, 1), datetime(2026, 7, 1)),
        ("0 9 * * SUN", datetime(2026, 3, 2), datetime(2026, 3, 8, 9, 0)),
        ("0 9 * * 7", datetime(2026, 3, 2), datetime(2026, 3, 8, 9, 0)),  # 7 is Sunday too
        ("5/20 1 * * *", datetime(2026, 3, 1, 1, 6), datetime(2026, 3, 1, 1, 25)),  # a/n runs to the field's end
        ("0-10/5 3 * * *", datetime(2026, 3, 1, 3, 6), datetime(2026, 3, 1, 3, 10)),
        # Both day fields restricted: either matches (the 13th, or a Friday).
        ("0 0 13 * 5", datetime(2026, 3, 1), datetime(2026, 3, 6)),
    ],
)
def test_next_firing(text: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(text).next_at_or_after(after) == expected


def test_last_firing_at_or_before() -> None:
    schedule = parse_cron("0 22 * * 1-5")
    assert schedule.last_at_or_before(datetime(2026, 3, 8, 12, 0)) == datetime(2026, 3, 6, 22, 0)
    assert schedule.last_at_or_before(datetime(2026, 3, 9, 22, 0)) == datetime(2026, 3, 9, 22, 0)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("* * * *", "five fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range"),
        ("* * 0 * *", "day of month: 0 is out of range"),
        ("* * * 13 *", "month: 13 is out of range"),
        ("* * * * 8", "day of week: 8 is out of range"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "runs backwards"),
        ("a * * * *", "not a number"),
        ("0 0 30 2 *", "never fires"),
        ("-1 * * * *", "not a number"),
        ("--help * * * *", "not a number"),
        ("1," * 70 + "1 * * * *", "characters"),
    ],
)
def test_refused_expressions_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_cron(text)


def test_zones_are_iana_names_only() -> None:
    assert str(zone_of("Europe/London")) == "Europe/London"
    for bad in ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", ""]:
        with pytest.raises(ValueError):
            zone_of(bad)


def test_a_window_is_open_for_its_duration_in_its_zone() -> None:
    # 22:00-02:00 London time, weekdays; in March 2026 London is UTC until the 29th, then UTC+1.
    window = Window(parse_cron("0 22 * * 1-5"), 4 * 3600, zone_of("Europe/London"))
    monday_night = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)
    assert window.open_until(monday_night) == datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert window.open_until(datetime(2026, 3, 10, 2, 0, tzinfo=UTC)) is None  # the end is outside
    # After the clocks change, 22:00 London is 21:00 UTC.
    assert window.next_open(datetime(2026, 3, 30, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 30, 21, 0, tzinfo=UTC)


def test_window_state_over_many_windows() -> None:
    nights = Window(parse_cron("0 22 * * *"), 3600, zone_of("UTC"))
    mornings = Window(parse_cron("0 6 * * *"), 2 * 3600, zone_of("UTC"))
    noon = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    assert window_state([], noon).open
    closed = window_state([nights, mornings], noon)
    assert (closed.open, closed.until) == (False, datetime(2026, 3, 9, 22, 0, tzinfo=UTC))
    inside = window_state([nights, mornings], datetime(2026, 3, 10, 7, 0, tzinfo=UTC))
    assert (inside.open, inside.until) == (True, datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
