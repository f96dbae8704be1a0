"""Delivery-status callbacks: statuses only move forward, and a duplicate callback changes nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.message import Message, MessageEvent, MessageStatus, ParkedStatus
from database.base import utcnow

# A parked callback whose message has not appeared by then never will (the provider id is written
# within seconds of the call, or the message is reconciled within the hour): it is closed, and kept.
PARK_FOR = dt.timedelta(days=2)

# Provider status → our state and its rank; a callback may only raise the rank.
_PROVIDER_STATES = {
    "queued": (MessageStatus.SENT, 1),
    "accepted": (MessageStatus.SENT, 1),
    "sending": (MessageStatus.SENT, 1),
    "sent": (MessageStatus.SENT, 1),
    "delivered": (MessageStatus.DELIVERED, 3),
    "undelivered": (MessageStatus.UNDELIVERED, 3),
    "failed": (MessageStatus.FAILED, 3),
}
_RANK = {
    MessageStatus.UNKNOWN: 0,
    MessageStatus.SENDING: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
}


def apply_provider_status(
    session: Session,
    provider_id: str,
    status: str,
    error_code: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Move the message with ``provider_id`` forward to the provider's status; False if nothing changed.

    A callback for a provider id not in the outbox yet is parked (`apply_parked_statuses`).
    """
    now = now or utcnow()
    mapped = _PROVIDER_STATES.get(status.lower())
    if mapped is None:
        return False
    message = session.scalars(
        select(Message).where(Message.provider_id == provider_id).with_for_update()
    ).first()
    if message is None:
        session.add(
            ParkedStatus(provider_id=provider_id, status=status, error_code=error_code, received_at=now)
        )
        return False
    state, rank = mapped
    if rank <= _RANK.get(message.status, 99):
        return False
    message.status = state
    if state is MessageStatus.DELIVERED:
        message.delivered_at = now
    elif state in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
        message.failed_at, message.error_code = now, error_code
    session.add(MessageEvent(message_id=message.id, status=state.value, detail=f"provider: {status}", at=now))
    return True


def apply_parked_statuses(
    session: Session, now: dt.datetime | None = None, limit: int = 1000
) -> dict[str, int]:
    """Apply parked callbacks whose message now has its provider id, oldest first; close the ones
    that waited longer than ``PARK_FOR`` as unmatched (the rows stay, as evidence)."""
    now = now or utcnow()
    counts = {"applied": 0, "stale": 0, "unmatched": 0}
    matched = session.scalars(
        select(ParkedStatus)
        .join(Message, Message.provider_id == ParkedStatus.provider_id)
        .where(ParkedStatus.settled_at.is_(None))
        .order_by(ParkedStatus.received_at, ParkedStatus.id)
        .limit(limit)
        .with_for_update(of=ParkedStatus, skip_locked=True)
    ).all()
    for parked in matched:
        changed = apply_provider_status(session, parked.provider_id, parked.status, parked.error_code, now)
        parked.settled_at, parked.outcome = now, "applied" if changed else "stale"
        counts[parked.outcome] += 1
    expired = session.execute(
        update(ParkedStatus)
        .where(ParkedStatus.settled_at.is_(None), ParkedStatus.received_at < now - PARK_FOR)
        .values(settled_at=now, outcome="unmatched")
    )
    counts["unmatched"] = expired.rowcount or 0
    return counts
