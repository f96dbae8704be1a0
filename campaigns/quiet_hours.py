"""Quiet-hour arithmetic in the member's own time zone: a pure function of values."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

DEFAULT_QUIET = ("21:00", "08:00")


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def _in_quiet(local: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False
    if start < end:  # e.g. 12:00–14:00
        return start <= local < end
    return local >= start or local < end  # wraps midnight, e.g. 21:00–08:00


def next_allowed(now_utc: dt.datetime, timezone: str, quiet: tuple[str, str] = DEFAULT_QUIET) -> dt.datetime:
    """The earliest naive-UTC instant ≥ now at which the member's local clock is outside quiet hours."""
    zone = ZoneInfo(timezone)
    start, end = _clock(quiet[0]), _clock(quiet[1])
    local = now_utc.replace(tzinfo=dt.UTC).astimezone(zone)
    if not _in_quiet(local.time(), start, end):
        return now_utc
    day = (
        local.date()
        if (start > end and local.time() < end) or start < end
        else local.date() + dt.timedelta(1)
    )
    wake = dt.datetime.combine(day, end, tzinfo=zone)
    # A wake-up time that falls in a DST gap does not exist locally; step to the first real minute after it.
    while wake.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != wake.replace(tzinfo=None):
        wake += dt.timedelta(minutes=1)
    result = wake.astimezone(dt.UTC).replace(tzinfo=None)
    return max(result, now_utc)


def is_quiet(now_utc: dt.datetime, timezone: str, quiet: tuple[str, str] = DEFAULT_QUIET) -> bool:
    """True when ``now_utc`` falls inside quiet hours in ``timezone``."""
    return next_allowed(now_utc, timezone, quiet) != now_utc
