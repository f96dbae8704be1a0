"""Read models for the UI: per-campaign message counts, dashboard figures, a member's message history."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign
from campaigns.inbound import InboundMessage, InboundStatus, SurveyResponse
from campaigns.message import Message


def campaign_status_counts(session: Session) -> list[tuple[Campaign, dict[str, int]]]:
    """Every campaign with its messages counted by status (two queries, whatever the size)."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    stmt = select(Message.campaign_id, Message.status, func.count()).group_by(
        Message.campaign_id, Message.status
    )
    for campaign_id, status, n in session.execute(stmt):
        counts[campaign_id][status.value] = n
    campaigns = session.scalars(select(Campaign).order_by(Campaign.id)).all()
    return [(c, counts.get(c.id, {})) for c in campaigns]


def survey_answer_counts(session: Session) -> dict[int, dict[str, int]]:
    """campaign id → answers by kind."""
    result: dict[int, dict[str, int]] = defaultdict(dict)
    stmt = select(SurveyResponse.campaign_id, SurveyResponse.answer, func.count()).group_by(
        SurveyResponse.campaign_id, SurveyResponse.answer
    )
    for campaign_id, answer, n in session.execute(stmt):
        result[campaign_id][answer] = n
    return result


def member_messages(session: Session, member_id: int) -> list[tuple[Message, str | None]]:
    """A member's messages, newest first, with the campaign name."""
    stmt = (
        select(Message, Campaign.name)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.member_id == member_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
    )
    return [tuple(r) for r in session.execute(stmt)]


def member_replies(session: Session, member_id: int) -> list[InboundMessage]:
    stmt = (
        select(InboundMessage).where(InboundMessage.member_id == member_id).order_by(InboundMessage.id.desc())
    )
    return list(session.scalars(stmt))


def unmatched_replies(session: Session, limit: int = 200) -> list[InboundMessage]:
    """Replies nobody could attribute: unknown numbers, or no open survey. Staff assign them by hand."""
    stmt = (
        select(InboundMessage)
        .where(
            InboundMessage.status.in_(
                [InboundStatus.UNMATCHED, InboundStatus.TRIAGE, InboundStatus.FAILED, InboundStatus.RECEIVED]
            )
        )
        .order_by(InboundMessage.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
