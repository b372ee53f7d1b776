"""Working hours: when one GPU container is kept warm (RYLA_WARM_HOURS).

A spec is one or more windows separated by `;`, each `DAYS HH:MM-HH:MM ZONE`:

    Mon-Fri 09:00-18:00 Europe/Berlin
    Mon-Thu,Sat 10:00-16:00 UTC; Fri 10:00-13:00 UTC

DAYS is a comma-separated list of days (`Mon`) and ranges (`Mon-Fri`; `Sat-Mon` wraps
over the week's end); ZONE is an IANA time zone. Times are wall-clock times in that zone,
so 09:00 stays 09:00 across daylight-saving changes. A window ends at or before midnight
(`24:00` is allowed): one that runs past midnight is written as two windows
(`Fri 22:00-24:00 UTC; Sat 00:00-06:00 UTC`).

Modal-free: the scheduled function in backend/modal_app.py calls `apply_warm_hours` with
the GPU class's `update_autoscaler`; the tests call it with a fake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # datetime.weekday() order
WARM_CONTAINERS = 1  # in working hours; none outside them
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
_END_OF_DAY = time.max  # stands for 24:00


class WarmHoursError(ValueError):
    """A RYLA_WARM_HOURS spec that cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # datetime.weekday() numbers
    start: time
    end: time  # time.max for 24:00
    zone: ZoneInfo

    def contains(self, local: datetime) -> bool:
        """Whether a wall-clock time in this window's zone is inside it (start <= t < end)."""
        wall = local.time().replace(tzinfo=None)
        return (local.weekday() in self.days and self.start <= wall
                and (self.end == _END_OF_DAY or wall < self.end))

    def edges_utc(self, day: date) -> list[datetime]:
        """Where this window starts and ends on `day` (its zone's calendar), as UTC instants."""
        if day.weekday() not in self.days:
            return []
        end = (datetime.combine(day + timedelta(days=1), time(0), self.zone) if self.end == _END_OF_DAY
               else datetime.combine(day, self.end, self.zone))
        return [datetime.combine(day, self.start, self.zone).astimezone(timezone.utc),
                end.astimezone(timezone.utc)]


@dataclass(frozen=True)
class WarmHours:
    spec: str
    windows: tuple[Window, ...]


def _day(name: str, window: str) -> int:
    for number, known in enumerate(DAY_NAMES):
        if name.strip().lower() == known.lower():
            return number
    raise WarmHoursError(f"{name.strip()!r} in {window!r} is not a day; use {', '.join(DAY_NAMES)}")


def _days(text: str, window: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        if not part.strip():
            raise WarmHoursError(f"an empty day in {window!r}; write e.g. Mon-Fri or Mon,Wed")
        first, _, last = part.partition("-")
        start = _day(first, window)
        stop = _day(last, window) if last else start
        days.update((start + i) % 7 for i in range((stop - start) % 7 + 1))  # Sat-Mon wraps
    return frozenset(days)


def _time(text: str, window: str) -> time:
    match = _TIME.match(text)
    hours, minutes = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    if (hours, minutes) == (24, 0):
        return _END_OF_DAY
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise WarmHoursError(f"{text!r} in {window!r} is not a time; write HH:MM, 00:00 to 24:00")
    return time(hours, minutes)


def _window(text: str) -> Window:
    parts = text.split()
    if len(parts) != 3:
        raise WarmHoursError(f"{text!r} is not `DAYS HH:MM-HH:MM ZONE`, e.g. "
                             "`Mon-Fri 09:00-18:00 Europe/Berlin`")
    days_text, hours_text, zone_name = parts
    start_text, dash, end_text = hours_text.partition("-")
    if not dash:
        raise WarmHoursError(f"{hours_text!r} in {text!r} is not a time range; write HH:MM-HH:MM")
    start, end = _time(start_text, text), _time(end_text, text)
    if start == _END_OF_DAY:
        raise WarmHoursError(f"{text!r} starts at 24:00; start at 00:00 of the next day instead")
    if end <= start:
        raise WarmHoursError(
            f"{hours_text!r} in {text!r} ends at or before it starts; a window that runs past "
            f"midnight is two windows, e.g. `Fri 22:00-24:00 {zone_name}; Sat 00:00-06:00 {zone_name}`")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WarmHoursError(f"{zone_name!r} in {text!r} is not a time zone; use an IANA name "
                             "such as Europe/Berlin, America/New_York or UTC") from None
    return Window(_days(days_text, text), start, end, zone)


def parse_warm_hours(spec: str) -> WarmHours:
    """The windows of a RYLA_WARM_HOURS spec; WarmHoursError names what is wrong."""
    texts = [part.strip() for part in spec.split(";")]
    if not any(texts):
        raise WarmHoursError("RYLA_WARM_HOURS is empty; e.g. `Mon-Fri 09:00-18:00 Europe/Berlin`")
    if not all(texts):
        raise WarmHoursError(f"an empty window in {spec!r}: windows are separated by one `;`")
    return WarmHours(spec, tuple(_window(text) for text in texts))


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(timezone.utc)


def is_warm_time(hours: WarmHours, now: datetime) -> bool:
    """Whether `now` (an aware datetime) falls in one of the windows."""
    now = _utc(now)
    return any(w.contains(now.astimezone(w.zone)) for w in hours.windows)


def desired_min_containers(hours: WarmHours, now: datetime, *, ahead_s: float = 0.0) -> int:
    """GPU containers to keep warm now: one in working hours, none outside. `ahead_s`
    switches on that much early (the schedule's period plus a cold start), so that a GPU
    is warm when the hours begin; switching off is never early."""
    soon = _utc(now) + timedelta(seconds=ahead_s)
    return WARM_CONTAINERS if is_warm_time(hours, now) or is_warm_time(hours, soon) else 0


def next_change(hours: WarmHours, now: datetime) -> datetime | None:
    """The next instant (UTC) at which `is_warm_time` changes; None if it never does (a
    spec warm around the clock on every day)."""
    now = _utc(now)
    warm = is_warm_time(hours, now)
    edges: set[datetime] = set()
    for w in hours.windows:
        today = now.astimezone(w.zone).date()
        for offset in range(-1, 9):  # a week ahead, and yesterday's window still open
            edges.update(w.edges_utc(today + timedelta(days=offset)))
    # between two edges nothing changes: the first later edge with another state is it
    for edge in sorted(e for e in edges if e > now):
        if is_warm_time(hours, edge) != warm:
            return edge
    return None


@dataclass(frozen=True)
class WarmHoursDecision:
    min_containers: int
    warm: bool
    next_change: datetime | None

    def describe(self) -> str:
        until = f" until {self.next_change:%Y-%m-%d %H:%M} UTC" if self.next_change else ""
        return f"min_containers={self.min_containers} ({'in' if self.warm else 'outside'} working hours{until})"


def apply_warm_hours(hours: WarmHours, now: datetime, update_autoscaler: Callable[..., object], *,
                     ahead_s: float = 0.0) -> WarmHoursDecision:
    """The body of the scheduled function: set the GPU class's min_containers for `now`.

    It sets the value on every run, not only at a change: the same value again changes
    nothing, and a `modal deploy` resets the autoscaler to the decorator's values, which
    the next run then corrects."""
    minimum = desired_min_containers(hours, now, ahead_s=ahead_s)
    update_autoscaler(min_containers=minimum)
    return WarmHoursDecision(minimum, is_warm_time(hours, now), next_change(hours, now))
