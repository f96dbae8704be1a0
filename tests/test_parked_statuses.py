"""A delivery-status callback that overtakes its message's outcome commit is parked, then applied."""

import datetime as dt

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from campaigns.campaign import CampaignKind
from campaigns.delivery import PARK_FOR, apply_parked_statuses
from campaigns.message import Message, MessageEvent, MessageStatus, ParkedStatus

PATH = "/webhooks/twilio/status"
SID = "SM" + "e" * 32


def _post(client, sid: str, status: str, error_code: str | None = None):
    params = {"MessageSid": sid, "MessageStatus": status}
    if error_code:
        params["ErrorCode"] = error_code
    signature = RequestValidator("test-auth-token").compute_signature(
        "https://huifang.example.com" + PATH, params
    )
    return client.post(PATH, data=params, headers={"X-Twilio-Signature": signature})


def _claimed(session, factory, provider_id=None) -> Message:
    member = factory.member()
    message = Message(
        campaign_id=factory.campaign(CampaignKind.BROADCAST).id,
        member_id=member.id,
        subject_ref="b1",
        channel="sms",
        to_address=member.phone,
        status=MessageStatus.SENDING,
        provider_id=provider_id,
    )
    session.add(message)
    session.commit()
    return message


def test_a_callback_before_the_outcome_commit_is_parked_then_applied(client, session, factory):
    message = _claimed(session, factory)  # the provider accepted it; our group commit is still to come
    assert _post(client, SID, "failed", "30003").status_code == 204
    session.expire_all()
    parked = session.scalars(select(ParkedStatus)).one()
    assert (parked.provider_id, parked.status, parked.error_code, parked.settled_at) == (
        SID,
        "failed",
        "30003",
        None,
    )

    message.status, message.provider_id = MessageStatus.SENT, SID  # the outcome commit lands
    session.commit()
    assert apply_parked_statuses(session) == {"applied": 1, "stale": 0, "unmatched": 0}
    session.commit()
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.FAILED
    assert session.get(Message, message.id).error_code == "30003"
    assert session.get(ParkedStatus, parked.id).outcome == "applied"
    events = session.scalars(select(MessageEvent.detail).where(MessageEvent.message_id == message.id)).all()
    assert "provider: failed" in events
    assert apply_parked_statuses(session) == {"applied": 0, "stale": 0, "unmatched": 0}  # applied once


def test_a_parked_callback_that_says_nothing_new_is_closed_as_stale(client, session, factory):
    _claimed(session, factory, provider_id=None)
    _post(client, SID, "sent")
    message = session.scalars(select(Message)).one()
    message.status, message.provider_id = MessageStatus.DELIVERED, SID
    session.commit()
    assert apply_parked_statuses(session)["stale"] == 1
    session.commit()
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED  # never moves back


def test_an_orphan_callback_is_kept_and_closed_as_unmatched_after_the_parking_time(client, session):
    _post(client, "SM" + "0" * 32, "delivered")
    received = session.scalars(select(ParkedStatus)).one().received_at
    assert apply_parked_statuses(session, received + dt.timedelta(hours=1))["unmatched"] == 0
    assert apply_parked_statuses(session, received + PARK_FOR + dt.timedelta(minutes=1))["unmatched"] == 1
    session.commit()
    session.expire_all()
    row = session.scalars(select(ParkedStatus)).one()
    assert row.outcome == "unmatched" and row.settled_at is not None  # closed, not deleted
