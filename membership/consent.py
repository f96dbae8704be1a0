"""Consent changes: every grant or withdrawal is a ledger row, mirrored on the member for fast audiences."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

from database.base import utcnow
from membership.member import Channel, ConsentEvent, Member


def record_consent(
    session: Session,
    member_id: int,
    channel: Channel | str,
    granted: bool,
    source: str,
    evidence: str | None = None,
    at: dt.datetime | None = None,
) -> ConsentEvent:
    """Grant or withdraw consent on one channel, effective immediately."""
    channel = Channel(channel)
    at = at or utcnow()
    event = ConsentEvent(
        member_id=member_id, channel=channel, granted=granted, source=source, evidence=evidence, at=at
    )
    session.add(event)
    prefix = channel.value
    session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(
            {
                f"{prefix}_consent": granted,
                f"{prefix}_consent_at": at,
                f"{prefix}_consent_source": source,
            }
        )
    )
    return event
