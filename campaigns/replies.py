"""Inbound replies: stored first, then matched to the survey they answer, parsed and acted upon.

Processing is idempotent on the inbound row's status, so a retried job or a duplicate webhook
delivery has the effect of one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from channels.reply_parser import ReplyIntent, parse_reply
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign, CampaignKind
from campaigns.inbound import InboundMessage, InboundStatus, SurveyResponse
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from database.sql import insert_for
from membership.consent import record_consent
from membership.member import Member

SURVEY_REPLY_WINDOW = dt.timedelta(days=14)
ANSWERED_STATES = (MessageStatus.SENT, MessageStatus.DELIVERED)


@dataclass(frozen=True)
class ReplyOutcome:
    """What processing one inbound message did."""

    inbound_id: int
    intent: str | None
    status: InboundStatus
    survey_response_id: int | None = None
    member_id: int | None = None


def store_inbound(
    session: Session,
    *,
    channel: str,
    provider_id: str,
    from_address: str,
    body: str,
    raw: dict,
    to_address: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[InboundMessage, bool]:
    """Insert the raw reply unless its provider id is already stored; returns (row, newly_stored)."""
    stmt = insert_for(session, InboundMessage.__table__).values(
        channel=channel,
        provider_id=provider_id,
        from_address=from_address,
        to_address=to_address,
        body=body,
        raw=raw,
        received_at=now or utcnow(),
        status=InboundStatus.RECEIVED.value,
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["provider_id"]).returning(InboundMessage.id)
    created = session.execute(stmt).first() is not None
    row = session.scalars(select(InboundMessage).where(InboundMessage.provider_id == provider_id)).one()
    return row, created


def find_member(session: Session, channel: str, address: str) -> Member | None:
    """The member this address belongs to (most recently updated, if an address is shared)."""
    column = Member.phone if channel == "sms" else Member.email
    stmt = (
        select(Member).where(column == address).order_by(Member.updated_at.desc(), Member.id.desc()).limit(1)
    )
    return session.scalars(stmt).first()


def open_survey(session: Session, member_id: int, now: dt.datetime) -> Message | None:
    """The most recent survey sent to the member within the reply window that has no answer yet."""
    answered = select(SurveyResponse.message_id).where(SurveyResponse.answer != ReplyIntent.UNCLEAR.value)
    stmt = (
        select(Message)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.member_id == member_id,
            Campaign.kind == CampaignKind.SURVEY,
            Message.status.in_(ANSWERED_STATES),
            Message.sent_at >= now - SURVEY_REPLY_WINDOW,
            Message.id.not_in(answered),
        )
        .order_by(Message.sent_at.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def process_inbound(session: Session, inbound_id: int, now: dt.datetime | None = None) -> ReplyOutcome:
    """Match, parse and act on one stored reply; a second call changes nothing."""
    now = now or utcnow()
    inbound = session.get(InboundMessage, inbound_id, with_for_update=True)
    if inbound is None:
        raise LookupError(f"inbound message {inbound_id} does not exist")
    if inbound.status is not InboundStatus.RECEIVED:
        return _outcome(session, inbound)
    member = find_member(session, inbound.channel, inbound.from_address)
    opted_out = member is not None and not (
        member.sms_consent if inbound.channel == "sms" else member.email_consent
    )
    parsed = parse_reply(inbound.body, opted_out=opted_out)
    inbound.intent = parsed.intent.value
    inbound.processed_at = now
    if member is None:
        inbound.status = InboundStatus.UNMATCHED
        return _outcome(session, inbound)
    inbound.member_id = member.id
    if parsed.intent in (ReplyIntent.OPT_OUT, ReplyIntent.OPT_IN):
        granted = parsed.intent is ReplyIntent.OPT_IN
        record_consent(
            session, member.id, inbound.channel, granted, f"{inbound.channel}_reply", inbound.body, now
        )
        inbound.status = InboundStatus.PROCESSED
        return _outcome(session, inbound)
    if parsed.intent is ReplyIntent.HELP:
        inbound.status = InboundStatus.PROCESSED
        return _outcome(session, inbound)
    survey = open_survey(session, member.id, now)
    if survey is None:
        inbound.status = InboundStatus.UNMATCHED
        return _outcome(session, inbound)
    inbound.message_id = survey.id
    response = SurveyResponse(
        inbound_id=inbound.id,
        message_id=survey.id,
        member_id=member.id,
        campaign_id=survey.campaign_id,
        answer=parsed.intent.value,
        comment=parsed.comment or None,
        created_at=now,
    )
    session.add(response)
    inbound.status = InboundStatus.PROCESSED
    session.flush()
    return ReplyOutcome(inbound.id, inbound.intent, inbound.status, response.id, member.id)


def _outcome(session: Session, inbound: InboundMessage) -> ReplyOutcome:
    response_id = session.scalar(select(SurveyResponse.id).where(SurveyResponse.inbound_id == inbound.id))
    return ReplyOutcome(inbound.id, inbound.intent, inbound.status, response_id, inbound.member_id)
