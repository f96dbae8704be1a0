"""Callback outcomes beyond the basics: SLA in opening hours, root causes, no-contact opt-out,
escalation, reassignment, re-survey, queue filters; and unclear replies going to triage."""

import datetime as dt

import pytest
from sqlalchemy import select

from accounts.staff import Role
from campaigns.campaign import CampaignKind
from campaigns.inbound import InboundMessage, InboundStatus
from campaigns.message import Message, MessageStatus
from campaigns.replies import mark_handled, needs_clarification, store_inbound
from membership.member import ConsentEvent, ContactHold, Member
from service.intake import handle_reply
from service.queue import claim_next, list_tasks, log_outcome, reassign
from service.sla import sla_due
from service.task import CallLog, CallTask, TaskOutcome, TaskStatus

NOW = dt.datetime(2026, 6, 15, 4, 0)  # 12:00 in Shanghai


def _complaint(session, factory, member=None, body="2 鞋底开胶", sid="SM1", now=NOW):
    """A survey sent to a member, answered "2": returns (task, survey message)."""
    member = member or factory.member()
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
        transactional=True,
    )
    session.add(message)
    session.flush()
    inbound, _ = store_inbound(
        session, channel="sms", provider_id=sid, from_address=member.phone, body=body, raw={}
    )
    _, task_id = handle_reply(session, inbound.id, now)
    return (session.get(CallTask, task_id) if task_id else None), message


@pytest.mark.parametrize(
    ("start", "zone", "due"),
    [
        (dt.datetime(2026, 6, 15, 4, 0), "Asia/Shanghai", dt.datetime(2026, 6, 15, 8, 0)),  # noon → 16:00
        (dt.datetime(2026, 6, 15, 14, 0), "Asia/Shanghai", dt.datetime(2026, 6, 16, 5, 0)),  # 22:00 → 13:00
        (
            dt.datetime(2026, 6, 15, 11, 0),
            "Asia/Shanghai",
            dt.datetime(2026, 6, 16, 3, 0),
        ),  # 19:00: 2 h + 2 h
        (dt.datetime(2026, 6, 14, 23, 30), "Asia/Shanghai", dt.datetime(2026, 6, 15, 5, 0)),  # 07:30 → 13:00
        # London, the night the clocks go forward (29 March 2026): opening hours are local hours.
        (
            dt.datetime(2026, 3, 28, 22, 0),
            "Europe/London",
            dt.datetime(2026, 3, 29, 12, 0),
        ),  # 09:00 BST + 4 h
        (
            dt.datetime(2026, 10, 24, 22, 0),
            "Europe/London",
            dt.datetime(2026, 10, 25, 13, 0),
        ),  # 09:00 GMT + 4 h
    ],
)
def test_sla_counts_opening_hours_in_the_store_time_zone(start, zone, due):
    assert sla_due(start, zone, "09:00", "21:00", 4) == due


def test_task_due_time_follows_the_members_store_hours(session, factory):
    late_store = factory.store(timezone="Asia/Shanghai", opens_at="10:00", closes_at="20:00")
    evening = dt.datetime(2026, 6, 15, 13, 0)  # 21:00 in Shanghai: the store is closed
    task, _ = _complaint(session, factory, factory.member(store=late_store), now=evening)
    assert task.due_at == dt.datetime(2026, 6, 16, 6, 0)  # 10:00 + 4 h = 14:00 local


def test_resolving_needs_a_root_cause_and_can_schedule_a_resurvey(session, factory):
    agent = factory.staff(Role.AGENT)
    task, survey = _complaint(session, factory)
    with pytest.raises(ValueError, match="root cause"):
        log_outcome(session, task.id, agent.id, TaskOutcome.RESOLVED, now=NOW)
    with pytest.raises(ValueError):
        log_outcome(session, task.id, agent.id, TaskOutcome.RESOLVED, now=NOW, root_cause="bad-luck")
    log_outcome(
        session,
        task.id,
        agent.id,
        TaskOutcome.RESOLVED,
        "new pair sent",
        NOW,
        root_cause="product_defect",
        resurvey=True,
    )
    assert task.status is TaskStatus.RESOLVED and task.root_cause == "product_defect"
    resurvey = session.get(Message, task.resurvey_message_id)
    assert resurvey.step == 1 and resurvey.subject_ref == survey.subject_ref
    assert resurvey.campaign_id == survey.campaign_id and resurvey.transactional
    assert resurvey.status is MessageStatus.PENDING and resurvey.send_after == NOW + dt.timedelta(days=3)
    assert "re-survey after call task" in resurvey.reason
    hold = session.scalars(select(ContactHold).where(ContactHold.source_ref == f"task:{task.id}")).one()
    assert hold.released_at == NOW


def test_no_contact_withdraws_consent_on_every_channel_with_evidence(session, factory):
    agent = factory.staff(Role.AGENT)
    task, _ = _complaint(session, factory)
    log_outcome(session, task.id, agent.id, TaskOutcome.NO_CONTACT, "please never call", NOW)
    member = session.get(Member, task.member_id)
    session.refresh(member)
    assert task.status is TaskStatus.CLOSED and not member.sms_consent and not member.email_consent
    events = session.scalars(
        select(ConsentEvent).where(ConsentEvent.member_id == member.id, ConsentEvent.source == "call")
    ).all()
    assert {e.channel.value for e in events} == {"sms", "email"}
    assert all(f"call task {task.id}" in e.evidence and not e.granted for e in events)


