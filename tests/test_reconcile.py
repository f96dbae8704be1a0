"""Reconciling ``unknown`` messages: look them up at the provider, never resend blindly."""

import datetime as dt

import pytest
from sqlalchemy import select, update

from campaigns.campaign import CampaignKind
from campaigns.message import Message, MessageEvent, MessageStatus
from campaigns.reconcile import (
    MAX_LOOKUPS,
    NEEDS_HUMAN,
    RECONCILE_AFTER,
    FileLookup,
    TwilioLookup,
    needing_review,
    reconcile,
)
from campaigns.scheduler import tick
from campaigns.sending import SendConfig, claim_batch, expire_stale_claims, send_claimed
from channels.twilio_sms import TwilioSmsChannel
from database.base import utcnow
from tests.loopback_twilio import ACCOUNT_SID, LoopbackTwilio

LATER = RECONCILE_AFTER + dt.timedelta(minutes=1)
CONFIG = SendConfig("https://huifang.example.com", "test-secret")


@pytest.fixture
def twilio():
    fake = LoopbackTwilio().start()
    yield fake
    fake.stop()


def _channel(fake, timeout=5.0):
    return TwilioSmsChannel(
        ACCOUNT_SID, "token", from_number="+15005550006", api_base_url=fake.url, timeout=timeout
    )


def _due_sms(session, factory, n=1):
    """``n`` due SMS rows in the outbox, written by the real tick."""
    now = utcnow()
    store = factory.store(timezone="UTC", quiet_start="00:00", quiet_end="00:00")
    product = factory.product()
    members = [factory.member(store=store) for _ in range(n)]
    for member in members:
        factory.purchase(member, product, now - dt.timedelta(days=4))
    factory.campaign(CampaignKind.SURVEY, channels=["sms"], settings={"days_after": 3, "window_days": 7})
    session.commit()
    assert tick(session, now).total == n
    session.commit()
    return members


def _claimed_long_ago(session, limit=10):
    """Claim due rows as a worker that then died ten minutes ago, and expire its claims."""
    ids = claim_batch(session, "sms", limit)
    session.execute(update(Message).where(Message.id.in_(ids)).values(claimed_at=utcnow() - LATER))
    session.commit()
    assert expire_stale_claims(session) == len(ids)
    session.commit()
    return ids


def _claim_and_send(session, channel):
    ids = claim_batch(session, "sms", 100)
    session.commit()
    send_claimed(session, channel, ids, CONFIG)
    return ids


def test_timeout_after_acceptance_is_found_at_the_provider_not_resent(session, factory, twilio):
    (member,) = _due_sms(session, factory)
    twilio.stall_after_store = 1.0  # Twilio stores the message, but answers after our timeout
    channel = _channel(twilio, timeout=0.3)
    (message_id,) = _claim_and_send(session, channel)
    message = session.get(Message, message_id)
    assert message.status is MessageStatus.UNKNOWN and message.provider_id is None

    twilio.stall_after_store = 0.0
    assert reconcile(session, {"sms": TwilioLookup(channel)}, utcnow()).counts == {}  # not settled yet
    report = reconcile(session, {"sms": TwilioLookup(channel)}, utcnow() + LATER)
    assert report.counts == {"sent": 1}
    session.expire_all()
    message = session.get(Message, message_id)
    (accepted,) = twilio.sent_to(member.phone)
    assert message.status is MessageStatus.SENT and message.provider_id == accepted["sid"]
    assert message.reason.startswith("reconciled:") and message.sent_at is not None
    # Settled rows are not looked at again, and nothing was sent twice.
    assert reconcile(session, {"sms": TwilioLookup(channel)}, utcnow() + LATER).counts == {}
    assert len(twilio.sent_to(member.phone)) == 1


