"""Send orchestration: claim due outbox rows, re-check guard-rails, render, hand to a channel, record.

At-most-once by design: a row is claimed (committed as ``sending``) before the provider is called and
its outcome is committed right after; a worker that dies in between leaves ``sending`` behind, which
``expire_stale_claims`` turns into ``unknown`` for reconciliation instead of sending it again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from campaigns.context import load_batch, message_context, subject_items
from campaigns.guardrails import GuardContext, Verdict, check, count_send
from campaigns.message import Message, MessageEvent, MessageStatus, in_states
from campaigns.message_extras import message_extras
from campaigns.offer_codes import OfferCodeError
from campaigns.reply_tokens import reply_address, reply_token
from campaigns.unsubscribe import unsubscribe_mac
from channels.base import Channel, OutboundMessage, SendOutcome, SendResult
from database.base import utcnow
from membership.consent import record_consent
from templating.render import TemplateError, render_message

MAX_ATTEMPTS = 5
STALE_CLAIM = dt.timedelta(minutes=10)
OPTED_OUT_CODE = "21610"  # Twilio: the recipient replied STOP to this sender
SENDABLE = (MessageStatus.PENDING, MessageStatus.DEFERRED)
COMMIT_EVERY = 20  # outcomes per commit …
COMMIT_WITHIN = 0.2  # … or seconds since the last one (a status callback may look the message up)


@dataclass(frozen=True)
class SendConfig:
    """What sending needs from settings: where callbacks go, how replies find their message."""

    public_url: str
    secret_key: str = ""
    reply_address: str = ""  # e.g. reply@shop.example; empty: no per-message Reply-To


@dataclass
class SendReport:
    """Counts by final state for one batch."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, state: str) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1


