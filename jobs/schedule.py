"""The periodic tick, scheduled with deterministic job ids so restarts and extra workers never duplicate it."""

from __future__ import annotations

import datetime as dt

from flask import current_app
from rq.exceptions import DuplicateJobError

from jobs.connection import queue


def _bucket(moment: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(moment.replace(tzinfo=dt.UTC).timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def schedule_next_tick(now: dt.datetime, app=None) -> bool:
    """Schedule the tick for the next interval boundary; False when that tick is already scheduled."""
    from jobs.tasks import tick

    seconds = (app or current_app).extensions["huifang.settings"].tick_seconds
    when = _bucket(now, seconds) + dt.timedelta(seconds=seconds)
    try:
        queue("default", app).enqueue_at(
            when, tick, job_id=f"tick-{when:%Y%m%dT%H%M%S}", unique=True, result_ttl=3600, failure_ttl=86400
        )
    except DuplicateJobError:
        return False
    return True


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
