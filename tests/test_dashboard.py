"""Dashboard figures on both databases: messages per day, satisfaction per week, repeat purchases per month."""

import datetime as dt

from accounts.staff import Role
from campaigns.dashboard import messages_by_day, repeat_purchase_by_month, satisfaction_by_week
from campaigns.inbound import SurveyResponse
from campaigns.message import Message, MessageStatus
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
