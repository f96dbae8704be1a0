"""Dashboard figures on both databases: messages per day, satisfaction per week, repeat purchases per
month, and the background snapshot that keeps the heavy ones off the page's request."""

import datetime as dt

from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from accounts.staff import Role
from campaigns.dashboard import messages_by_day, repeat_purchase_by_month, satisfaction_by_week
from campaigns.dashboard_snapshot import DashboardSnapshot, dashboard_figures, refresh_dashboard
from campaigns.inbound import SurveyResponse
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from jobs.connection import QUEUES, queue, redis
from jobs.schedule import schedule_dashboard_refresh
from service.queue import task_counts
from tests.test_callback_outcomes import _complaint
from tests.test_web import _login

NOW = dt.datetime(2026, 5, 20, 12, 0)  # a Wednesday


def _sent(session, campaign, member, channel, at, ref):
    session.add(
        Message(
            campaign_id=campaign.id,
            member_id=member.id,
            subject_ref=ref,
            channel=channel,
            status=MessageStatus.SENT,
            sent_at=at,
        )
    )


def test_messages_by_day_fills_gaps_and_splits_channels(session, factory):
    member, campaign = factory.member(), factory.campaign()
    _sent(session, campaign, member, "sms", NOW - dt.timedelta(days=2, hours=1), "a")
    _sent(session, campaign, member, "sms", NOW - dt.timedelta(days=2, hours=3), "b")
    _sent(session, campaign, member, "email", NOW - dt.timedelta(days=2), "c")
    _sent(session, campaign, member, "sms", NOW - dt.timedelta(days=40), "old")
    session.flush()
    days = messages_by_day(session, 7, NOW)
    assert [d.day for d in days] == [NOW.date() - dt.timedelta(days=6 - i) for i in range(7)]
    by_date = {d.day: (d.sms, d.email) for d in days}
    assert by_date[dt.date(2026, 5, 18)] == (2, 1)
    assert sum(d.total for d in days) == 3


def test_satisfaction_by_week_buckets_on_mondays(session, factory):
    member, campaign = factory.member(), factory.campaign()
    _sent(session, campaign, member, "sms", NOW, "x")
    session.flush()
    message_id = session.query(Message.id).scalar()
    answers = [
        ("satisfied", NOW),
        ("unsatisfied", NOW - dt.timedelta(days=1)),
        ("satisfied", NOW - dt.timedelta(days=8)),
    ]
    for i, (answer, at) in enumerate(answers):
        session.add(
            SurveyResponse(
                inbound_id=_inbound(session, f"SMx{i}"),
                message_id=message_id,
                member_id=member.id,
                answer=answer,
                created_at=at,
            )
        )
    session.flush()
    weeks = satisfaction_by_week(session, 3, NOW)
    assert [w.week_start for w in weeks] == [dt.date(2026, 5, 4), dt.date(2026, 5, 11), dt.date(2026, 5, 18)]
    assert (weeks[-1].satisfied, weeks[-1].unsatisfied) == (1, 1) and weeks[-1].share == 0.5
    assert (weeks[1].satisfied, weeks[1].unsatisfied) == (1, 0)
    assert weeks[0].share is None


def _inbound(session, sid):
    from campaigns.replies import store_inbound

    inbound, _ = store_inbound(session, channel="sms", provider_id=sid, from_address="+1", body="1", raw={})
    return inbound.id


def test_repeat_purchase_rate_by_month(session, factory):
    product = factory.product()
    loyal, new, lapsed = factory.member(), factory.member(), factory.member()
    factory.purchase(loyal, product, dt.datetime(2026, 3, 10))
    factory.purchase(loyal, product, dt.datetime(2026, 5, 2))
    factory.purchase(loyal, product, dt.datetime(2026, 5, 9))  # twice in May: counted once
    factory.purchase(new, product, dt.datetime(2026, 5, 3))
    factory.purchase(lapsed, product, dt.datetime(2025, 1, 3))
    session.flush()
    months = {m.month: m for m in repeat_purchase_by_month(session, 3, NOW)}
    assert list(months) == ["2026-03", "2026-04", "2026-05"]
    assert (months["2026-05"].buyers, months["2026-05"].returning) == (2, 1)
    assert months["2026-05"].rate == 0.5
    assert (months["2026-03"].buyers, months["2026-03"].returning) == (1, 0)
    assert months["2026-04"].rate is None


