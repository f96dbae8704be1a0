"""The reconcile job: settle ``unknown`` messages by asking their provider, never by resending.

Scheduled from the tick (``kick_reconcile``) with one job id per tick interval, so any number of
schedulers enqueue it once; running it twice is harmless because every change is guarded by
``status = unknown``.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import current_app
from rq.exceptions import DuplicateJobError

from campaigns.reconcile import FileLookup, Lookup, TwilioLookup, has_settled_unknown, reconcile
from channels.registry import build_channel
from database.appsession import session_scope
from database.base import utcnow
from jobs.connection import queue
from settings import Settings

log = logging.getLogger(__name__)


def lookups_for(settings: Settings) -> dict[str, Lookup]:
    """A provider lookup per channel the settings configure; SMTP has none (a human decides)."""
    lookups: dict[str, Lookup] = {}
    if settings.sms_channel == "file":
        lookups["sms"] = FileLookup("sms", settings.outbox_dir)
    elif settings.sms_channel == "twilio":
        lookups["sms"] = TwilioLookup(build_channel("sms", settings))
    if settings.email_channel == "file":
        lookups["email"] = FileLookup("email", settings.outbox_dir)
    return lookups


def reconcile_unknown(limit: int = 200) -> dict:
    """Look up settled ``unknown`` messages at their provider and record what was found."""
    settings: Settings = current_app.extensions["huifang.settings"]
    lookups = lookups_for(settings)
    try:
        with session_scope() as session:
            report = reconcile(session, lookups, limit=limit)
    finally:
        for lookup in lookups.values():
            channel = getattr(lookup, "channel", None)
            if channel is not None:
                channel.close()
    if report.counts:
        log.info("reconcile: %s", report.counts)
    return report.counts


def kick_reconcile(now: dt.datetime | None = None) -> bool:
    """Enqueue one reconcile run for this tick interval when there is something to settle."""
    now = now or utcnow()
    with session_scope() as session:
        if not has_settled_unknown(session, now):
            return False
    seconds = current_app.extensions["huifang.settings"].tick_seconds
    bucket = int(now.replace(tzinfo=dt.UTC).timestamp()) // seconds
    try:
        queue("default").enqueue(
            reconcile_unknown, job_id=f"reconcile-{bucket}", unique=True, job_timeout=600, result_ttl=3600
        )
    except DuplicateJobError:
        return False
    return True
