"""The marketer's dashboard figures: messages by day, satisfaction by week, repeat purchases by month.

Each is one grouped query over an indexed time range; the page draws them as SVG.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from campaigns.inbound import SurveyResponse
from campaigns.message import Message
from database.base import utcnow
from database.sql import day_text, month_text
from membership.purchase import Purchase


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    sms: int
    email: int

    @property
    def total(self) -> int:
        return self.sms + self.email


@dataclass(frozen=True)
class WeekSatisfaction:
    week_start: dt.date
    satisfied: int
    unsatisfied: int

    @property
    def share(self) -> float | None:
        answered = self.satisfied + self.unsatisfied
        return self.satisfied / answered if answered else None


@dataclass(frozen=True)
class MonthRepeat:
    month: str  # YYYY-MM
    buyers: int
    returning: int  # buyers who had bought before this month

    @property
    def rate(self) -> float | None:
        return self.returning / self.buyers if self.buyers else None


def messages_by_day(session: Session, days: int = 30, now: dt.datetime | None = None) -> list[DayCount]:
    """Messages handed to a provider per day and channel, oldest first, with empty days filled."""
    now = now or utcnow()
    start = dt.datetime.combine((now - dt.timedelta(days=days - 1)).date(), dt.time())
    day = day_text(Message.sent_at)
    rows = session.execute(
        select(day, Message.channel, func.count())
        .where(Message.sent_at >= start, Message.sent_at <= now)
        .group_by(day, Message.channel)
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for d, channel, n in rows:
        counts[d][channel or ""] = n
    out = []
    for i in range(days):
        d = start.date() + dt.timedelta(days=i)
        c = counts.get(d.isoformat(), {})
        out.append(DayCount(d, c.get("sms", 0), c.get("email", 0)))
    return out


def satisfaction_by_week(
    session: Session, weeks: int = 12, now: dt.datetime | None = None
) -> list[WeekSatisfaction]:
    """Survey answers per week (Monday start), oldest first."""
    now = now or utcnow()
    this_monday = now.date() - dt.timedelta(days=now.weekday())
    start = this_monday - dt.timedelta(weeks=weeks - 1)
    day = day_text(SurveyResponse.created_at)
    rows = session.execute(
        select(day, SurveyResponse.answer, func.count())
        .where(SurveyResponse.created_at >= dt.datetime.combine(start, dt.time()))
        .group_by(day, SurveyResponse.answer)
    )
    buckets: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d, answer, n in rows:
        date = dt.date.fromisoformat(d)
        buckets[date - dt.timedelta(days=date.weekday())][answer] += n
    return [
        WeekSatisfaction(
            start + dt.timedelta(weeks=i),
            buckets[start + dt.timedelta(weeks=i)].get("satisfied", 0),
            buckets[start + dt.timedelta(weeks=i)].get("unsatisfied", 0),
        )
        for i in range(weeks)
    ]


def repeat_purchase_by_month(
    session: Session, months: int = 12, now: dt.datetime | None = None
) -> list[MonthRepeat]:
    """Per month: members who bought, and how many of them had bought in an earlier month."""
    now = now or utcnow()
    first_month = _month_start(now, months - 1)
    month = month_text(Purchase.purchased_at)
    earlier = aliased(Purchase)
    # A buyer "returns" when any purchase of theirs precedes the month of this one.
    first_purchase = (
        select(earlier.member_id, func.min(earlier.purchased_at).label("first_at"))
        .group_by(earlier.member_id)
        .subquery()
    )
    per_member = (
        select(
            month.label("month"), Purchase.member_id, func.min(first_purchase.c.first_at).label("first_at")
        )
        .join(first_purchase, first_purchase.c.member_id == Purchase.member_id)
        .where(Purchase.purchased_at >= first_month, Purchase.purchased_at <= now)
        .group_by(month, Purchase.member_id)
        .subquery()
    )
    returning = case((month_text(per_member.c.first_at) < per_member.c.month, 1), else_=0)
    rows = session.execute(
        select(per_member.c.month, func.count(), func.sum(returning)).group_by(per_member.c.month)
    )
    found = {m: (int(n), int(r or 0)) for m, n, r in rows}
    out = []
    for i in range(months):
        m = _month_start(now, months - 1 - i).strftime("%Y-%m")
        buyers, back = found.get(m, (0, 0))
        out.append(MonthRepeat(m, buyers, back))
    return out


def _month_start(now: dt.datetime, back: int) -> dt.datetime:
    year, month = now.year, now.month - back
    while month <= 0:
        year, month = year - 1, month + 12
    return dt.datetime(year, month, 1)
