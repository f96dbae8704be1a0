"""The 30-day forecast a marketer sees before launching: what the campaign would send, day by day.

Computed from the real data with the same due queries and the same holdout/consent decisions the
tick uses (``scheduler.outcome_columns``), one set-based query per day; only the rows that would be
sent are read back, to place quiet-hour and frequency-cap deferrals and to count SMS segments.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import column, exists, func, select, table
from sqlalchemy.orm import Session

from campaigns.audience_filters import member_conditions
from campaigns.audiences import AUDIENCES, window_days
from campaigns.campaign import Campaign, CampaignKind
from campaigns.context import subject_items
from campaigns.guardrails import CAP_MESSAGES, CAP_WINDOW
from campaigns.message import Message, MessageStatus
from campaigns.quiet_hours import DEFAULT_QUIET, next_allowed
from campaigns.scheduler import outcome_columns
from campaigns.sending import render_for
from database.base import utcnow
from membership.member import Member
from membership.store import Store
from templating.render import TemplateError
from templating.sms import count_sms

DAYS = 30
# Kinds whose due time is "now" rather than a date computed from a purchase: they fall due once.
_ONE_SHOT = {CampaignKind.INTEREST, CampaignKind.BROADCAST}
SEGMENT_SAMPLE = 20  # members per locale rendered to estimate the average SMS length
HISTORY = dt.timedelta(days=90)
# The callback queue sits downstream of campaigns; its table is read by name, not imported.
_call_tasks = table("call_tasks", column("message_id"))


@dataclass
class ForecastDay:
    date: dt.date
    sends: Counter = field(default_factory=Counter)  # channel → messages handed to the provider
    segments: int = 0
    cost: float = 0.0
    held_out: int = 0
    suppressed: int = 0  # no consented contact on any of the campaign's channels
    deferred_quiet: int = 0  # due inside quiet hours: sent when they end
    deferred_cap: int = 0  # over the cross-campaign frequency cap: pushed back, may expire


@dataclass
class Forecast:
    days: list[ForecastDay]
    tasks_by_store: dict[str, float]  # store name → expected call tasks over the period
    task_rate: float | None  # call tasks per sent message, from this kind's history (None: no history)
    segments_per_sms: dict[str, float]  # locale → average segments
    segment_cost: float
    problems: list[str] = field(default_factory=list)
    computed_at: dt.datetime | None = None

    @property
    def totals(self) -> ForecastDay:
        total = ForecastDay(self.days[0].date if self.days else dt.date.today())
        for day in self.days:
            total.sends.update(day.sends)
            for name in ("segments", "cost", "held_out", "suppressed", "deferred_quiet", "deferred_cap"):
                setattr(total, name, getattr(total, name) + getattr(day, name))
        return total


@dataclass(frozen=True)
class _Row:
    member_id: int
    due_at: dt.datetime
    channel: str | None
    status: str
    store_id: int | None
    timezone: str | None
    locale: str
    purchase_id: int | None


def forecast(
    session: Session, campaign: Campaign, now: dt.datetime | None = None, segment_cost: float = 0.05
) -> Forecast:
    """What ``campaign`` would do over the next 30 days if it were launched at ``now``."""
    now = now or utcnow()
    audience = AUDIENCES.get(campaign.kind)
    days = [ForecastDay((now + dt.timedelta(days=d)).date()) for d in range(DAYS)]
    if audience is None:
        return Forecast(days, {}, None, {}, segment_cost, [f"no audience for {campaign.kind.value}"])
    rows_by_day = due_by_day(session, campaign, audience, now)
    stores = {s.id: s for s in session.scalars(select(Store))}
    segments, problems = _segments_per_locale(session, campaign, rows_by_day, stores, now)
    sent_by_store: Counter = Counter()
    recent = _recent_sends(session, {r.member_id for rows in rows_by_day for r in rows}, now)
    for day, rows in zip(days, rows_by_day, strict=False):
        for row in rows:
            if row.status == MessageStatus.HELD_OUT.value:
                day.held_out += 1
                continue
            if row.status == MessageStatus.SUPPRESSED.value or row.channel is None:
                day.suppressed += 1
                continue
            store = stores.get(row.store_id)
            send_at = max(row.due_at, now)
            allowed = next_allowed(
                send_at, row.timezone or (store.timezone if store else "UTC"), _quiet(campaign, store)
            )
            if allowed > send_at:
                day.deferred_quiet += 1
            if not campaign.transactional and _over_cap(recent[row.member_id], allowed):
                day.deferred_cap += 1
                continue
            recent[row.member_id].append(allowed)
            day.sends[row.channel] += 1
            sent_by_store[row.store_id] += 1
            if row.channel == "sms":
                n = segments.get(row.locale) or segments.get("*", 1.0)
                day.segments += round(n)
                day.cost += n * segment_cost
    rate = _task_rate(session, campaign.kind, now)
    tasks = {
        (stores[sid].name if sid in stores else "no home store"): n * rate
        for sid, n in sent_by_store.items()
        if rate
    }
    return Forecast(days, tasks, rate, segments, segment_cost, problems, now)


_DAY_COUNTS = ("segments", "cost", "held_out", "suppressed", "deferred_quiet", "deferred_cap")


def forecast_to_dict(result: Forecast) -> dict:
    """Plain JSON values (a background job's result)."""
    return {
        "days": [
            {"date": d.date.isoformat(), "sends": dict(d.sends), **{k: getattr(d, k) for k in _DAY_COUNTS}}
            for d in result.days
        ],
        "tasks_by_store": result.tasks_by_store,
        "task_rate": result.task_rate,
        "segments_per_sms": result.segments_per_sms,
        "segment_cost": result.segment_cost,
        "problems": result.problems,
        "computed_at": result.computed_at.isoformat() if result.computed_at else None,
    }


def forecast_from_dict(data: dict) -> Forecast:
    """The inverse of ``forecast_to_dict``."""
    days = [
        ForecastDay(dt.date.fromisoformat(d["date"]), Counter(d["sends"]), **{k: d[k] for k in _DAY_COUNTS})
        for d in data["days"]
    ]
    computed = data.get("computed_at")
    return Forecast(
        days,
        data["tasks_by_store"],
        data["task_rate"],
        data["segments_per_sms"],
        data["segment_cost"],
        data["problems"],
        dt.datetime.fromisoformat(computed) if computed else None,
    )


def due_by_day(session: Session, campaign: Campaign, audience, now: dt.datetime) -> list[list[_Row]]:
    """What falls due on each of the next 30 days (day 0 includes anything already due), in one query.

    Evaluating the due query at the horizon with its look-back window widened by the horizon gives
    exactly the union of the 30 daily evaluations (each day's rows are those due before its end and
    after its start), so the purchase history is read once instead of thirty times.
    """
    by_day: list[list[_Row]] = [[] for _ in range(DAYS)]
    if campaign.kind in _ONE_SHOT:
        # Due once, at launch or at the broadcast's send_at if that is within the period.
        send_at = (campaign.settings or {}).get("send_at")
        at = max(now, dt.datetime.fromisoformat(send_at)) if send_at else now
        day = (at - now) // dt.timedelta(days=1)
        if day < DAYS:
            by_day[day] = _due_rows(
                session, campaign, audience(campaign, at), None, at + dt.timedelta(days=1)
            )
        return by_day
    horizon = now + dt.timedelta(days=DAYS)
    widened = Campaign(
        **{c.key: getattr(campaign, c.key) for c in Campaign.__table__.columns},
    )
    widened.settings = {
        **(campaign.settings or {}),
        "window_days": window_days(campaign) + DAYS - 1,
    }
    for row in _due_rows(session, widened, audience(widened, horizon), None, horizon):
        day = max(0, (row.due_at - now) // dt.timedelta(days=1))
        by_day[day].append(row)
    return by_day


def _due_rows(
    session: Session, campaign: Campaign, due, start: dt.datetime | None, end: dt.datetime
) -> list[_Row]:
    due = due.subquery("due")
    channel, _, status, _ = outcome_columns(campaign)
    already = exists(
        select(1).where(
            Message.campaign_id == campaign.id,
            Message.member_id == due.c.member_id,
            Message.subject_ref == due.c.subject_ref,
            Message.step == 0,
        )
    )
    stmt = (
        select(
            Member.id,
            due.c.due_at,
            channel,
            status,
            Member.home_store_id,
            Member.timezone,
            Member.locale,
            due.c.purchase_id,
        )
        .join_from(due, Member, Member.id == due.c.member_id)
        .where(~already, due.c.due_at < end, *member_conditions((campaign.settings or {}).get("audience")))
    )
    if start is not None:
        stmt = stmt.where(due.c.due_at >= start)
    return [_Row(*row) for row in session.execute(stmt)]


def _quiet(campaign: Campaign, store: Store | None) -> tuple[str, str]:
    return tuple(
        (campaign.settings or {}).get("quiet_hours")
        or ((store.quiet_start, store.quiet_end) if store else DEFAULT_QUIET)
    )


def _over_cap(sends: list[dt.datetime], at: dt.datetime) -> bool:
    return sum(1 for s in sends if at - CAP_WINDOW < s <= at) >= CAP_MESSAGES


def _recent_sends(session: Session, member_ids: set[int], now: dt.datetime) -> dict[int, list[dt.datetime]]:
    """Promotional sends in the last cap window, per member: they count against the cap too."""
    recent: dict[int, list[dt.datetime]] = defaultdict(list)
    if not member_ids:
        return recent
    recent_sends = select(Message.member_id, Message.sent_at).where(
        Message.transactional.is_(False),
        Message.sent_at.is_not(None),
        Message.sent_at > now - CAP_WINDOW,
    )
    if len(member_ids) > 5000:
        # Many members: one range read of the window's sends beats thousands of id lists.
        for member_id, sent_at in session.execute(recent_sends):
            if member_id in member_ids:
                recent[member_id].append(sent_at)
        return recent
    for member_id, sent_at in session.execute(recent_sends.where(Message.member_id.in_(list(member_ids)))):
        recent[member_id].append(sent_at)
    return recent


def _segments_per_locale(session, campaign, rows_by_day, stores, now) -> tuple[dict[str, float], list[str]]:
    """Average SMS segments per locale, from rendering the message for a sample of real recipients."""
    sample: dict[str, dict[int, int | None]] = defaultdict(dict)
    for rows in rows_by_day:
        for row in rows:
            if row.channel == "sms" and len(sample[row.locale]) < SEGMENT_SAMPLE:
                sample[row.locale][row.member_id] = row.purchase_id
    items = subject_items(session, [p for picks in sample.values() for p in picks.values() if p])
    result: dict[str, float] = {}
    problems: list[str] = []
    for locale, picks in sample.items():
        counts = []
        for member in session.scalars(select(Member).where(Member.id.in_(list(picks)))):
            item = items.get(picks[member.id]) if picks[member.id] else None
            try:
                rendered = render_for(campaign, "sms", member, stores.get(member.home_store_id), item, now)
            except TemplateError as exc:
                problems.append(f"SMS for {locale} cannot be rendered: {exc}")
                break
            counts.append(count_sms(rendered.text).segments)
        if counts:
            result[locale] = sum(counts) / len(counts)
    return result, problems


def _task_rate(session: Session, kind: CampaignKind, now: dt.datetime) -> float | None:
    """Call tasks per sent message for this kind of campaign over the last 90 days."""
    sent = (
        select(Message.id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Campaign.kind == kind, Message.sent_at > now - HISTORY)
    )
    n_sent = session.scalar(select(func.count()).select_from(sent.subquery())) or 0
    if not n_sent:
        return None
    n_tasks = session.scalar(
        select(func.count()).select_from(_call_tasks).where(_call_tasks.c.message_id.in_(sent))
    )
    return (n_tasks or 0) / n_sent
