"""The callback queue: open a task for an unhappy customer, claim the next one, log what happened."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from campaigns.inbound import SurveyResponse
from campaigns.message import Message, MessageStatus
from database.base import utcnow
from database.sql import insert_for
from membership.catalog import Product
from membership.consent import record_consent
from membership.member import ContactHold, Member
from membership.purchase import Purchase
from membership.store import Store
from service.sla import sla_due
from service.task import OPEN_STATES, CallLog, CallTask, RootCause, TaskOutcome, TaskStatus

CLAIM_TTL = dt.timedelta(minutes=30)
REASSIGN_TTL = dt.timedelta(hours=8)  # a task handed to a colleague stays theirs for a working day
RESURVEY_AFTER = dt.timedelta(days=3)
RESURVEY_STEP = 1  # the original survey is step 0 of the same (campaign, member, purchase)
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
    store = session.get(Store, member.home_store_id) if member and member.home_store_id else None
    due = sla_due(now, store.timezone, store.opens_at, store.closes_at) if store else sla_due(now)
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
        due_at=due,
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
        .order_by(CallTask.priority.desc(), CallTask.due_at, CallTask.id)
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
    session: Session,
    task_id: int,
    staff_id: int | None,
    outcome: TaskOutcome,
    note: str = "",
    now: dt.datetime | None = None,
    *,
    root_cause: RootCause | str | None = None,
    resurvey: bool = False,
) -> CallTask:
    """Record one call attempt and move the task on: resolved, rescheduled with backoff, or closed.

    Resolving needs a root cause; "no contact" withdraws consent on every channel with the call as
    evidence; a resolved task may schedule a re-survey so recovery can be measured.
    """
    now = now or utcnow()
    task = session.get(CallTask, task_id, with_for_update=True)
    if task is None:
        raise LookupError(f"call task {task_id} does not exist")
    if task.status not in OPEN_STATES:
        raise ValueError(f"call task {task_id} is already {task.status.value}")
    if outcome is TaskOutcome.RESOLVED:
        if not root_cause:
            raise ValueError("a resolved task needs a root cause")
        root_cause = RootCause(root_cause)
    session.add(CallLog(task_id=task.id, staff_id=staff_id, outcome=outcome.value, note=note or None, at=now))
    task.attempts += 1
    task.outcome = outcome.value
    task.claimed_by, task.claim_expires_at = None, None
    if outcome is TaskOutcome.NO_ANSWER and task.attempts < MAX_ATTEMPTS:
        task.status = TaskStatus.RESCHEDULED
        task.next_attempt_at = now + RETRY_BACKOFF[task.attempts - 1]
        return task
    if outcome is TaskOutcome.ESCALATED:
        # Back in the queue ahead of everything else, for whoever picks it up next (a manager).
        task.status, task.priority, task.next_attempt_at = TaskStatus.OPEN, task.priority + 50, now
        return task
    if outcome is TaskOutcome.NO_CONTACT:
        evidence = f"call task {task.id}: customer asked for no contact" + (f" — {note}" if note else "")
        for channel in ("sms", "email"):
            record_consent(session, task.member_id, channel, False, "call", evidence[:500], now)
    task.status = TaskStatus.RESOLVED if outcome is TaskOutcome.RESOLVED else TaskStatus.CLOSED
    task.root_cause = root_cause.value if root_cause else None
    task.closed_at = now
    _release_hold(session, task, now)
    if resurvey and outcome is TaskOutcome.RESOLVED:
        task.resurvey_message_id = _schedule_resurvey(session, task, now)
    return task


def reassign(session: Session, task_id: int, to_staff_id: int, by_staff_id: int, now=None) -> CallTask:
    """Hand an open task to a named colleague; logged like a call attempt, without counting as one."""
    now = now or utcnow()
    task = session.get(CallTask, task_id, with_for_update=True)
    if task is None:
        raise LookupError(f"call task {task_id} does not exist")
    if task.status not in OPEN_STATES:
        raise ValueError(f"call task {task_id} is already {task.status.value}")
    task.status, task.claimed_by, task.claim_expires_at = TaskStatus.CLAIMED, to_staff_id, now + REASSIGN_TTL
    session.add(
        CallLog(
            task_id=task.id,
            staff_id=by_staff_id,
            outcome="reassigned",
            note=f"to staff {to_staff_id}",
            at=now,
        )
    )
    return task


def _schedule_resurvey(session: Session, task: CallTask, now: dt.datetime) -> int | None:
    """A follow-up survey on the same purchase a few days after the fix (step 1 of the same key)."""
    original = session.get(Message, task.message_id) if task.message_id else None
    if original is None or original.campaign_id is None:
        return None
    stmt = insert_for(session, Message.__table__).values(
        campaign_id=original.campaign_id,
        member_id=original.member_id,
        subject_ref=original.subject_ref,
        step=RESURVEY_STEP,
        purchase_id=original.purchase_id,
        channel=original.channel,
        to_address=original.to_address,
        status=MessageStatus.PENDING.value,
        reason=f"re-survey after call task {task.id} was resolved",
        transactional=True,
        is_test=False,
        due_at=now + RESURVEY_AFTER,
        send_after=now + RESURVEY_AFTER,
        attempts=0,
        created_at=now,
    )
    session.execute(
        stmt.on_conflict_do_nothing(index_elements=["campaign_id", "member_id", "subject_ref", "step"])
    )
    return session.scalar(
        select(Message.id).where(
            Message.campaign_id == original.campaign_id,
            Message.member_id == original.member_id,
            Message.subject_ref == original.subject_ref,
            Message.step == RESURVEY_STEP,
        )
    )


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
    store_id: int | None = None,
    overdue: bool = False,
    now: dt.datetime | None = None,
    limit: int = 200,
):
    """Tasks with their member and store, most urgent first; ``status='open'`` is every not-closed state."""
    stmt = (
        select(CallTask, Member, Store)
        .join(Member, Member.id == CallTask.member_id)
        .outerjoin(Store, Store.id == CallTask.store_id)
    )
    if store_id is not None:
        stmt = stmt.where(CallTask.store_id == store_id)
    if overdue:
        stmt = stmt.where(CallTask.status.in_(OPEN_STATES), CallTask.due_at < (now or utcnow()))
    if status == "open" or status is None:
        stmt = stmt.where(CallTask.status.in_(OPEN_STATES))
    elif status != "all":
        stmt = stmt.where(CallTask.status == TaskStatus(status))
    if staff_id is not None:
        stmt = stmt.where(CallTask.claimed_by == staff_id)
    if member_id is not None:
        stmt = stmt.where(CallTask.member_id == member_id)
    stmt = stmt.order_by(CallTask.priority.desc(), CallTask.due_at, CallTask.id).limit(limit)
    return [tuple(r) for r in session.execute(stmt)]


def task_context(session: Session, task_id: int) -> dict | None:
    """Everything an agent needs on one page: the task, member, survey message, reply and call log."""
    task = session.get(CallTask, task_id)
    if task is None:
        return None
    response = session.get(SurveyResponse, task.survey_response_id) if task.survey_response_id else None
    logs = session.scalars(select(CallLog).where(CallLog.task_id == task.id).order_by(CallLog.at)).all()
    item = None
    if task.purchase_id:
        item = session.execute(
            select(Purchase, Product)
            .join(Product, Product.id == Purchase.product_id)
            .where(Purchase.id == task.purchase_id)
        ).first()
    earlier = session.scalars(
        select(CallTask)
        .where(CallTask.member_id == task.member_id, CallTask.id != task.id)
        .order_by(CallTask.created_at.desc())
        .limit(10)
    ).all()
    recent_messages = session.scalars(
        select(Message)
        .where(Message.member_id == task.member_id, Message.sent_at.is_not(None))
        .order_by(Message.sent_at.desc())
        .limit(10)
    ).all()
    return {
        "task": task,
        "member": session.get(Member, task.member_id),
        "store": session.get(Store, task.store_id) if task.store_id else None,
        "message": session.get(Message, task.message_id) if task.message_id else None,
        "response": response,
        "purchase": item[0] if item else None,
        "product": item[1] if item else None,
        "earlier_tasks": earlier,
        "recent_messages": recent_messages,
        "logs": logs,
    }


def task_counts(session: Session, now: dt.datetime | None = None) -> tuple[int, int]:
    """(open, overdue) call tasks, counted in the database (the dashboard tiles)."""
    now = now or utcnow()
    row = session.execute(
        select(func.count(), func.count().filter(CallTask.due_at < now)).where(
            CallTask.status.in_(OPEN_STATES)
        )
    ).one()
    return int(row[0]), int(row[1])
