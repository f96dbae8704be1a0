"""Service figures: survey response and satisfaction, the callback queue's load, speed and recovery.

Each figure is one aggregate query over the whole period, whatever the number of rows.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from campaigns.campaign import Campaign, CampaignKind
from campaigns.inbound import SurveyResponse
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from service.task import OPEN_STATES, CallLog, CallTask, TaskStatus

SENT_STATES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


@dataclass(frozen=True)
class ServiceReport:
    since: dt.datetime
    surveys_sent: int
    surveys_answered: int
    satisfied: int
    unsatisfied: int
    tasks_opened: int
    tasks_resolved: int
    tasks_open: int
    tasks_overdue: int
    median_hours_to_first_call: float | None
    resurveys_answered: int
    resurveys_satisfied: int

    @property
    def response_rate(self) -> float | None:
        return self.surveys_answered / self.surveys_sent if self.surveys_sent else None

    @property
    def satisfaction_rate(self) -> float | None:
        answered = self.satisfied + self.unsatisfied
        return self.satisfied / answered if answered else None

    @property
    def recovery_rate(self) -> float | None:
        """Share of re-surveyed complainants who now say they are satisfied."""
        return self.resurveys_satisfied / self.resurveys_answered if self.resurveys_answered else None


def service_report(session: Session, since: dt.datetime, now: dt.datetime | None = None) -> ServiceReport:
    """Figures for surveys sent and tasks opened since ``since``."""
    now = now or utcnow()
    survey = and_(Campaign.kind == CampaignKind.SURVEY, Message.is_test.is_(False), Message.sent_at >= since)
    sent = session.execute(
        select(Message.step, func.count())
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(survey, Message.status.in_(SENT_STATES))
        .group_by(Message.step)
    ).all()
    answers = session.execute(
        select(Message.step, SurveyResponse.answer, func.count(func.distinct(SurveyResponse.message_id)))
        .join(Message, Message.id == SurveyResponse.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(survey, SurveyResponse.answer.in_(["satisfied", "unsatisfied"]))
        .group_by(Message.step, SurveyResponse.answer)
    ).all()
    by = {(step, answer): n for step, answer, n in answers}
    tasks = session.execute(
        select(
            func.count(),
            func.count().filter(CallTask.status == TaskStatus.RESOLVED),
            func.count().filter(CallTask.status.in_(OPEN_STATES)),
            func.count().filter(CallTask.status.in_(OPEN_STATES), CallTask.due_at < now),
        ).where(CallTask.created_at >= since)
    ).one()
    first_calls = (
        select(CallLog.task_id, func.min(CallLog.at).label("first_at"))
        .where(CallLog.outcome != "reassigned")
        .group_by(CallLog.task_id)
        .subquery()
    )
    waits = session.execute(
        select(CallTask.created_at, first_calls.c.first_at)
        .join(first_calls, first_calls.c.task_id == CallTask.id)
        .where(CallTask.created_at >= since)
    ).all()
    hours = [(first - created).total_seconds() / 3600 for created, first in waits]
    return ServiceReport(
        since=since,
        surveys_sent=sum(n for step, n in sent if step == 0),
        surveys_answered=by.get((0, "satisfied"), 0) + by.get((0, "unsatisfied"), 0),
        satisfied=by.get((0, "satisfied"), 0),
        unsatisfied=by.get((0, "unsatisfied"), 0),
        tasks_opened=tasks[0],
        tasks_resolved=tasks[1],
        tasks_open=tasks[2],
        tasks_overdue=tasks[3],
        median_hours_to_first_call=round(statistics.median(hours), 1) if hours else None,
        resurveys_answered=sum(n for (step, _answer), n in by.items() if step > 0),
        resurveys_satisfied=sum(n for (step, answer), n in by.items() if step > 0 and answer == "satisfied"),
    )
