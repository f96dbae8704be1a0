"""The periodic dashboard snapshot as an RQ job: recompute the heavy charts, then schedule the next run."""

from __future__ import annotations

import logging

from campaigns.dashboard_snapshot import refresh_dashboard as refresh
from database.appsession import session_scope
from database.base import utcnow

log = logging.getLogger(__name__)


def refresh_dashboard() -> dict:
    """Recompute and store the dashboard's charts; idempotent, reschedules itself."""
    started = utcnow()
    with session_scope() as session:
        refresh(session, started)
    from jobs.schedule import schedule_dashboard_refresh

    schedule_dashboard_refresh(started)
    seconds = (utcnow() - started).total_seconds()
    log.info("dashboard snapshot refreshed in %.2f s", seconds)
    return {"seconds": round(seconds, 2)}