def test_dashboard_page_shows_counts_and_charts(client, session, factory):
    _complaint(session, factory)
    marketer = factory.staff(Role.MARKETER)
    session.commit()
    assert task_counts(session) == (1, 1)  # created at a fixed past date: overdue now
    _login(client, marketer.email)
    page = client.get("/").get_data(as_text=True)
    assert "open call tasks" in page and "Messages sent per day" in page and page.count("<svg") == 3


def test_snapshot_is_computed_once_then_read_until_refreshed(session, factory):
    product = factory.product()
    member = factory.member()
    factory.purchase(member, product, dt.datetime(2026, 4, 2))
    session.commit()
    first = dashboard_figures(session, NOW)
    session.commit()
    may = {m.month: m for m in first.repeat}
    assert first.computed_at == NOW and may["2026-04"].buyers == 1 and may["2026-05"].buyers == 0
    factory.purchase(member, product, dt.datetime(2026, 5, 2))
    session.commit()
    # The page reads the stored snapshot: the new purchase shows only after the next refresh.
    stored = dashboard_figures(session, NOW + dt.timedelta(minutes=5))
    assert stored.computed_at == NOW and stored.repeat == first.repeat and stored.by_day == first.by_day
    later = NOW + dt.timedelta(minutes=10)
    refresh_dashboard(session, later)
    session.commit()
    session.expire_all()
    again = dashboard_figures(session, later)
    may = {m.month: m for m in again.repeat}
    assert again.computed_at == later and (may["2026-05"].buyers, may["2026-05"].returning) == (1, 1)
    assert len(again.by_day) == 30 and again.by_day[-1].day == later.date()


def test_dashboard_page_says_when_its_charts_were_computed(client, session, factory):
    marketer = factory.staff(Role.MARKETER)
    refresh_dashboard(session, dt.datetime(2026, 5, 20, 9, 40))
    session.commit()
    _login(client, marketer.email)
    page = client.get("/").get_data(as_text=True)
    assert "computed at 2026-05-20 09:40 UTC" in page


def test_dashboard_refresh_is_scheduled_once_per_slot_and_the_job_stores_a_snapshot(app, session, factory):
    now = dt.datetime(2026, 6, 15, 4, 3)
    assert schedule_dashboard_refresh(now, app) is True
    assert schedule_dashboard_refresh(now + dt.timedelta(minutes=5), app) is False  # another worker
    registry = ScheduledJobRegistry(queue=queue("default", app))
    assert registry.get_job_ids() == ["dashboard-20260615T0410"]
    registry.remove("dashboard-20260615T0410", delete_job=True)
    factory.purchase(factory.member(), factory.product(), utcnow() - dt.timedelta(days=1))
    session.commit()
    queue("default", app).enqueue("jobs.dashboard.refresh_dashboard", job_id="dashboard-now")
    worker = SimpleWorker([queue(name) for name in QUEUES], connection=redis(app), serializer=JSONSerializer)
    assert worker.work(burst=True)
    assert queue("default", app).fetch_job("dashboard-now").is_finished
    session.expire_all()
    snapshot = session.get(DashboardSnapshot, "dashboard")
    assert snapshot is not None and sum(buyers for _, buyers, _ in snapshot.data["repeat"]) == 1
    ids = ScheduledJobRegistry(queue=queue("default", app)).get_job_ids()
    assert len(ids) == 1 and ids[0].startswith("dashboard-")  # it scheduled its next run
