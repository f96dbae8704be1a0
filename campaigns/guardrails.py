"""Send-time guard-rails: consent, open complaints, quiet hours, the cross-campaign frequency cap and
staleness. Each check that stops a message says why on the row; nothing is dropped silently.

The checks run at send time, not at tick time, because consent and caps change between the two.
Everything a batch needs is loaded in a few set-based queries (``GuardContext.load``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign
from campaigns.message import Message, MessageStatus
from campaigns.quiet_hours import DEFAULT_QUIET, next_allowed
from membership.member import ContactHold, Member
from membership.store import Store

CAP_MESSAGES = 2  # promotional messages …
CAP_WINDOW = dt.timedelta(days=7)  # … per member per this window, across campaigns
DEFAULT_EXPIRY_DAYS = 7  # a promotional message deferred this long after it was due is stale
COUNTED = (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNKNOWN)
WAITING = (MessageStatus.PENDING, MessageStatus.DEFERRED, MessageStatus.SENDING)


@dataclass(frozen=True)
class Verdict:
    """Stop the message: the state to set, the reason, and (for deferrals) when to try again."""

    status: MessageStatus
    reason: str
    retry_at: dt.datetime | None = None


@dataclass
class GuardContext:
    """Per-member facts for a batch: open holds, recent promotional sends, competing priorities."""

    held: set[int] = field(default_factory=set)
    recent_sends: dict[int, list[dt.datetime]] = field(default_factory=lambda: defaultdict(list))
    top_waiting_priority: dict[int, int] = field(default_factory=dict)

    @classmethod
    def load(
        cls, session: Session, member_ids: list[int], now: dt.datetime, batch_ids: list[int] = ()
    ) -> GuardContext:
        """Facts for the members of a batch; ``batch_ids`` (its own claimed rows) are counted as they go."""
        ids = set(member_ids)
        ctx = cls()
        if not ids:
            return ctx
        ctx.held = set(
            session.scalars(
                select(ContactHold.member_id).where(
                    ContactHold.member_id.in_(ids), ContactHold.released_at.is_(None)
                )
            )
        )
        recent = select(Message.member_id, Message.sent_at, Message.claimed_at).where(
            Message.member_id.in_(ids),
            Message.transactional.is_(False),
            Message.is_test.is_(False),
            Message.status.in_(COUNTED),
            func.coalesce(Message.sent_at, Message.claimed_at) > now - CAP_WINDOW,
        )
        if batch_ids:
            recent = recent.where(Message.id.not_in(list(batch_ids)))
        for member_id, sent_at, claimed_at in session.execute(recent):
            ctx.recent_sends[member_id].append(sent_at or claimed_at)
        waiting = (
            select(Message.member_id, func.max(Campaign.priority))
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(
                Message.member_id.in_(ids),
                Message.transactional.is_(False),
                Message.status.in_((MessageStatus.PENDING, MessageStatus.DEFERRED)),
                Message.due_at <= now,
            )
            .group_by(Message.member_id)
        )
        ctx.top_waiting_priority = dict(session.execute(waiting).all())
        return ctx


def check(
    message: Message,
    member: Member,
    store: Store | None,
    campaign: Campaign,
    ctx: GuardContext,
    now: dt.datetime,
) -> Verdict | None:
    """The first guard-rail that stops ``message`` now, or None when it may be sent."""
    consented = member.sms_consent if message.channel == "sms" else member.email_consent
    if not consented:
        return Verdict(MessageStatus.SUPPRESSED, f"{message.channel} consent withdrawn before sending")
    timezone = member.timezone or (store.timezone if store else "UTC")
    quiet = tuple(
        campaign.settings.get("quiet_hours")
        or ((store.quiet_start, store.quiet_end) if store else DEFAULT_QUIET)
    )
    allowed = next_allowed(now, timezone, quiet)
    if allowed > now:
        return Verdict(MessageStatus.DEFERRED, f"quiet hours {quiet[0]}–{quiet[1]} in {timezone}", allowed)
    if campaign.transactional:
        return None  # surveys and service messages: exempt from caps and complaint pauses, not from consent
    expiry = dt.timedelta(days=int(campaign.settings.get("expire_days", DEFAULT_EXPIRY_DAYS)))
    if now - message.due_at > expiry:
        return Verdict(MessageStatus.CANCELLED, f"stale: still unsent {expiry.days} days after it was due")
    if member.id in ctx.held:
        return Verdict(
            MessageStatus.DEFERRED, "promotions paused: open complaint", now + dt.timedelta(hours=12)
        )
    sends = sorted(ctx.recent_sends.get(member.id, []))
    if len(sends) >= CAP_MESSAGES:
        free_at = sends[-CAP_MESSAGES] + CAP_WINDOW
        return Verdict(
            MessageStatus.DEFERRED,
            f"frequency cap: {CAP_MESSAGES} per {CAP_WINDOW.days} days reached",
            free_at,
        )
    top = ctx.top_waiting_priority.get(member.id, campaign.priority)
    if top > campaign.priority and len(sends) + 1 >= CAP_MESSAGES:
        return Verdict(
            MessageStatus.DEFERRED,
            f"frequency cap: last slot kept for a higher-priority campaign ({top} > {campaign.priority})",
            now + dt.timedelta(hours=1),
        )
    return None


def count_send(ctx: GuardContext, member_id: int, campaign: Campaign, now: dt.datetime) -> None:
    """Record a send within the batch, so the cap holds for a member with two messages in one batch."""
    if not campaign.transactional:
        ctx.recent_sends[member_id].append(now)
