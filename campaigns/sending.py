"""Send orchestration: claim due outbox rows, re-check guard-rails, render, hand to a channel, record.

At-most-once by design: a row is claimed (committed as ``sending``) before the provider is called and
its outcome is committed right after; a worker that dies in between leaves ``sending`` behind, which
``expire_stale_claims`` turns into ``unknown`` for reconciliation instead of sending it again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session
from templating.render import TemplateError, render_message

from campaigns.campaign import Campaign
from campaigns.context import load_batch, message_context, subject_items
from campaigns.message import Message, MessageEvent, MessageStatus
from campaigns.quiet_hours import next_allowed
from channels.base import Channel, OutboundMessage, SendOutcome, SendResult
from database.base import utcnow
from membership.consent import record_consent
from membership.member import ContactHold, Member
from membership.store import Store

MAX_ATTEMPTS = 5
STALE_CLAIM = dt.timedelta(minutes=10)
OPTED_OUT_CODE = "21610"  # Twilio: the recipient replied STOP to this sender
SENDABLE = (MessageStatus.PENDING, MessageStatus.DEFERRED)


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
    due = (
        select(Message.id)
        .where(Message.status.in_(SENDABLE), Message.channel == channel, Message.send_after <= now)
        .order_by(Message.send_after, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(Message)
        .where(Message.id.in_(due.scalar_subquery()), Message.status.in_(SENDABLE))
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
                exists().where(
                    Message.status.in_(SENDABLE), Message.channel == channel, Message.send_after <= now
                )
            )
        )
    )


def send_claimed(
    session: Session, channel: Channel, ids: list[int], public_url: str, now: dt.datetime | None = None
) -> SendReport:
    """Send each claimed message through ``channel``, committing each outcome as soon as it is known."""
    report = SendReport()
    batch = load_batch(session, ids)
    items = subject_items(session, [m.purchase_id for m, *_ in batch if m.purchase_id])
    held = _members_on_hold(session, [m.member_id for m, *_ in batch])
    for message, member, store, campaign in batch:
        moment = now or utcnow()
        state = _send_one(session, channel, message, member, store, campaign, items, held, public_url, moment)
        report.add(state)
        session.commit()
    return report


def _send_one(session, channel, message, member, store, campaign, items, held, public_url, now) -> str:
    blocked = _guard(message, member, store, campaign, held, now)
    if blocked:
        session.add(MessageEvent(message_id=message.id, status=blocked, detail=message.reason, at=now))
        return blocked
    item = items.get(message.purchase_id) if message.purchase_id else None
    content = campaign.content_for(message.channel, member.locale)
    if content is None:
        return _finish(session, message, MessageStatus.FAILED, now, error="no content for this channel")
    parts = {"body": content.body} if message.channel == "sms" else _email_parts(content)
    try:
        rendered = render_message(
            message.channel, parts, message_context(member, store, campaign, item, now), locale=member.locale
        )
    except TemplateError as exc:
        return _finish(session, message, MessageStatus.FAILED, now, error=f"template: {exc}")
    message.body, message.subject = rendered.text, rendered.subject
    outbound = OutboundMessage(
        message_id=message.id,
        to=message.to_address or "",
        body=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        status_callback=f"{public_url.rstrip('/')}/webhooks/twilio/status"
        if message.channel == "sms"
        else None,
    )
    return record_result(session, message, channel.send(outbound), now)


def _email_parts(content) -> dict[str, str]:
    parts = {"subject": content.subject or "", "html": content.html or content.body}
    if content.html:
        parts["text"] = content.body
    return parts


def _guard(
    message, member: Member, store: Store | None, campaign: Campaign, held: set[int], now
) -> str | None:
    """Re-check at send time what may have changed since the tick; returns the state set, if any."""
    consented = member.sms_consent if message.channel == "sms" else member.email_consent
    if not consented:
        message.status, message.reason = MessageStatus.SUPPRESSED, f"{message.channel} consent withdrawn"
        return message.status.value
    if not campaign.transactional and member.id in held:
        message.status, message.reason = MessageStatus.DEFERRED, "promotions paused: open complaint"
        message.send_after = now + dt.timedelta(days=1)
        return message.status.value
    timezone = member.timezone or (store.timezone if store else "UTC")
    quiet = (store.quiet_start, store.quiet_end) if store else ("21:00", "08:00")
    quiet = tuple(campaign.settings.get("quiet_hours") or quiet)
    allowed = next_allowed(now, timezone, quiet)
    if allowed > now:
        message.status = MessageStatus.DEFERRED
        message.reason = f"quiet hours {quiet[0]}–{quiet[1]} in {timezone}"
        message.send_after = allowed
        return message.status.value
    return None


def _members_on_hold(session: Session, member_ids: list[int]) -> set[int]:
    if not member_ids:
        return set()
    stmt = select(ContactHold.member_id).where(
        ContactHold.member_id.in_(set(member_ids)), ContactHold.released_at.is_(None)
    )
    return set(session.scalars(stmt))


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
        .where(Message.status == MessageStatus.SENDING, Message.claimed_at < now - STALE_CLAIM)
        .values(status=MessageStatus.UNKNOWN, reason="worker stopped mid-send; reconcile with the provider")
    )
    return session.execute(stmt).rowcount or 0
