"""A campaign that keeps failing pauses itself, with the reason on the campaign, instead of burning
through its audience (a bad template, a revoked sender, a provider outage)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign, CampaignStatus
from campaigns.message import MessageEvent, MessageStatus
from database.base import utcnow

WINDOW = dt.timedelta(hours=1)
MIN_ATTEMPTS = 20
DEFAULT_MAX_ERROR_RATE = 0.2


def pause_failing_campaigns(session: Session, now: dt.datetime | None = None) -> list[int]:
    """Pause active campaigns whose recent send outcomes fail above their error-rate limit."""
    from campaigns.message import Message

    now = now or utcnow()
    failed = func.sum(case((MessageEvent.status == MessageStatus.FAILED.value, 1), else_=0))
    attempts = func.count()
    stmt = (
        select(Message.campaign_id, failed, attempts)
        .join(Message, Message.id == MessageEvent.message_id)
        .where(
            MessageEvent.at > now - WINDOW,
            MessageEvent.status.in_([MessageStatus.SENT.value, MessageStatus.FAILED.value, "retry"]),
        )
        .group_by(Message.campaign_id)
    )
    paused = []
    for campaign_id, n_failed, n in session.execute(stmt):
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.ACTIVE or n < MIN_ATTEMPTS:
            continue
        limit = float(campaign.settings.get("max_error_rate", DEFAULT_MAX_ERROR_RATE))
        if n_failed / n > limit:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(
                    status=CampaignStatus.PAUSED,
                    paused_reason=f"paused automatically: {n_failed} of {n} sends failed in the last hour",
                )
            )
            paused.append(campaign_id)
    return paused
