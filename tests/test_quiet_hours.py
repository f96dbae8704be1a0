"""Quiet hours: a table of cases, and a property that no allowed instant is ever quiet, across DST."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.quiet_hours import is_quiet, next_allowed

ZONES = ["Asia/Shanghai", "Europe/London", "America/Los_Angeles", "Australia/Sydney", "UTC"]


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        (dt.datetime(2026, 6, 15, 4, 0), "Asia/Shanghai", dt.datetime(2026, 6, 15, 4, 0)),  # 12:00 local
        (dt.datetime(2026, 6, 15, 14, 0), "Asia/Shanghai", dt.datetime(2026, 6, 16, 0, 0)),  # 22:00 → 08:00
        (dt.datetime(2026, 6, 15, 22, 30), "Asia/Shanghai", dt.datetime(2026, 6, 16, 0, 0)),  # 06:30 → 08:00
        (
            dt.datetime(2026, 3, 29, 0, 30),
            "Europe/London",
            dt.datetime(2026, 3, 29, 7, 0),
        ),  # DST starts that night
        (dt.datetime(2026, 10, 25, 5, 0), "Europe/London", dt.datetime(2026, 10, 25, 8, 0)),  # DST ends
    ],
)
def test_next_allowed_table(utc, zone, expected):
    assert next_allowed(utc, zone) == expected


@settings(max_examples=400, deadline=None)
@given(
    moment=st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31)),
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(["21:00", "22:30", "20:00", "01:30"]),
    end=st.sampled_from(["08:00", "07:00", "09:30", "03:00"]),
)
def test_never_sends_inside_quiet_hours(moment, zone, start, end):
    allowed = next_allowed(moment, zone, (start, end))
    assert allowed >= moment
    assert not is_quiet(allowed, zone, (start, end))
    local = allowed.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).time()
    s, e = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
    inside = (local >= s or local < e) if s > e else (s <= local < e)
    assert not inside
    # No needless delay: the minute before a deferred send was still quiet.
    if allowed > moment:
        assert is_quiet(allowed - dt.timedelta(minutes=1), zone, (start, end))
        assert allowed - moment <= dt.timedelta(hours=25)
