"""Call tasks and the log of every attempt an agent makes on one."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, utcnow
from membership.member import str_enum


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    RESCHEDULED = "rescheduled"
    RESOLVED = "resolved"
    CLOSED = "closed"  # closed without resolution (wrong number, no contact wanted, gave up)


class TaskOutcome(enum.StrEnum):
    RESOLVED = "resolved"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    NO_CONTACT = "no_contact"  # the customer asks not to be contacted: opt-out on every channel
    ESCALATED = "escalated"


class RootCause(enum.StrEnum):
    """Why the customer was unhappy, as the agent found out; feeds the complaint report."""

    PRODUCT_DEFECT = "product_defect"
    WORE_OUT_EARLY = "wore_out_early"
    WRONG_PRODUCT = "wrong_product"
    SIZE_OR_FIT = "size_or_fit"
    STAFF_SERVICE = "staff_service"
    PRICE = "price"
    DELIVERY = "delivery"
    MISUNDERSTANDING = "misunderstanding"
    OTHER = "other"


OPEN_STATES = frozenset({TaskStatus.OPEN, TaskStatus.CLAIMED, TaskStatus.RESCHEDULED})


class CallTask(Base):
    """A customer to phone back; one per unsatisfied survey response."""

    __tablename__ = "call_tasks"
    __table_args__ = (Index("ix_call_tasks_queue", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    survey_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_responses.id"), unique=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    reason: Mapped[str] = mapped_column(String(300))
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus), default=TaskStatus.OPEN)
    priority: Mapped[int] = mapped_column(default=50)
    due_at: Mapped[dt.datetime]  # the SLA: call back by then
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    claim_expires_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str | None] = mapped_column(String(30))
    root_cause: Mapped[str | None] = mapped_column(String(30))
    resurvey_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]


class CallLog(Base):
    """What happened on one attempt: who, when, outcome, notes."""

    __tablename__ = "call_logs"
    __table_args__ = (Index("ix_call_logs_task", "task_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("call_tasks.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    outcome: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
