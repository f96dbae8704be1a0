"""The tick: every active campaign's due set becomes outbox rows, in one INSERT … SELECT each.

The unique key (campaign, member, subject_ref, step) plus ON CONFLICT DO NOTHING is the whole
de-duplication story: a second tick, or two schedulers at once, insert nothing new.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, case, literal, select
from sqlalchemy.orm import Session

from campaigns.audience_filters import member_conditions
from campaigns.audiences import AUDIENCES
from campaigns.campaign import Campaign, CampaignStatus
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from database.sql import hash_bucket, insert_for
from membership.member import Member

_CONTACT = {
    "sms": (Member.sms_consent, Member.phone),
    "email": (Member.email_consent, Member.email),
}


@dataclass
class TickResult:
    """How many outbox rows each campaign gained in this tick."""

    inserted: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.inserted.values())


def tick(session: Session, now: dt.datetime | None = None) -> TickResult:
    """Insert outbox rows for everything due now; safe to run any number of times, concurrently."""
    now = now or utcnow()
    result = TickResult()
    campaigns = session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.ACTIVE)).all()
    for campaign in campaigns:
        audience = AUDIENCES.get(campaign.kind)
        if audience is None:
            continue
        result.inserted[campaign.id] = enqueue_due(session, campaign, audience(campaign, now), now)
    return result


def outcome_columns(campaign: Campaign):
    """SQL expressions deciding each due member's channel, address, status and reason (needs Member joined).

    The tick inserts them; the forecast counts them, so both agree on holdout and consent.
    """
    channels = [c for c in campaign.channels if c in _CONTACT]
    reachable = [
        (name, and_(_CONTACT[name][0].is_(True), _CONTACT[name][1].is_not(None))) for name in channels
    ]
    channel = (
        case(*[(ok, literal(name)) for name, ok in reachable], else_=None) if reachable else literal(None)
    )
    address = (
        case(*[(ok, _CONTACT[name][1]) for name, ok in reachable], else_=None) if reachable else literal(None)
    )
    held_out = hash_bucket(Member.id, campaign.id) < campaign.holdout_pct
    status = case(
        (held_out, literal(MessageStatus.HELD_OUT.value)),
        (channel.is_(None), literal(MessageStatus.SUPPRESSED.value)),
        else_=literal(MessageStatus.PENDING.value),
    )
    reason = case(
        (held_out, literal(f"held out: {campaign.holdout_pct}% control group of campaign {campaign.id}")),
        (channel.is_(None), literal(f"no consented contact on {'/'.join(channels) or 'any channel'}")),
        else_=literal(f"due: {campaign.kind.value} campaign {campaign.id}"),
    )
    return channel, address, status, reason


def enqueue_due(session: Session, campaign: Campaign, due, now: dt.datetime) -> int:
    """INSERT the due set as messages, deciding channel, holdout and consent in SQL."""
    due = due.subquery("due")
    channel, address, status, reason = outcome_columns(campaign)
    rows = select(
        literal(campaign.id),
        due.c.member_id,
        due.c.subject_ref,
        literal(0),
        due.c.purchase_id,
        channel,
        address,
        status,
        reason,
        literal(campaign.transactional),
        due.c.due_at,
        literal(now),
        literal(now),
    ).join_from(due, Member, Member.id == due.c.member_id)
    # The audience filter narrows every kind; literal(True) keeps a WHERE, which SQLite's upsert parser needs.
    rows = rows.where(literal(True), *member_conditions(campaign.settings.get("audience")))
    columns = [
        "campaign_id",
        "member_id",
        "subject_ref",
        "step",
        "purchase_id",
        "channel",
        "to_address",
        "status",
        "reason",
        "transactional",
        "due_at",
        "send_after",
        "created_at",
    ]
    stmt = insert_for(session, Message.__table__).from_select(columns, rows)
    stmt = stmt.on_conflict_do_nothing(index_elements=["campaign_id", "member_id", "subject_ref", "step"])
    # RETURNING rather than rowcount: psycopg reports -1 for INSERT … SELECT … ON CONFLICT.
    return len(session.execute(stmt.returning(Message.id)).all())
