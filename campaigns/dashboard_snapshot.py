"""The dashboard's heavy charts, computed in the background and kept as one snapshot row.

Messages per day and the repeat-purchase rate scan the outbox and every purchase (seconds on a
million members), so a periodic job computes them and the page reads the stored result with its
time; a page never waits on a full scan except the very first time, before any snapshot exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column

from campaigns.dashboard import DayCount, MonthRepeat, messages_by_day, repeat_purchase_by_month
from database.base import Base, utcnow
from database.sql import insert_for

NAME = "dashboard"
REFRESH_MINUTES = 10


class DashboardSnapshot(Base):
    """One stored set of computed figures, by name, with when it was computed."""

    __tablename__ = "dashboard_snapshots"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    data: Mapped[dict]
    computed_at: Mapped[dt.datetime]


@dataclass(frozen=True)
class DashboardFigures:
    by_day: list[DayCount]
    repeat: list[MonthRepeat]
    computed_at: dt.datetime


def refresh_dashboard(session: Session, now: dt.datetime | None = None) -> DashboardFigures:
    """Compute the charts from scratch and replace the stored snapshot (the caller commits)."""
    now = now or utcnow()
    figures = DashboardFigures(
        messages_by_day(session, now=now), repeat_purchase_by_month(session, now=now), now
    )
    data = {
        "by_day": [[d.day.isoformat(), d.sms, d.email] for d in figures.by_day],
        "repeat": [[m.month, m.buyers, m.returning] for m in figures.repeat],
    }
    # An upsert, so two first visits (or a visit and the job) computing at once both succeed.
    stmt = insert_for(session, DashboardSnapshot).values(name=NAME, data=data, computed_at=now)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"data": stmt.excluded.data, "computed_at": stmt.excluded.computed_at},
        )
    )
    return figures


def dashboard_figures(session: Session, now: dt.datetime | None = None) -> DashboardFigures:
    """The stored charts; computed (and stored) on the spot only when there is no snapshot yet."""
    snapshot = session.get(DashboardSnapshot, NAME)
    if snapshot is None:
        return refresh_dashboard(session, now)
    return DashboardFigures(
        by_day=[DayCount(dt.date.fromisoformat(d), sms, email) for d, sms, email in snapshot.data["by_day"]],
        repeat=[MonthRepeat(m, buyers, back) for m, buyers, back in snapshot.data["repeat"]],
        computed_at=snapshot.computed_at,
    )
