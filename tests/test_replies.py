"""Replies are stored first and never dropped: unknown senders and stray answers wait for staff."""

import datetime as dt

from sqlalchemy import select

from campaigns.campaign import CampaignKind
from campaigns.inbound import InboundMessage, InboundStatus
from campaigns.message import Message, MessageStatus
from campaigns.replies import process_inbound, store_inbound
from membership.member import ConsentEvent, Member
from service.intake import handle_reply
from service.task import CallTask


def _store(session, sender, body, sid):
    row, _ = store_inbound(session, channel="sms", provider_id=sid, from_address=sender, body=body, raw={})
    return row


def _sent_survey(session, factory, member, now):
    campaign = factory.campaign(CampaignKind.SURVEY)
    purchase = factory.purchase(member, factory.product(), now - dt.timedelta(days=4))
    message = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref=f"p{purchase.id}",
        purchase_id=purchase.id,
        channel="sms",
        to_address=member.phone,
        status=MessageStatus.SENT,
        sent_at=now - dt.timedelta(hours=2),
    )
    session.add(message)
    session.flush()
    return message


def test_unknown_number_is_stored_and_unmatched(session):
    row = _store(session, "+8613900000000", "2", "SM-unknown")
    outcome = process_inbound(session, row.id)
    assert outcome.status is InboundStatus.UNMATCHED and outcome.intent == "unsatisfied"
    assert session.get(InboundMessage, row.id).status is InboundStatus.UNMATCHED


def test_answer_without_open_survey_is_stored_and_unmatched(session, factory):
    member = factory.member()
    row = _store(session, member.phone, "1", "SM-nosurvey")
    outcome, task = handle_reply(session, row.id)
    assert outcome.status is InboundStatus.UNMATCHED and outcome.member_id == member.id and task is None


def test_duplicate_provider_id_is_stored_once_and_processed_once(session, factory):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    member = factory.member()
    _sent_survey(session, factory, member, now)
    first, created = store_inbound(
        session, channel="sms", provider_id="SM-dup", from_address=member.phone, body="2", raw={}
    )
    second, created_again = store_inbound(
        session, channel="sms", provider_id="SM-dup", from_address=member.phone, body="2", raw={}
    )
    assert created and not created_again and first.id == second.id
    handle_reply(session, first.id)
    handle_reply(session, first.id)
    assert len(session.scalars(select(CallTask)).all()) == 1


def test_stop_withdraws_consent_with_evidence(session, factory):
    member = factory.member()
    row = _store(session, member.phone, "STOP", "SM-stop")
    process_inbound(session, row.id)
    session.refresh(member)
    assert member.sms_consent is False and member.sms_consent_source == "sms_reply"
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.member_id == member.id)).one()
    assert event.granted is False and event.evidence == "STOP"


def test_satisfied_answer_creates_no_task(session, factory):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    member = factory.member()
    _sent_survey(session, factory, member, now)
    row = _store(session, member.phone, "1 满意", "SM-happy")
    outcome, task = handle_reply(session, row.id)
    assert outcome.intent == "satisfied" and outcome.survey_response_id and task is None
    assert session.scalar(select(Member.sms_consent).where(Member.id == member.id)) is True
