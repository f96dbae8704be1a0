"""Send-time guard-rails, each recorded as a reason on the row: consent, complaints, quiet hours,
the frequency cap by priority, expiry; and held-out members never receive anything."""

import datetime as dt

from sqlalchemy import select

from campaigns.campaign import CampaignKind
from campaigns.message import Message, MessageStatus
from campaigns.scheduler import tick
from campaigns.sending import SendConfig, claim_batch, send_claimed
from channels.file_channel import FileChannel
from membership.member import ContactHold

DAY = dt.timedelta(days=1)
CONFIG = SendConfig("https://x.example", "secret", "reply@shop.example")
NOW = dt.datetime(2026, 6, 15, 4, 0)  # 12:00 in Shanghai, 05:00 in London


def _run(session, tmp_path, now=NOW):
    tick(session, now)
    ids = claim_batch(session, "sms", 100, now)
    session.commit()
    return send_claimed(session, FileChannel("sms", tmp_path / "outbox"), ids, CONFIG, now=now)


def _by_member(session):
    return {m.member_id: m for m in session.scalars(select(Message))}


def _promo(factory, priority=50, **kw):
    return factory.campaign(
        CampaignKind.BROADCAST, priority=priority, settings={"audience": {}, **kw.pop("settings", {})}, **kw
    )


def test_consent_withdrawn_after_tick_suppresses(session, factory, tmp_path):
    member = factory.member()
    _promo(factory)
    tick(session, NOW)
    member.sms_consent = False
    member.email_consent = False
    session.flush()
    ids = claim_batch(session, "sms", 10, NOW)
    send_claimed(session, FileChannel("sms", tmp_path / "outbox"), ids, CONFIG, now=NOW)
    row = _by_member(session)[member.id]
    assert row.status is MessageStatus.SUPPRESSED and "consent withdrawn" in row.reason
    assert not (tmp_path / "outbox").exists()


def test_quiet_hours_defer_to_the_members_morning(session, factory, tmp_path):
    london = factory.store(timezone="Europe/London")
    member = factory.member(store=london)
    _promo(factory)
    _run(session, tmp_path)
    row = _by_member(session)[member.id]
    assert row.status is MessageStatus.DEFERRED and "quiet hours" in row.reason
    assert row.send_after == dt.datetime(2026, 6, 15, 7, 0)  # 08:00 BST


def test_open_complaint_pauses_promotions_but_not_surveys(session, factory, tmp_path):
    member = factory.member()
    session.add(ContactHold(member_id=member.id, reason="open complaint", source_ref="task:x"))
    factory.purchase(member, factory.product(), NOW - 4 * DAY)
    _promo(factory)
    factory.campaign(CampaignKind.SURVEY, settings={"days_after": 3, "window_days": 7})
    _run(session, tmp_path)
    states = {m.transactional: m for m in session.scalars(select(Message))}
    assert states[False].status is MessageStatus.DEFERRED and "open complaint" in states[False].reason
    assert states[True].status is MessageStatus.SENT


def test_frequency_cap_defers_by_priority_and_never_drops(session, factory, tmp_path):
    member = factory.member()
    low, mid, high = (
        _promo(factory, 10, name="low"),
        _promo(factory, 50, name="mid"),
        _promo(factory, 90, name="high"),
    )
    _run(session, tmp_path)
    rows = {m.campaign_id: m for m in session.scalars(select(Message).where(Message.member_id == member.id))}
    assert rows[high.id].status is MessageStatus.SENT and rows[mid.id].status is MessageStatus.SENT
    assert rows[low.id].status is MessageStatus.DEFERRED and "frequency cap" in rows[low.id].reason
    assert rows[low.id].send_after == NOW + dt.timedelta(days=7)  # when the first of the two ages out


def test_stale_deferred_promotion_is_cancelled_with_a_reason(session, factory, tmp_path):
    member = factory.member()
    _promo(factory, settings={"expire_days": 3})
    tick(session, NOW)
    later = NOW + 4 * DAY
    ids = claim_batch(session, "sms", 10, later)
    send_claimed(session, FileChannel("sms", tmp_path / "outbox"), ids, CONFIG, now=later)
    row = _by_member(session)[member.id]
    assert row.status is MessageStatus.CANCELLED and row.reason.startswith("stale")


def test_held_out_members_never_receive(session, factory, tmp_path):
    members = [factory.member() for _ in range(60)]
    _promo(factory, holdout_pct=30)
    _run(session, tmp_path)
    rows = _by_member(session)
    held = [m for m in members if rows[m.id].status is MessageStatus.HELD_OUT]
    assert held, "a 30% holdout of 60 members holds somebody out"
    assert all(rows[m.id].sent_at is None for m in held)
    written = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "outbox").iterdir())
    assert all(m.phone not in written for m in held)
    assert claim_batch(session, "sms", 100, NOW + 30 * DAY) == []


def test_audience_filter_narrows_in_sql(session, factory):
    climber = factory.member(interests=["mountaineering"], tier="gold")
    factory.member(interests=["swimming"], tier="gold")
    factory.member(interests=["mountaineering"], tier="standard")
    _promo(factory, settings={"audience": {"interests": ["mountaineering"], "tiers": ["gold"]}})
    tick(session, NOW)
    assert [m.member_id for m in session.scalars(select(Message))] == [climber.id]
