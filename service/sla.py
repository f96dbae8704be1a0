"""Callback SLA clocks that only run while the store is open, in the store's own time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SLA_WORKING_HOURS = 4.0  # an unhappy customer hears from us within four opening hours


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def sla_due(
    start_utc: dt.datetime,
    timezone: str = "Asia/Shanghai",
    opens: str = "09:00",
    closes: str = "21:00",
    hours: float = SLA_WORKING_HOURS,
) -> dt.datetime:
    """Naive-UTC instant by which ``hours`` of opening time have passed since ``start_utc``.

    A complaint that arrives at 22:00 is due four hours after the store opens the next morning,
    not at 02:00. Days are walked in local time, so DST changes shorten or lengthen nothing.
    """
    zone = ZoneInfo(timezone)
    open_t, close_t = _clock(opens), _clock(closes)
    if open_t >= close_t:  # open round the clock (or misconfigured): a plain wall-clock SLA
        return start_utc + dt.timedelta(hours=hours)
    remaining = dt.timedelta(hours=hours)
    cursor = start_utc.replace(tzinfo=dt.UTC).astimezone(zone)
    for _ in range(366):  # bounded: at least one opening hour a day means this ends within days
        day_open = dt.datetime.combine(cursor.date(), open_t, tzinfo=zone)
        day_close = dt.datetime.combine(cursor.date(), close_t, tzinfo=zone)
        begin = max(cursor, day_open)
        if begin < day_close:
            available = day_close.astimezone(dt.UTC) - begin.astimezone(dt.UTC)
            if remaining <= available:
                return (begin.astimezone(dt.UTC) + remaining).replace(tzinfo=None)
            remaining -= available
        cursor = dt.datetime.combine(cursor.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start_utc + dt.timedelta(hours=hours)
