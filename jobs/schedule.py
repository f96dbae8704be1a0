"""Periodic jobs (the tick, the dashboard snapshot, the nightly lifetime refit), scheduled with deterministic job ids so restarts
and extra workers never duplicate them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from rq.exceptions import DuplicateJobError

from jobs.connection import queue


def _schedule_once(when: dt.datetime, func, job_id: str, app=None, **options) -> bool:
    """Enqueue ``func`` at ``when`` under ``job_id`` unless a job with that id is already there."""
    try:
        queue("default", app).enqueue_at(when, func, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        return False
    return True


def _bucket(moment: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(moment.replace(tzinfo=dt.UTC).timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def schedule_next_tick(now: dt.datetime, app=None) -> bool:
    """Schedule the tick for the next interval boundary; False when that tick is already scheduled."""
    from jobs.tasks import tick

    seconds = (app or current_app).extensions["huifang.settings"].tick_seconds
    when = _bucket(now, seconds) + dt.timedelta(seconds=seconds)
    return _schedule_once(when, tick, f"tick-{when:%Y%m%dT%H%M%S}", app, result_ttl=3600, failure_ttl=86400)


def run_tick_now(app=None) -> bool:
    """Enqueue an immediate tick (used at start-up); a tick already queued for this second wins."""
    from jobs.tasks import tick

    now = dt.datetime.now(dt.UTC)
    try:
        queue("default", app).enqueue(
            tick, job_id=f"tick-now-{now:%Y%m%dT%H%M%S}", unique=True, result_ttl=3600
        )
    except DuplicateJobError:
        return False
    return True


def schedule_dashboard_refresh(now: dt.datetime, app=None) -> bool:
    """Schedule the dashboard snapshot for the next 10-minute boundary; False when already scheduled."""
    from campaigns.dashboard_snapshot import REFRESH_MINUTES
    from jobs.dashboard import refresh_dashboard

    when = _bucket(now, REFRESH_MINUTES * 60) + dt.timedelta(minutes=REFRESH_MINUTES)
    return _schedule_once(
        when,
        refresh_dashboard,
        f"dashboard-{when:%Y%m%dT%H%M}",
        app,
        job_timeout=1800,
        result_ttl=3600,
        failure_ttl=86400,
    )


def next_daily_run(now: dt.datetime, at: str, zone: str) -> dt.datetime:
    """The first ``at`` (HH:MM, local to ``zone``) strictly after naive-UTC ``now``, as aware UTC."""
    tz = ZoneInfo(zone)
    local = now.replace(tzinfo=dt.UTC).astimezone(tz)
    hours, minutes = (int(part) for part in at.split(":"))
    for days in (0, 1, 2):  # two days ahead covers a clock that skips the hour on a DST change
        candidate = dt.datetime.combine(
            local.date() + dt.timedelta(days=days), dt.time(hours, minutes), tzinfo=tz
        ).astimezone(dt.UTC)
        if candidate > now.replace(tzinfo=dt.UTC):
            return candidate
    raise AssertionError("unreachable: a day always has a next occurrence")


def schedule_nightly_fit(now: dt.datetime, app=None) -> bool:
    """Schedule the next nightly lifetime refit; False when that night's run is already scheduled."""
    from jobs.lifetimes import fit_lifetimes

    settings = (app or current_app).extensions["huifang.settings"]
    when = next_daily_run(now, settings.lifetime_fit_at, settings.timezone)
    return _schedule_once(
        when,
        fit_lifetimes,
        f"lifetimes-fit-{when:%Y%m%dT%H%M}",
        app,
        job_timeout=3600,
        result_ttl=86400,
        failure_ttl=7 * 86400,
    )
