"""Delivery-status callbacks: statuses only move forward, and a duplicate callback changes nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.message import Message, MessageEvent, MessageStatus
from database.base import utcnow

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
    """Move the message with ``provider_id`` forward to the provider's status; False if nothing changed."""
    now = now or utcnow()
    mapped = _PROVIDER_STATES.get(status.lower())
    message = session.scalars(
        select(Message).where(Message.provider_id == provider_id).with_for_update()
    ).first()
    if mapped is None or message is None:
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
