"""The tick: set-based due sets, the dedup key, holdout and consent decided in SQL."""

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from campaigns.campaign import CampaignKind
from campaigns.message import Message, MessageStatus
from campaigns.scheduler import tick
from database.appsession import sessionmaker_for

DAY = dt.timedelta(days=1)


def _messages(session):
    return session.scalars(select(Message).order_by(Message.id)).all()


def test_survey_due_after_n_days_once_per_shopping_day(session, factory, now):
    member = factory.member()
    paddle, balls = factory.product(), factory.product()
    first = factory.purchase(member, paddle, now - 4 * DAY)
    factory.purchase(member, balls, now - 4 * DAY + dt.timedelta(minutes=5))  # same visit
    factory.purchase(member, paddle, now - 1 * DAY)  # too recent
    factory.purchase(member, paddle, now - 30 * DAY)  # too old for the window
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})

    result = tick(session, now)

    rows = _messages(session)
    assert result.total == 1 and len(rows) == 1
    assert rows[0].purchase_id == first.id and rows[0].subject_ref == f"p{first.id}"
    assert rows[0].status is MessageStatus.PENDING and rows[0].channel == "sms"
    assert rows[0].to_address == member.phone and rows[0].transactional is True


def test_second_tick_inserts_nothing(session, factory, now):
    for _ in range(5):
        factory.purchase(factory.member(), factory.product(), now - 4 * DAY)
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})
    assert tick(session, now).total == 5
    assert tick(session, now).total == 0
    assert tick(session, now + dt.timedelta(hours=2)).total == 0
    assert session.scalar(select(func.count()).select_from(Message)) == 5


def test_replenishment_due_before_predicted_end_of_life_unless_repurchased(session, factory, now):
    product = factory.product(prior_days=180)  # Weibull(2) prior: 30% quantile ≈ 129 days
    factory.estimates()
    due_member, repurchased, early = factory.member(), factory.member(), factory.member()
    factory.purchase(due_member, product, now - 125 * DAY)  # 129 - 7 lead days = 122 ≤ 125
    factory.purchase(repurchased, product, now - 125 * DAY)
    factory.purchase(repurchased, product, now - 10 * DAY)
    factory.purchase(early, product, now - 60 * DAY)
    factory.campaign(CampaignKind.REPLENISHMENT, settings={"lead_days": 7, "window_days": 14})

    tick(session, now)

    rows = _messages(session)
    assert [r.member_id for r in rows] == [due_member.id]
    assert rows[0].reason.startswith("due: replenishment")


def test_no_consent_is_suppressed_with_a_reason_and_email_is_the_fallback(session, factory, now):
    product = factory.product()
    silent = factory.member(sms_consent=False, email_consent=False)
    email_only = factory.member(sms_consent=False)
    for member in (silent, email_only):
        factory.purchase(member, product, now - 4 * DAY)
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})

    tick(session, now)

    by_member = {m.member_id: m for m in _messages(session)}
    assert by_member[silent.id].status is MessageStatus.SUPPRESSED
    assert "no consented contact" in by_member[silent.id].reason
    assert by_member[email_only.id].channel == "email"
    assert by_member[email_only.id].to_address == email_only.email


def test_holdout_is_stable_and_recorded(session, factory, now):
    product = factory.product()
    members = [factory.member() for _ in range(200)]
    for member in members:
        factory.purchase(member, product, now - 4 * DAY)
    campaign = factory.campaign(
        CampaignKind.SURVEY, holdout_pct=20, settings={"days_after": 3, "window_days": 7}
    )

    tick(session, now)

    held = [m for m in _messages(session) if m.status is MessageStatus.HELD_OUT]
    assert 20 <= len(held) <= 60  # ~20% of 200
    assert all("held out" in m.reason for m in held)
    from database.sql import hash_bucket

    again = session.scalars(
        select(Message.member_id).where(hash_bucket(Message.member_id, campaign.id) < 20)
    ).all()
    assert sorted(again) == sorted(m.member_id for m in held)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_ticks_never_duplicate(app, session, factory, now):
    """Four schedulers at once on PostgreSQL (SQLite serialises writers, so it cannot race)."""
    product = factory.product()
    for _ in range(300):
        factory.purchase(factory.member(), product, now - 4 * DAY)
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})
    session.commit()

    barrier = threading.Barrier(4)
    errors = []

    def run():
        s = sessionmaker_for(app)()
        try:
            barrier.wait()
            tick(s, now)
            s.commit()
        except Exception as exc:  # surfaced below: a failed tick must fail the test
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = session.execute(
        select(Message.campaign_id, Message.member_id, Message.subject_ref, Message.step)
    ).all()
    assert len(keys) == 300 == len(set(keys))
