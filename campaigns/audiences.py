"""Who is due for each campaign kind, as SELECTs: (member_id, subject_ref, purchase_id, due_at).

Each function returns a statement, never rows: the scheduler inserts straight from it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Integer, String, and_, cast, exists, func, literal, null, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from campaigns.campaign import Campaign, CampaignKind
from database.sql import shift_days
from membership.catalog import Product
from membership.lifetime import LifetimeEstimate
from membership.member import Member
from membership.purchase import Purchase

DEFAULT_WINDOW_DAYS = 14
# How long after falling due a row may still be sent (a tick that missed it catches up within this).
KIND_WINDOW_DAYS = {CampaignKind.SURVEY: 7, CampaignKind.WINBACK: 30}


def window_days(campaign: Campaign) -> int:
    """The campaign's catch-up window in days: its ``window_days`` setting or its kind's default."""
    return campaign.setting("window_days", KIND_WINDOW_DAYS.get(campaign.kind, DEFAULT_WINDOW_DAYS))


def _ref(prefix: str, column) -> object:
    return literal(prefix) + cast(column, String)


def replenishment_due(campaign: Campaign, now: dt.datetime) -> Select:
    """Latest purchase of an item whose reminder time (minus lead days) has come, not yet repurchased."""
    lead = campaign.setting("lead_days", 7)
    window = window_days(campaign)
    later = aliased(Purchase)
    later_product = aliased(Product)
    # A marketer's override is the item's lifetime (a median): the reminder keeps the fitted ratio of
    # reminder quantile to median, so a locked 180 days reminds as early as a learned 180 would.
    locked = (
        LifetimeEstimate.override_days
        * LifetimeEstimate.reminder_days
        / func.nullif(LifetimeEstimate.median_days, 0, type_=Float)  # float division, not NUMERIC
    )
    reminder = func.coalesce(locked, LifetimeEstimate.reminder_days) - lead
    due_at = shift_days(Purchase.purchased_at, reminder)
    # Redundant but valid: a later purchase is later than the earliest candidate. It lets the planner
    # read only the recent part of purchases (ix_purchases_time) for the anti-join instead of hashing
    # all of it (6 s → ~2 s at 10M lines with two years of history).
    horizon = select(func.max(reminder) + window).select_from(LifetimeEstimate).scalar_subquery()
    repurchased = exists(
        select(1)
        .select_from(later)
        .join(later_product, later_product.id == later.product_id)
        .where(
            later.member_id == Purchase.member_id,
            later.purchased_at >= shift_days(literal(now), -horizon),
            or_(
                later.purchased_at > Purchase.purchased_at,
                and_(later.purchased_at == Purchase.purchased_at, later.id > Purchase.id),
            ),
            or_(later.product_id == Purchase.product_id, later_product.category_id == Product.category_id),
        )
    )
    stmt = (
        select(
            Purchase.member_id.label("member_id"),
            _ref("p", Purchase.id).label("subject_ref"),
            Purchase.id.label("purchase_id"),
            due_at.label("due_at"),
        )
        .join(Product, Product.id == Purchase.product_id)
        .join(LifetimeEstimate, LifetimeEstimate.product_id == Purchase.product_id)
        .where(
            Purchase.purchased_at <= shift_days(literal(now), -reminder),
            Purchase.purchased_at > shift_days(literal(now), -(reminder + window)),
            ~repurchased,
        )
    )
    return _only_categories(stmt, campaign)


def survey_due(campaign: Campaign, now: dt.datetime) -> Select:
    """One survey per member per shopping day, N days after it."""
    days_after = campaign.setting("days_after", 3)
    window = window_days(campaign)
    first_line = func.min(Purchase.id)
    stmt = (
        select(
            Purchase.member_id.label("member_id"),
            _ref("p", first_line).label("subject_ref"),
            first_line.label("purchase_id"),
            shift_days(func.min(Purchase.purchased_at), days_after).label("due_at"),
        )
        .join(Product, Product.id == Purchase.product_id)
        .where(
            Purchase.purchased_at <= shift_days(literal(now), -days_after),
            Purchase.purchased_at > shift_days(literal(now), -(days_after + window)),
        )
        .group_by(Purchase.member_id, func.date(Purchase.purchased_at))
    )
    return _only_categories(stmt, campaign)


def _only_categories(stmt: Select, campaign: Campaign) -> Select:
    category_ids = campaign.settings.get("category_ids")
    if category_ids:
        stmt = stmt.where(Product.category_id.in_([int(c) for c in category_ids]))
    return stmt


def winback_due(campaign: Campaign, now: dt.datetime) -> Select:
    """Members whose last purchase is more than N days old: one message per lapse (keyed by that purchase)."""
    days = campaign.setting("days_without_purchase", 180)
    window = window_days(campaign)
    last = (
        select(
            Purchase.member_id,
            func.max(Purchase.id).label("last_id"),
            func.max(Purchase.purchased_at).label("at"),
        )
        .group_by(Purchase.member_id)
        .subquery("last_purchase")
    )
    return select(
        last.c.member_id.label("member_id"),
        _ref("w", last.c.last_id).label("subject_ref"),
        last.c.last_id.label("purchase_id"),
        shift_days(last.c.at, days).label("due_at"),
    ).where(
        last.c.at <= shift_days(literal(now), -days),
        last.c.at > shift_days(literal(now), -(days + window)),
    )


def interest_due(campaign: Campaign, now: dt.datetime) -> Select:
    """Members with the campaign's interest tags, once per season (``settings["season"]``)."""
    from campaigns.audience_filters import member_conditions

    season = str(campaign.settings.get("season") or "always")
    interests = campaign.settings.get("interests") or []
    return select(
        Member.id.label("member_id"),
        literal(f"s:{season}").label("subject_ref"),
        cast(null(), Integer).label("purchase_id"),
        literal(now).label("due_at"),
    ).where(*member_conditions({"interests": interests}) if interests else [literal(False)])


def broadcast_due(campaign: Campaign, now: dt.datetime) -> Select:
    """Every member of the (filtered) audience, exactly once; ``send_at`` may hold it back."""
    send_at = campaign.settings.get("send_at")
    ready = literal(True) if not send_at else literal(dt.datetime.fromisoformat(send_at) <= now)
    return select(
        Member.id.label("member_id"),
        literal("b").label("subject_ref"),
        cast(null(), Integer).label("purchase_id"),
        literal(now).label("due_at"),
    ).where(ready)


AUDIENCES = {
    CampaignKind.REPLENISHMENT: replenishment_due,
    CampaignKind.SURVEY: survey_due,
    CampaignKind.WINBACK: winback_due,
    CampaignKind.INTEREST: interest_due,
    CampaignKind.BROADCAST: broadcast_due,
}
