"""RQ jobs: thin shells that open a session, call the domain, commit, and enqueue follow-up work.

They take ids and plain values, run inside the app context the worker pushed, and are idempotent.
Follow-up work is enqueued only after the rows it needs are committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time

from flask import current_app

from campaigns.delivery import apply_parked_statuses
from campaigns.health import pause_failing_campaigns
from campaigns.scheduler import tick as scheduler_tick
from campaigns.sending import SendConfig, claim_batch, expire_stale_claims, has_due, send_claimed
from channels.registry import build_channel
from database.appsession import session_scope
from database.base import utcnow
from jobs.connection import queue, redis
from jobs.rate_limit import RateLimiter
from service.intake import handle_reply
from settings import Settings

log = logging.getLogger(__name__)
CHANNEL_QUEUES = {"sms": "sms", "email": "email"}


def _settings() -> Settings:
    return current_app.extensions["huifang.settings"]


def tick() -> dict:
    """Find everything due, write it to the outbox, then start the senders; reschedules itself."""
    now = utcnow()
    with session_scope() as session:
        expired = expire_stale_claims(session, now)
        parked = apply_parked_statuses(session, now)
        result = scheduler_tick(session, now)
    drains = kick_senders()
    swept = sweep_replies()
    from jobs.schedule import schedule_next_tick

    schedule_next_tick(now)
    summary = {
        "inserted": result.total,
        "stale_to_unknown": expired,
        "parked_statuses": parked,
        "drains": drains,
        "replies_swept": swept,
    }
    log.info("tick: %s", summary)
    return summary


def kick_senders() -> list[str]:
    """Enqueue a drain for each channel that has due rows and no drain already waiting."""
    started = []
    with session_scope() as session:
        due = [c for c in CHANNEL_QUEUES if has_due(session, c)]
    for channel in due:
        q = queue(CHANNEL_QUEUES[channel])
        if q.count < 2:
            q.enqueue(drain, channel, job_timeout=600, result_ttl=60, failure_ttl=86400)
            started.append(channel)
    return started


def drain(channel: str, max_batches: int = 50) -> dict:
    """Send due messages of one channel in claimed batches until none are due (or the budget is spent)."""
    settings = _settings()
    sender = build_channel(channel, settings)
    throttle = _limiter(channel, settings)
    totals: dict[str, int] = {}
    try:
        for _ in range(max_batches):
            with session_scope() as session:
                ids = claim_batch(session, channel, settings.send_batch_size)
            if not ids:
                break
            with session_scope() as session:
                report = send_claimed(session, sender, ids, _send_config(settings), before_send=throttle)
                paused = pause_failing_campaigns(session)
            if paused:
                log.warning("paused campaigns %s after too many send errors", paused)
            for state, n in report.counts.items():
                totals[state] = totals.get(state, 0) + n
        else:
            queue(CHANNEL_QUEUES[channel]).enqueue(drain, channel, job_timeout=600, result_ttl=60)
    finally:
        sender.close()
    return totals


def _send_config(settings: Settings) -> SendConfig:
    return SendConfig(settings.public_url, settings.secret_key, settings.reply_address)


def _limiter(channel: str, settings: Settings):
    rate = settings.sms_rate_per_second if channel == "sms" else settings.email_rate_per_second
    if not rate:
        return None
    sender = settings.twilio_messaging_service_sid or settings.twilio_from or settings.email_from
    return RateLimiter(redis(), f"{channel}:{sender}", rate).acquire


def process_reply(inbound_id: int) -> dict:
    """Process one stored inbound reply (idempotent)."""
    with session_scope() as session:
        outcome, task_id = handle_reply(session, inbound_id, secret_key=_settings().secret_key)
    return {"status": outcome.status.value, "intent": outcome.intent, "task_id": task_id}


REPLIES_PENDING_KEY = "huifang:replies-pending"
# A web process that saw a drain pending less than SIGNAL_WINDOW ago skips its own signal; every
# drain reads once more DRAIN_GRACE after it cleared the key, so a reply committed inside that
# window is still read by that drain (see ``signal_replies``). DRAIN_GRACE must not be shorter.
SIGNAL_WINDOW = 0.05
DRAIN_GRACE = 0.2
_drain_seen_at = -math.inf


def signal_replies(*, coalesce: bool = False) -> bool:
    """Make sure a reply drain is on its way: one SET NX per signal, one job per burst of replies.

    The database, not the queue, says what is pending: the drain reads every stored, unprocessed
    reply, so a lost job or a Redis restart only delays processing until the next signal or sweep.

    ``coalesce`` (the webhooks) skips the round trip when this process saw the key set less than
    SIGNAL_WINDOW ago. That is safe: the key was there at that moment, so the drain that will clear
    it has not started; it clears it later and reads again DRAIN_GRACE after that, which is after
    this caller's commit.
    """
    global _drain_seen_at
    now = time.monotonic()  # taken before the SET: the key is seen no earlier than this
    if coalesce and now - _drain_seen_at < SIGNAL_WINDOW:
        return False
    started = False
    if redis().set(REPLIES_PENDING_KEY, "1", nx=True, ex=30):
        queue("default").enqueue(process_pending_replies, job_timeout=1800, result_ttl=60)
        started = True
    _drain_seen_at = now
    return started


def process_pending_replies(batch: int = 500) -> dict:
    """Process every stored reply still waiting, oldest first; each in its own transaction."""
    from sqlalchemy import select

    from campaigns.inbound import InboundMessage, InboundStatus

    # Cleared first: a reply stored from now on signals a new drain, so none can fall between two.
    redis().delete(REPLIES_PENDING_KEY)
    cleared_at = time.monotonic()
    counts: dict[str, int] = {}
    failed: set[int] = set()
    while True:
        with session_scope() as session:
            stmt = select(InboundMessage.id).where(InboundMessage.status == InboundStatus.RECEIVED)
            if failed:
                stmt = stmt.where(InboundMessage.id.not_in(failed))
            ids = session.scalars(stmt.order_by(InboundMessage.id).limit(batch)).all()
        for inbound_id in ids:
            try:
                status = process_reply(inbound_id)["status"]
            except Exception as exc:  # one bad reply must not hold up the others; it is kept with its error
                log.exception("reply %s could not be processed", inbound_id)
                _mark_reply_failed(inbound_id, exc)
                failed.add(inbound_id)
                status = "failed"
            counts[status] = counts.get(status, 0) + 1
        if len(ids) < batch:
            wait = cleared_at + DRAIN_GRACE - time.monotonic()
            if wait <= 0:
                return counts
            time.sleep(wait)  # then read again: a webhook that skipped its signal counts on it


def _mark_reply_failed(inbound_id: int, exc: Exception) -> None:
    from campaigns.inbound import InboundMessage, InboundStatus

    with session_scope() as session:
        row = session.get(InboundMessage, inbound_id)
        if row is not None and row.status is InboundStatus.RECEIVED:
            row.status, row.error = InboundStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]


def sweep_replies(older_than_seconds: int = 60) -> int:
    """Start a drain when stored replies have waited too long (e.g. Redis lost the queued job)."""
    from sqlalchemy import func, select

    from campaigns.inbound import InboundMessage, InboundStatus

    cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
    with session_scope() as session:
        waiting = session.scalar(
            select(func.count()).where(
                InboundMessage.status == InboundStatus.RECEIVED, InboundMessage.received_at < cutoff
            )
        )
    if waiting:
        redis().delete(REPLIES_PENDING_KEY)
        signal_replies()
    return waiting


def poll_imap() -> int:
    """Store new replies from the configured mailbox (marking them seen only once stored), then process them."""
    from campaigns.replies import store_email
    from channels.email_inbound import parse_inbound_email
    from channels.imap_inbound import ImapMailbox

    settings = _settings()
    if not settings.imap_url:
        return 0
    stored = 0
    with ImapMailbox(settings.imap_url) as mailbox:
        for uid, raw in mailbox.unseen():
            try:
                parsed = parse_inbound_email(raw)
            except ValueError as exc:
                log.warning("IMAP message %s is not a usable e-mail (%s); left unseen for staff", uid, exc)
                continue
            with session_scope() as session:
                inbound, created = store_email(session, parsed)
            mailbox.mark_seen(uid)  # only after the commit: a crash before it means a re-read, not a loss
            stored += 1
            if created:
                queue("default").enqueue(
                    process_reply, inbound.id, job_id=f"reply-{inbound.id}", result_ttl=60
                )
    return stored