def claim_batch(session: Session, channel: str, limit: int, now: dt.datetime | None = None) -> list[int]:
    """Mark up to ``limit`` due rows of ``channel`` as sending and return their ids (caller commits).

    PostgreSQL skips rows another worker holds (SKIP LOCKED); SQLite serialises writers, so the
    single UPDATE … WHERE id IN (SELECT …) is already exclusive there.
    """
    now = now or utcnow()
    # A MATERIALIZED CTE is evaluated exactly once: the locking LIMIT query written inline as
    # IN (SELECT …) leaves the planner free to run it as the inner side of a join.
    due = (
        select(Message.id)
        .where(in_states(*SENDABLE), Message.channel == channel, Message.send_after <= now)
        .order_by(Message.send_after, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        update(Message)
        .where(Message.id.in_(select(due.c.id)), Message.status.in_(SENDABLE))
        .values(status=MessageStatus.SENDING, claimed_at=now, attempts=Message.attempts + 1)
        .returning(Message.id)
    )
    return sorted(session.scalars(stmt).all())


def has_due(session: Session, channel: str, now: dt.datetime | None = None) -> bool:
    """Whether any row of ``channel`` is waiting to be sent now."""
    now = now or utcnow()
    return bool(
        session.scalar(
            select(
                exists().where(in_states(*SENDABLE), Message.channel == channel, Message.send_after <= now)
            )
        )
    )


def send_claimed(
    session: Session,
    channel: Channel,
    ids: list[int],
    config: SendConfig,
    now: dt.datetime | None = None,
    before_send: Callable[[], None] | None = None,
) -> SendReport:
    """Send each claimed message through ``channel``, committing outcomes in small groups.

    Outcomes are committed every ``COMMIT_EVERY`` messages or ``COMMIT_WITHIN`` seconds, whichever
    comes first (a commit per message was a third of a send's cost). A worker that dies in between
    leaves those messages claimed, exactly like one that dies during a provider call: the claim
    expires to "unknown" and reconciliation asks the provider what it did, so nothing is sent twice.
    ``before_send`` is called right before each provider call (the per-sender rate limiter).
    """
    report = SendReport()
    batch = load_batch(session, ids)
    start = now or utcnow()
    items = subject_items(session, [m.purchase_id for m, *_ in batch if m.purchase_id])
    guard = GuardContext.load(session, [m.member_id for m, *_ in batch], start, [m.id for m, *_ in batch])
    pending, since = 0, time.monotonic()
    try:
        for message, member, store, campaign in batch:
            moment = now or utcnow()
            verdict = check(message, member, store, campaign, guard, moment)
            if verdict:
                state = _stop(session, message, verdict, moment)
            else:
                count_send(guard, member.id, campaign, moment)
                state = _send_one(
                    session, channel, message, member, store, campaign, items, config, moment, before_send
                )
            report.add(state)
            pending += 1
            if pending >= COMMIT_EVERY or time.monotonic() - since >= COMMIT_WITHIN:
                session.commit()
                pending, since = 0, time.monotonic()
    except Exception:
        # Keep the outcomes already known (the message in hand stays claimed and is reconciled).
        _commit_known(session)
        raise
    session.commit()
    return report


def _commit_known(session: Session) -> None:
    try:
        session.commit()
    except SQLAlchemyError:
        session.rollback()  # the database itself failed: the claims expire and are reconciled


def _stop(session: Session, message: Message, verdict: Verdict, now: dt.datetime) -> str:
    message.status, message.reason = verdict.status, verdict.reason
    if verdict.retry_at:
        message.send_after = verdict.retry_at
    session.add(
        MessageEvent(message_id=message.id, status=verdict.status.value, detail=verdict.reason, at=now)
    )
    return verdict.status.value


def render_for(campaign, channel: str, member, store, item, now: dt.datetime, extras=None):
    """The message exactly as ``member`` would get it; preview, test send and real send all use this.

    ``extras`` (from `message_extras`) adds tracked links, the offer code and advice.
    Raises TemplateError (also when the campaign has no content for the channel).
    """
    content = campaign.content_for(channel, member.locale)
    if content is None:
        raise TemplateError(f"no {channel} content in any language")
    parts = {"body": content.body} if channel == "sms" else _email_parts(content)
    context = {**message_context(member, store, campaign, item, now), **(extras or {})}
    return render_message(channel, parts, context, locale=member.locale)


def _send_one(session, channel, message, member, store, campaign, items, config, now, before_send) -> str:
    item = items.get(message.purchase_id) if message.purchase_id else None
    try:
        extras = message_extras(
            session,
            campaign,
            member,
            message_id=message.id,
            public_url=config.public_url,
            secret_key=config.secret_key,
            test=message.is_test,
            now=now,
        )
    except OfferCodeError as exc:  # never send an offer without its code
        return _finish(session, message, MessageStatus.FAILED, now, error=f"offer: {exc}")
    try:
        rendered = render_for(campaign, message.channel, member, store, item, now, extras)
    except TemplateError as exc:
        return _finish(session, message, MessageStatus.FAILED, now, error=f"template: {exc}")
    message.body, message.subject = rendered.text, rendered.subject
    outbound = _outbound(message, rendered, config)
    if before_send:
        before_send()
    return record_result(session, message, channel.send(outbound), now)


def _outbound(message: Message, rendered, config: SendConfig) -> OutboundMessage:
    base = config.public_url.rstrip("/")
    if message.channel == "sms":
        return OutboundMessage(
            message_id=message.id,
            to=message.to_address or "",
            body=rendered.text,
            status_callback=f"{base}/webhooks/twilio/status",
        )
    reply_to = None
    if config.reply_address and config.secret_key:
        message.reply_token = reply_token(config.secret_key, message.id)
        reply_to = reply_address(config.reply_address, message.reply_token)
    unsubscribe = f"{base}/u/{message.id}-{unsubscribe_mac(config.secret_key, message.id)}"
    return OutboundMessage(
        message_id=message.id,
        to=message.to_address or "",
        body=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        reply_to=reply_to,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def _email_parts(content) -> dict[str, str]:
    parts = {"subject": content.subject or "", "html": content.html or content.body}
    if content.html:
        parts["text"] = content.body
    return parts


def record_result(session: Session, message: Message, result: SendResult, now: dt.datetime) -> str:
    """Turn a provider outcome into the message's next state; never drops an error."""
    message.latency_ms = result.latency_ms
    if result.outcome is SendOutcome.SENT:
        message.provider_id = result.provider_id
        return _finish(session, message, MessageStatus.SENT, now)
    if result.outcome is SendOutcome.UNKNOWN:
        return _finish(session, message, MessageStatus.UNKNOWN, now, result.error_code, result.error)
    if result.outcome is SendOutcome.RETRY and message.attempts < MAX_ATTEMPTS:
        message.status = MessageStatus.PENDING
        message.send_after = now + dt.timedelta(seconds=30 * 2**message.attempts)
        message.error_code, message.error = result.error_code, result.error
        session.add(MessageEvent(message_id=message.id, status="retry", detail=result.error, at=now))
        return "retry"
    if result.error_code == OPTED_OUT_CODE:
        record_consent(session, message.member_id, "sms", False, "provider", "Twilio error 21610", now)
    return _finish(session, message, MessageStatus.FAILED, now, result.error_code, result.error)


def _finish(session, message, status: MessageStatus, now, error_code=None, error=None) -> str:
    message.status = status
    message.error_code, message.error = error_code, error
    if status is MessageStatus.SENT:
        message.sent_at = now
    elif status is MessageStatus.FAILED:
        message.failed_at = now
    session.add(MessageEvent(message_id=message.id, status=status.value, detail=error, at=now))
    return status.value


def expire_stale_claims(session: Session, now: dt.datetime | None = None) -> int:
    """Rows left in ``sending`` by a dead worker become ``unknown``: maybe sent, so never resent blindly."""
    now = now or utcnow()
    stmt = (
        update(Message)
        .where(in_states(MessageStatus.SENDING), Message.claimed_at < now - STALE_CLAIM)
        .values(status=MessageStatus.UNKNOWN, reason="worker stopped mid-send; reconcile with the provider")
    )
    return session.execute(stmt).rowcount or 0