def test_known_provider_id_is_fetched_and_its_status_adopted(session, factory, twilio):
    (member,) = _due_sms(session, factory)
    channel = _channel(twilio)
    accepted = twilio.create({"To": member.phone, "From": "+15005550006", "Body": "hi"})
    accepted["status"] = "delivered"
    message = session.scalars(select(Message)).one()
    message.status, message.provider_id, message.claimed_at = MessageStatus.UNKNOWN, accepted["sid"], utcnow()
    session.commit()

    assert reconcile(session, {"sms": TwilioLookup(channel)}, utcnow() + LATER).counts == {"delivered": 1}
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED


def test_not_found_at_twilio_stays_unknown_then_goes_to_a_human(session, factory, twilio):
    (member,) = _due_sms(session, factory)
    twilio.create({"To": member.phone, "From": "+15005550099", "Body": "another sender's message"})
    channel = _channel(twilio)
    _claimed_long_ago(session)

    lookups = {"sms": TwilioLookup(channel)}
    for look in range(1, MAX_LOOKUPS):
        assert reconcile(session, lookups, utcnow() + LATER).counts == {"unsure": 1}
        session.expire_all()
        message = session.scalars(select(Message)).one()
        assert message.status is MessageStatus.UNKNOWN
        assert message.reason.startswith(f"reconciling (look {look} of {MAX_LOOKUPS})")
    assert reconcile(session, lookups, utcnow() + LATER).counts == {"needs_human": 1}
    session.expire_all()
    assert [m.id for m in needing_review(session)] == [message.id]
    assert message.reason.startswith(NEEDS_HUMAN) and "may still be queued" in message.reason
    assert reconcile(session, lookups, utcnow() + LATER).counts == {}  # left alone from now on
    assert len(twilio.sent_to(member.phone)) == 1  # only the other sender's: never resent


def test_several_candidates_at_twilio_go_straight_to_a_human(session, factory, twilio):
    (member,) = _due_sms(session, factory)
    for _ in range(2):
        twilio.create({"To": member.phone, "From": "+15005550006", "Body": "Hi"})
    _claimed_long_ago(session)

    report = reconcile(session, {"sms": TwilioLookup(_channel(twilio))}, utcnow() + LATER)
    assert report.counts == {"needs_human": 1}
    session.expire_all()
    assert "2 provider messages match" in session.scalars(select(Message)).one().reason


def test_file_channel_outbox_decides(session, factory, tmp_path):
    members = _due_sms(session, factory, n=2)
    ids = _claimed_long_ago(session)
    (tmp_path / f"{ids[0]:09d}-sms.txt").write_text("To: x\n")  # the first was handed over

    report = reconcile(session, {"sms": FileLookup("sms", tmp_path)}, utcnow())
    assert report.counts == {"sent": 1, "pending": 1}
    session.expire_all()
    sent, requeued = (session.get(Message, i) for i in ids)
    assert sent.status is MessageStatus.SENT and sent.provider_id == f"file:{ids[0]:09d}-sms.txt"
    assert requeued.status is MessageStatus.PENDING and requeued.send_after <= utcnow()
    assert claim_batch(session, "sms", 10) == [requeued.id]  # due again at once
    assert len(members) == 2


def test_channel_without_lookup_goes_to_a_human_at_once(session, factory):
    _due_sms(session, factory)
    _claimed_long_ago(session)
    assert reconcile(session, {}, utcnow()).counts == {"needs_human": 1}
    session.expire_all()
    message = session.scalars(select(Message)).one()
    assert message.status is MessageStatus.UNKNOWN and "offers no message lookup" in message.reason
    events = session.scalars(select(MessageEvent.status).where(MessageEvent.message_id == message.id)).all()
    assert "reconcile" in events


def test_kick_reconcile_enqueues_once_per_interval(app, session, factory):
    from jobs.connection import queue
    from jobs.reconcile import kick_reconcile, reconcile_unknown

    _due_sms(session, factory)
    assert kick_reconcile(utcnow()) is False  # nothing unknown
    _claimed_long_ago(session)
    now = utcnow()
    assert kick_reconcile(now) is True
    assert kick_reconcile(now) is False  # same interval: one job
    assert queue("default").count == 1
    assert reconcile_unknown() == {"pending": 1}  # the file channel: no outbox file, queued again
