"""Service report figures from real rows: response, satisfaction, task load, first-call time, recovery."""

import datetime as dt

from accounts.staff import Role
from campaigns.campaign import CampaignKind
from campaigns.message import Message, MessageStatus
from campaigns.replies import store_inbound
from service.intake import handle_reply
from service.queue import log_outcome
from service.reports import service_report
from service.task import CallTask, TaskOutcome

NOW = dt.datetime(2026, 6, 15, 4, 0)


def _survey(session, campaign, member, step=0, ref="p1", sent=NOW - dt.timedelta(hours=3)):
    message = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref=ref,
        step=step,
        channel="sms",
        to_address=member.phone,
        status=MessageStatus.DELIVERED,
        sent_at=sent,
        transactional=True,
    )
    session.add(message)
    session.flush()
    return message


def _reply(session, member, body, sid, at):
    inbound, _ = store_inbound(
        session, channel="sms", provider_id=sid, from_address=member.phone, body=body, raw={}
    )
    return handle_reply(session, inbound.id, at)


def test_service_report_counts_what_happened(session, factory):
    agent = factory.staff(Role.AGENT)
    campaign = factory.campaign(CampaignKind.SURVEY)
    members = [factory.member() for _ in range(5)]
    for m in members:
        _survey(session, campaign, m)
    _reply(session, members[0], "1", "SM0", NOW - dt.timedelta(hours=2))
    _reply(session, members[1], "满意", "SM1", NOW - dt.timedelta(hours=2))
    _, t2 = _reply(session, members[2], "2 太硬", "SM2", NOW - dt.timedelta(hours=2))
    _, t3 = _reply(session, members[3], "不满意", "SM3", NOW - dt.timedelta(hours=2))
    # members[4] never answers.
    log_outcome(
        session,
        t2,
        agent.id,
        TaskOutcome.RESOLVED,
        "swapped",
        NOW - dt.timedelta(hours=1),
        root_cause="product_defect",
        resurvey=True,
    )
    task2 = session.get(CallTask, t2)
    resurvey = session.get(Message, task2.resurvey_message_id)
    resurvey.status, resurvey.sent_at = MessageStatus.DELIVERED, NOW - dt.timedelta(minutes=30)
    session.flush()
    _reply(session, members[2], "1 好多了", "SM4", NOW - dt.timedelta(minutes=10))
    session.get(CallTask, t3).due_at = NOW - dt.timedelta(minutes=5)
    session.flush()

    report = service_report(session, since=NOW - dt.timedelta(days=30), now=NOW)
    assert (report.surveys_sent, report.surveys_answered) == (5, 4)
    assert (report.satisfied, report.unsatisfied) == (2, 2)
    assert report.response_rate == 0.8 and report.satisfaction_rate == 0.5
    assert (report.tasks_opened, report.tasks_resolved, report.tasks_open, report.tasks_overdue) == (
        2,
        1,
        1,
        1,
    )
    assert report.median_hours_to_first_call == 1.0
    assert (report.resurveys_answered, report.resurveys_satisfied, report.recovery_rate) == (1, 1, 1.0)


def test_empty_period_has_no_rates(session):
    report = service_report(session, since=NOW - dt.timedelta(days=1), now=NOW)
    assert report.response_rate is None and report.satisfaction_rate is None and report.recovery_rate is None
    assert report.median_hours_to_first_call is None and report.tasks_opened == 0
