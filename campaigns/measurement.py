"""Did the campaign work? Funnel counts and the repurchase lift of treated over held-out members.

The comparison is intention-to-treat: every member the scheduler assigned to the campaign is in the
treated arm whether or not a message reached them (suppressed, failed), and the held-out arm is the
stable-hash holdout. Only rows whose attribution window has fully elapsed are compared, so a recent
send never looks like a miss.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import and_, case, column, func, select, table
from sqlalchemy.orm import Session

from campaigns.inbound import SurveyResponse
from campaigns.link_clicks import LinkClick
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from database.sql import shift_days
from membership.purchase import Purchase

# The callback queue sits downstream of campaigns; its table is read by name, not by importing it.
_call_tasks = table("call_tasks", column("id"), column("message_id"))
Z95 = 1.959963984540054
SENT = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


@dataclass(frozen=True)
class Lift:
    """Repurchase rates per arm and the difference with a 95% interval (Newcombe's hybrid score)."""

    treated_n: int
    treated_x: int
    control_n: int
    control_x: int
    low: float | None
    high: float | None

    @property
    def treated_rate(self) -> float | None:
        return self.treated_x / self.treated_n if self.treated_n else None

    @property
    def control_rate(self) -> float | None:
        return self.control_x / self.control_n if self.control_n else None

    @property
    def difference(self) -> float | None:
        if self.treated_rate is None or self.control_rate is None:
            return None
        return self.treated_rate - self.control_rate

    @property
    def relative(self) -> float | None:
        """Lift as a share of the control rate (+0.5 is the "+50% repeat purchases" kind of claim)."""
        if self.difference is None or not self.control_rate:
            return None
        return self.difference / self.control_rate

    @property
    def significant(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion x/n."""
    if n == 0:
        return 0.0, 1.0
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def lift(treated_x: int, treated_n: int, control_x: int, control_n: int) -> Lift:
    """Difference of two proportions with Newcombe's method 10 interval.

    Chosen over the plain Wald interval because holdouts are often small and repurchase rates can
    be near 0 or 1, where Wald's coverage collapses; Newcombe stays close to 95% there too.
    """
    if not treated_n or not control_n:
        return Lift(treated_n, treated_x, control_n, control_x, None, None)
    p1, p2 = treated_x / treated_n, control_x / control_n
    l1, u1 = wilson(treated_x, treated_n)
    l2, u2 = wilson(control_x, control_n)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Lift(treated_n, treated_x, control_n, control_x, low, high)


@dataclass(frozen=True)
class CampaignResults:
    funnel: dict[str, int]
    lift: Lift
    treated_revenue: float
    control_revenue: float
    maturing: int  # assigned rows whose attribution window has not ended yet
    window_days: int

    @property
    def incremental_revenue(self) -> float | None:
        """Revenue per treated member above the held-out baseline, times the treated members."""
        if not self.lift.treated_n or not self.lift.control_n:
            return None
        per_treated = self.treated_revenue / self.lift.treated_n
        per_control = self.control_revenue / self.lift.control_n
        return (per_treated - per_control) * self.lift.treated_n


def campaign_results(
    session: Session, campaign_id: int, window_days: int = 30, now: dt.datetime | None = None
) -> CampaignResults:
    """Funnel and lift for one campaign, in two aggregate queries whatever its size."""
    now = now or utcnow()
    base = and_(Message.campaign_id == campaign_id, Message.step == 0, Message.is_test.is_(False))
    # One pass over the campaign's messages, outer-joined to per-message aggregates of the small
    # answer, task and click tables: hash joins, not a correlated lookup per message.
    sent = select(Message.id, Message.status).where(base).subquery()
    answers = (
        select(
            SurveyResponse.message_id,
            func.max(case((SurveyResponse.answer == "satisfied", 1), else_=0)).label("satisfied"),
            func.max(case((SurveyResponse.answer == "unsatisfied", 1), else_=0)).label("unsatisfied"),
        )
        .where(SurveyResponse.campaign_id == campaign_id)
        .group_by(SurveyResponse.message_id)
        .subquery()
    )
    tasks = (
        select(_call_tasks.c.message_id).where(_call_tasks.c.message_id.is_not(None)).distinct().subquery()
    )
    clicks = select(LinkClick.message_id).distinct().subquery()
    row = session.execute(
        select(
            func.count(),
            func.count().filter(sent.c.status == MessageStatus.HELD_OUT),
            func.count().filter(sent.c.status.in_(SENT)),
            func.count().filter(sent.c.status == MessageStatus.DELIVERED),
            func.count().filter(sent.c.status == MessageStatus.SUPPRESSED),
            func.count(answers.c.message_id),
            func.count().filter(answers.c.satisfied == 1),
            func.count().filter(answers.c.unsatisfied == 1),
            func.count(tasks.c.message_id),
            func.count(clicks.c.message_id),
        ).select_from(
            sent.outerjoin(answers, answers.c.message_id == sent.c.id)
            .outerjoin(tasks, tasks.c.message_id == sent.c.id)
            .outerjoin(clicks, clicks.c.message_id == sent.c.id)
        )
    ).one()
    funnel = dict(
        zip(
            (
                "eligible",
                "held_out",
                "sent",
                "delivered",
                "suppressed",
                "replied",
                "satisfied",
                "unsatisfied",
                "call_tasks",
                "clicked",  # messages with at least one tracked-link click
            ),
            row,
            strict=True,
        )
    )
    # Per assigned row: did the member buy anything within the window after the assignment?
    window_end = shift_days(Message.due_at, window_days)
    bought = (
        select(
            Message.id.label("mid"),
            (Message.status == MessageStatus.HELD_OUT).label("held"),
            func.count(Purchase.id).label("n"),
            func.coalesce(func.sum(Purchase.amount), 0).label("amount"),
        )
        .outerjoin(
            Purchase,
            and_(
                Purchase.member_id == Message.member_id,
                Purchase.purchased_at > Message.due_at,
                Purchase.purchased_at <= window_end,
            ),
        )
        .where(base, window_end <= now)
        .group_by(Message.id, Message.status)
        .subquery()
    )
    arms = {
        bool(held): (n, x, float(amount or 0))
        for held, n, x, amount in session.execute(
            select(
                bought.c.held,
                func.count(),
                func.sum(case((bought.c.n > 0, 1), else_=0)),
                func.sum(bought.c.amount),
            ).group_by(bought.c.held)
        )
    }
    t_n, t_x, t_rev = arms.get(False, (0, 0, 0.0))
    c_n, c_x, c_rev = arms.get(True, (0, 0, 0.0))
    funnel["repurchased"] = int(t_x or 0)
    return CampaignResults(
        funnel=funnel,
        lift=lift(int(t_x or 0), t_n, int(c_x or 0), c_n),
        treated_revenue=t_rev,
        control_revenue=c_rev,
        maturing=funnel["eligible"] - t_n - c_n,
        window_days=window_days,
    )