def test_escalated_task_jumps_the_queue(session, factory):
    agent = factory.staff(Role.AGENT)
    first, _ = _complaint(session, factory, sid="SM1")
    second, _ = _complaint(session, factory, sid="SM2")
    assert claim_next(session, agent.id, NOW).id == first.id
    log_outcome(session, first.id, agent.id, TaskOutcome.ESCALATED, "needs a manager", NOW)
    assert first.status is TaskStatus.OPEN and first.priority > second.priority
    assert claim_next(session, agent.id, NOW).id == first.id


def test_reassign_hands_the_task_to_a_colleague_and_logs_it(session, factory):
    agent, colleague = factory.staff(Role.AGENT), factory.staff(Role.AGENT)
    task, _ = _complaint(session, factory)
    reassign(session, task.id, colleague.id, agent.id, NOW)
    assert task.claimed_by == colleague.id and task.status is TaskStatus.CLAIMED
    assert claim_next(session, agent.id, NOW + dt.timedelta(hours=1)) is None  # not free for others
    log = session.scalars(select(CallLog).where(CallLog.task_id == task.id)).one()
    assert log.outcome == "reassigned" and log.staff_id == agent.id and task.attempts == 0
    assert [t.id for t, *_ in list_tasks(session, status="open", staff_id=colleague.id)] == [task.id]


def test_queue_filters_by_store_and_overdue(session, factory):
    north, south = factory.store(), factory.store()
    t_north, _ = _complaint(session, factory, factory.member(store=north), sid="SM1")
    t_south, _ = _complaint(session, factory, factory.member(store=south), sid="SM2")
    assert [t.id for t, *_ in list_tasks(session, store_id=north.id)] == [t_north.id]
    assert list_tasks(session, overdue=True, now=NOW) == []
    t_south.due_at = NOW - dt.timedelta(minutes=1)
    session.flush()
    overdue = list_tasks(session, overdue=True, now=NOW)
    assert [(t.id, s.id) for t, _m, s in overdue] == [(t_south.id, south.id)]


def test_second_unclear_reply_goes_to_triage_after_one_clarification(session, factory):
    member = factory.member()
    task, survey = _complaint(session, factory, member, body="嗯？", sid="SM1")
    assert task is None and needs_clarification(session, member.id, NOW) is False
    first = session.scalars(select(InboundMessage).where(InboundMessage.provider_id == "SM1")).one()
    assert first.status is InboundStatus.PROCESSED and first.intent == "unclear"
    again, _ = store_inbound(
        session, channel="sms", provider_id="SM2", from_address=member.phone, body="what?", raw={}
    )
    outcome, _ = handle_reply(session, again.id, NOW)
    assert outcome.status is InboundStatus.TRIAGE
    # The survey is still open: a clear answer afterwards still counts and still opens a task.
    third, _ = store_inbound(
        session, channel="sms", provider_id="SM3", from_address=member.phone, body="2", raw={}
    )
    _, task_id = handle_reply(session, third.id, NOW)
    assert task_id is not None and session.get(InboundMessage, third.id).message_id == survey.id


def test_clarification_is_offered_once_per_survey(session, factory):
    member = factory.member()
    _complaint(session, factory, member, body="1", sid="SM0")
    assert needs_clarification(session, member.id, NOW) is False  # answered: no open survey
    _complaint(session, factory, factory.member(), body="2", sid="SMx")
    fresh = factory.member()
    campaign = factory.campaign(CampaignKind.SURVEY)
    session.add(
        Message(
            campaign_id=campaign.id,
            member_id=fresh.id,
            subject_ref="p0",
            channel="sms",
            to_address=fresh.phone,
            status=MessageStatus.SENT,
            sent_at=NOW - dt.timedelta(hours=1),
        )
    )
    session.flush()
    assert needs_clarification(session, fresh.id, NOW) is True


def test_staff_assigns_an_unmatched_reply_and_it_is_processed_as_the_members(session, factory):
    agent = factory.staff(Role.AGENT)
    member = factory.member()
    _complaint(session, factory, member, body="1", sid="SM-first")  # answered, closed
    campaign = factory.campaign(CampaignKind.SURVEY)
    open_survey = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref="p-open",
        channel="sms",
        to_address=member.phone,
        status=MessageStatus.SENT,
        sent_at=NOW - dt.timedelta(hours=1),
    )
    session.add(open_survey)
    session.flush()
    stray, _ = store_inbound(
        session, channel="sms", provider_id="SM-wife", from_address="+8613900000001", body="2 太差了", raw={}
    )
    outcome, task_id = handle_reply(session, stray.id, NOW)
    assert outcome.status is InboundStatus.UNMATCHED and task_id is None
    outcome, task_id = handle_reply(session, stray.id, NOW, member_id=member.id)
    assert outcome.intent == "unsatisfied" and task_id is not None
    assert session.get(InboundMessage, stray.id).message_id == open_survey.id
    mark_handled(session, stray.id, agent.id, "wife's phone", NOW)
    row = session.get(InboundMessage, stray.id)
    assert row.handled_by == agent.id and row.handled_at == NOW and row.staff_note == "wife's phone"
    # Processing again changes nothing: one task, whatever is retried.
    handle_reply(session, stray.id, NOW, member_id=member.id)
    assert len(session.scalars(select(CallTask).where(CallTask.member_id == member.id)).all()) == 1
