"""RYLA_WARM_HOURS (backend/warm_hours.py): the schedule's arithmetic, offline, with time
zones and daylight-saving changes, and the scheduled function's body with a fake
autoscaler.

2026's changes: Europe/Berlin on Sunday 29 March (02:00 CET -> 03:00 CEST) and Sunday
25 October (03:00 CEST -> 02:00 CET); America/New_York on Sunday 8 March and Sunday
1 November."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from backend.warm_hours import (WarmHoursError, apply_warm_hours, desired_min_containers,
                                is_warm_time, next_change, parse_warm_hours)

BERLIN_OFFICE = parse_warm_hours("Mon-Fri 09:00-18:00 Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


@pytest.mark.parametrize(("now", "warm"), [
    (utc(2026, 1, 12, 7, 59), False),   # Monday 08:59 CET
    (utc(2026, 1, 12, 8, 0), True),     # Monday 09:00 CET
    (utc(2026, 1, 12, 16, 59), True),   # Monday 17:59 CET
    (utc(2026, 1, 12, 17, 0), False),   # Monday 18:00 CET: the end is not inside
    (utc(2026, 1, 17, 10, 0), False),   # Saturday
    (utc(2026, 7, 13, 7, 0), True),     # Monday 09:00 CEST: summer, an hour earlier in UTC
    (utc(2026, 7, 13, 6, 59), False),
    (utc(2026, 7, 13, 16, 0), False),   # Monday 18:00 CEST
])
def test_working_hours_follow_the_wall_clock_of_their_zone(now: datetime, warm: bool) -> None:
    assert is_warm_time(BERLIN_OFFICE, now) is warm


def test_the_monday_after_each_berlin_change_starts_at_nine_local() -> None:
    # Friday before the March change: 09:00 CET is 08:00 UTC; the Monday after: 07:00 UTC
    assert next_change(BERLIN_OFFICE, utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 7, 0)
    # Friday before the October change: 18:00 CEST is 16:00 UTC; Monday 09:00 CET is 08:00 UTC
    assert next_change(BERLIN_OFFICE, utc(2026, 10, 23, 12, 0)) == utc(2026, 10, 23, 16, 0)
    assert next_change(BERLIN_OFFICE, utc(2026, 10, 23, 16, 0)) == utc(2026, 10, 26, 8, 0)


def test_a_window_across_the_spring_change_is_an_hour_shorter_in_utc() -> None:
    night = parse_warm_hours("Sun 01:00-04:00 Europe/Berlin")
    start = next_change(night, utc(2026, 3, 28, 12, 0))
    assert start == utc(2026, 3, 29, 0, 0)  # 01:00 CET
    end = next_change(night, start)
    assert end == utc(2026, 3, 29, 2, 0)  # 04:00 CEST: two hours, not three
    assert is_warm_time(night, utc(2026, 3, 29, 1, 30))  # 03:30 CEST (02:30 never happened)
    assert not is_warm_time(night, end)


def test_a_window_across_the_autumn_change_is_an_hour_longer_in_utc() -> None:
    night = parse_warm_hours("Sun 01:00-04:00 Europe/Berlin")
    start = next_change(night, utc(2026, 10, 24, 12, 0))
    assert start == utc(2026, 10, 24, 23, 0)  # 01:00 CEST, Saturday in UTC
    assert next_change(night, start) == utc(2026, 10, 25, 3, 0)  # 04:00 CET: four hours
    for hour in (0, 1, 2):  # 02:00 CEST, 02:00 CET (the repeated hour), 03:00 CET
        assert is_warm_time(night, utc(2026, 10, 25, hour, 30))


@pytest.mark.parametrize(("now", "warm"), [
    (utc(2026, 3, 6, 14, 0), True),    # Friday 09:00 EST (UTC-5)
    (utc(2026, 3, 6, 13, 59), False),
    (utc(2026, 3, 9, 13, 0), True),    # Monday 09:00 EDT (UTC-4), after Sunday's change
    (utc(2026, 3, 9, 12, 59), False),
    (utc(2026, 11, 2, 13, 30), False),  # Monday 08:30 EST, after November's change
    (utc(2026, 11, 2, 14, 0), True),
])
def test_a_us_zone_changes_on_its_own_sundays(now: datetime, warm: bool) -> None:
    assert is_warm_time(parse_warm_hours("Mon-Fri 09:00-17:00 America/New_York"), now) is warm


def test_several_day_ranges_and_windows() -> None:
    hours = parse_warm_hours("Mon-Thu,Sat 10:00-16:00 UTC; Fri 10:00-13:00 UTC")
    assert [is_warm_time(hours, utc(2026, 1, 12 + d, 12, 0)) for d in range(7)] == [
        True, True, True, True, True, True, False]  # Monday 12 January to Sunday
    assert is_warm_time(hours, utc(2026, 1, 16, 13, 30)) is False  # Friday ends at 13:00
    assert next_change(hours, utc(2026, 1, 16, 11, 0)) == utc(2026, 1, 16, 13, 0)
    assert next_change(hours, utc(2026, 1, 16, 13, 0)) == utc(2026, 1, 17, 10, 0)


def test_a_day_range_wraps_over_the_weekend() -> None:
    hours = parse_warm_hours("Sat-Mon 08:00-12:00 UTC")
    assert [is_warm_time(hours, utc(2026, 1, 12 + d, 9, 0)) for d in range(7)] == [
        True, False, False, False, False, True, True]


def test_midnight_edges_and_a_night_written_as_two_windows() -> None:
    night = parse_warm_hours("Fri 22:00-24:00 UTC; Sat 00:00-06:00 UTC")
    assert is_warm_time(night, utc(2026, 1, 16, 23, 59, 59))  # Friday's last second
    assert is_warm_time(night, utc(2026, 1, 17, 0, 0))  # Saturday midnight
    assert not is_warm_time(night, utc(2026, 1, 16, 0, 0))  # Friday midnight
    # the two windows meet at midnight: one change at 22:00, the next at 06:00
    assert next_change(night, utc(2026, 1, 16, 12, 0)) == utc(2026, 1, 16, 22, 0)
    assert next_change(night, utc(2026, 1, 16, 22, 0)) == utc(2026, 1, 17, 6, 0)


def test_always_warm_never_changes() -> None:
    always = parse_warm_hours("Mon-Sun 00:00-24:00 UTC")
    assert is_warm_time(always, utc(2026, 5, 3, 4, 5))
    assert next_change(always, utc(2026, 5, 3, 4, 5)) is None


@pytest.mark.parametrize(("spec", "says"), [
    ("", "empty"),
    ("Mon-Fri 09:00-18:00", "DAYS HH:MM-HH:MM ZONE"),
    ("Mon-Fry 09:00-18:00 UTC", "'Fry' in"),
    ("Mon, 09:00-18:00 UTC", "an empty day"),
    ("Mon,,Tue 09:00-18:00 UTC", "an empty day"),
    ("Mon-Fri 9-18 UTC", "not a time"),
    ("Mon-Fri 09:00 UTC", "not a time range"),
    ("Mon-Fri 25:00-26:00 UTC", "'25:00'"),
    ("Mon-Fri 09:60-18:00 UTC", "'09:60'"),
    ("Fri 22:00-06:00 UTC", "runs past midnight is two windows"),
    ("Mon 10:00-10:00 UTC", "ends at or before it starts"),
    ("Mon-Fri 09:00-18:00 Europe/Berlinn", "is not a time zone"),
    ("Mon-Fri 09:00-18:00 ../etc", "is not a time zone"),
    ("Mon 09:00-10:00 UTC;", "an empty window"),
])
def test_a_bad_spec_is_refused_saying_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(WarmHoursError) as caught:
        parse_warm_hours(spec)
    assert says in str(caught.value)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_warm_time(BERLIN_OFFICE, datetime(2026, 1, 12, 9, 0))


def test_min_containers_is_one_in_hours_and_switches_on_ahead_only() -> None:
    assert desired_min_containers(BERLIN_OFFICE, utc(2026, 1, 12, 8, 0)) == 1
    assert desired_min_containers(BERLIN_OFFICE, utc(2026, 1, 12, 7, 55)) == 0
    assert desired_min_containers(BERLIN_OFFICE, utc(2026, 1, 12, 7, 55), ahead_s=360) == 1
    assert desired_min_containers(BERLIN_OFFICE, utc(2026, 1, 12, 17, 0), ahead_s=360) == 0


class FakeAutoscaler:
    """Stands for ComfyUIWorker().update_autoscaler: keeps what it was told."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **settings: Any) -> None:
        self.calls.append(settings)


def test_the_scheduled_body_sets_min_containers_for_the_hour_and_repeats_harmlessly() -> None:
    autoscaler = FakeAutoscaler()
    morning = apply_warm_hours(BERLIN_OFFICE, utc(2026, 1, 12, 8, 2), autoscaler)
    again = apply_warm_hours(BERLIN_OFFICE, utc(2026, 1, 12, 8, 7), autoscaler)
    evening = apply_warm_hours(BERLIN_OFFICE, utc(2026, 1, 12, 17, 2), autoscaler)
    assert autoscaler.calls == [{"min_containers": 1}, {"min_containers": 1}, {"min_containers": 0}]
    assert (morning.warm, morning.next_change) == (True, utc(2026, 1, 12, 17, 0))
    assert again == morning
    assert evening.min_containers == 0 and evening.next_change == utc(2026, 1, 13, 8, 0)
    assert "until 2026-01-13 08:00 UTC" in evening.describe()
