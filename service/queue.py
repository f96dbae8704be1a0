"""The callback queue: open a task for an unhappy customer, claim the next one, log what happened."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from campaigns.inbound import SurveyResponse
from campaigns.message import Message
from database.base import utcnow
from database.sql import insert_for
from membership.member import ContactHold, Member
from service.task import OPEN_STATES, CallLog, CallTask, TaskOutcome, TaskStatus

SLA = dt.timedelta(hours=24)
CLAIM_TTL = dt.timedelta(minutes=30)
RETRY_BACKOFF = (dt.timedelta(hours=2), dt.timedelta(hours=6), dt.timedelta(hours=24))
MAX_ATTEMPTS = len(RETRY_BACKOFF) + 1


def open_task_for_response(session: Session, response_id: int, now: dt.datetime | None = None) -> int | None:
    """Create the call task for an unsatisfied answer (once) and pause promotions to the member."""
    now = now or utcnow()
    response = session.get(SurveyResponse, response_id)
    if response is None or response.answer != "unsatisfied":
        return None
    message = session.get(Message, response.message_id)
    member = session.get(Member, response.member_id)
    reason = "unsatisfied survey reply" + (f": {response.comment}" if response.comment else "")
    stmt = insert_for(session, CallTask.__table__).values(
        member_id=response.member_id,
        store_id=member.home_store_id if member else None,
        survey_response_id=response.id,
        message_id=response.message_id,
        purchase_id=message.purchase_id if message else None,
        reason=reason[:300],
        status=TaskStatus.OPEN.value,
        priority=50,
        due_at=now + SLA,
        next_attempt_at=now,
        attempts=0,
        created_at=now,
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["survey_response_id"]))
    task_id = session.scalar(select(CallTask.id).where(CallTask.survey_response_id == response.id))
    hold = insert_for(session, ContactHold.__table__).values(
        member_id=response.member_id, reason="open complaint", source_ref=f"task:{task_id}", started_at=now
    )
    session.execute(hold.on_conflict_do_nothing(index_elements=["source_ref"]))
    return task_id


def claim_next(session: Session, staff_id: int, now: dt.datetime | None = None) -> CallTask | None:
    """Atomically give the agent the most urgent task nobody holds (SKIP LOCKED on PostgreSQL)."""
    now = now or utcnow()
    candidate = (
        select(CallTask.id)
        .where(
            CallTask.next_attempt_at <= now,
            or_(
                CallTask.status.in_([TaskStatus.OPEN, TaskStatus.RESCHEDULED]),
                (CallTask.status == TaskStatus.CLAIMED) & (CallTask.claim_expires_at < now),
            ),
        )
        .order_by(CallTask.due_at, CallTask.priority.desc(), CallTask.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(CallTask)
        .where(CallTask.id == candidate.scalar_subquery())
        .values(status=TaskStatus.CLAIMED, claimed_by=staff_id, claim_expires_at=now + CLAIM_TTL)
        .returning(CallTask.id)
    )
    task_id = session.scalar(stmt)
    return session.get(CallTask, task_id, populate_existing=True) if task_id else None


def log_outcome(
    session: Session, task_id: int, staff_id: int | None, outcome: TaskOutcome, note: str = "", now=None
) -> CallTask:
    """Record one call attempt and move the task on: resolved, rescheduled with backoff, or closed."""
    now = now or utcnow()
    task = session.get(CallTask, task_id, with_for_update=True)
    if task is None:
        raise LookupError(f"call task {task_id} does not exist")
    if task.status not in OPEN_STATES:
        raise ValueError(f"call task {task_id} is already {task.status.value}")
    session.add(CallLog(task_id=task.id, staff_id=staff_id, outcome=outcome.value, note=note or None, at=now))
    task.attempts += 1
    task.outcome = outcome.value
    task.claimed_by, task.claim_expires_at = None, None
    if outcome is TaskOutcome.NO_ANSWER and task.attempts < MAX_ATTEMPTS:
        task.status = TaskStatus.RESCHEDULED
        task.next_attempt_at = now + RETRY_BACKOFF[task.attempts - 1]
        return task
    if outcome is TaskOutcome.ESCALATED:
        task.status, task.priority = TaskStatus.OPEN, task.priority + 50
        return task
    task.status = TaskStatus.RESOLVED if outcome is TaskOutcome.RESOLVED else TaskStatus.CLOSED
    task.closed_at = now
    _release_hold(session, task, now)
    return task


def _release_hold(session: Session, task: CallTask, now: dt.datetime) -> None:
    session.execute(
        update(ContactHold)
        .where(ContactHold.source_ref == f"task:{task.id}", ContactHold.released_at.is_(None))
        .values(released_at=now)
    )


def list_tasks(
    session: Session,
    *,
    status: str | None = None,
    staff_id: int | None = None,
    member_id: int | None = None,
    limit: int = 200,
):
    """Tasks with their member, most urgent first; ``status='open'`` means every not-yet-closed state."""
    stmt = select(CallTask, Member).join(Member, Member.id == CallTask.member_id)
    if status == "open" or status is None:
        stmt = stmt.where(CallTask.status.in_(OPEN_STATES))
    elif status != "all":
        stmt = stmt.where(CallTask.status == TaskStatus(status))
    if staff_id is not None:
        stmt = stmt.where(CallTask.claimed_by == staff_id)
    if member_id is not None:
        stmt = stmt.where(CallTask.member_id == member_id)
    stmt = stmt.order_by(CallTask.due_at, CallTask.id).limit(limit)
    return [tuple(r) for r in session.execute(stmt)]


def task_context(session: Session, task_id: int) -> dict | None:
    """Everything an agent needs on one page: the task, member, survey message, reply and call log."""
    task = session.get(CallTask, task_id)
    if task is None:
        return None
    response = session.get(SurveyResponse, task.survey_response_id) if task.survey_response_id else None
    logs = session.scalars(select(CallLog).where(CallLog.task_id == task.id).order_by(CallLog.at)).all()
    return {
        "task": task,
        "member": session.get(Member, task.member_id),
        "message": session.get(Message, task.message_id) if task.message_id else None,
        "response": response,
        "logs": logs,
    }
