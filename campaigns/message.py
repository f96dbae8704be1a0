"""The outbox: one row per (campaign, member, subject, step), and every state it passes through."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, bindparam, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, utcnow
from membership.member import str_enum


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"
    HELD_OUT = "held_out"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


TERMINAL = frozenset(
    {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.SUPPRESSED,
        MessageStatus.HELD_OUT,
        MessageStatus.CANCELLED,
    }
)


# Partial-index predicates; queries must spell the same states as literals (`literal_states`) for
# the planner to prove they match, which a bound parameter cannot.
DUE_STATES_SQL = "status IN ('pending', 'deferred')"
IN_FLIGHT_STATES_SQL = "status IN ('sending', 'unknown')"


def _partial(predicate: str) -> dict:
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


class Message(Base):
    """An outbound message. The unique key is what makes a second tick, or a second scheduler, harmless."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id", "subject_ref", "step", name="uq_messages_dedup"),
        # The outbox queue: only rows waiting to be sent, in the order they are claimed, so a claim
        # reads the rows it takes instead of sorting every due row (40 ms per claim at 100k due).
        Index("ix_messages_due", "channel", "send_after", "id", **_partial(DUE_STATES_SQL)),
        # Claims to expire and messages to reconcile: a handful of rows among millions.
        Index("ix_messages_in_flight", "status", "claimed_at", **_partial(IN_FLIGHT_STATES_SQL)),
        Index("ix_messages_member_created", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    # member_id and purchase_id carry no foreign-key constraint: the tick writes outbox rows only by
    # INSERT … SELECT from joined members and purchases, which are never deleted, so they are valid by
    # construction; the constraint triggers cost half of a 150k-row tick (10 of 20 s at 10M purchases).
    member_id: Mapped[int] = mapped_column()
    subject_ref: Mapped[str] = mapped_column(String(64))  # "p<purchase id>", or a period for win-back
    step: Mapped[int] = mapped_column(default=0)
    purchase_id: Mapped[int | None] = mapped_column()
    channel: Mapped[str | None] = mapped_column(String(10))
    to_address: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus), default=MessageStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(300))  # why it was sent, deferred, suppressed
    transactional: Mapped[bool] = mapped_column(default=False)
    is_test: Mapped[bool] = mapped_column(default=False)
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    send_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[str | None] = mapped_column(String(200), index=True)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float | None]
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    reply_token: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ParkedStatus(Base):
    """A delivery-status callback that came before its message had a provider id in our outbox.

    Outcomes are committed in small groups after the provider call, so a fast callback (an
    immediate "failed") can overtake them; it is kept here and applied once the message is there,
    never dropped.
    """

    __tablename__ = "parked_statuses"
    __table_args__ = (Index("ix_parked_statuses_open", "provider_id", **_partial("settled_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(40))
    error_code: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # applied, stale (nothing new), unmatched


class MessageEvent(Base):
    """One state change of a message (claimed, sent, delivered, failed…), kept for the why-trace."""

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_message", "message_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def in_states(*states: MessageStatus):
    """``status IN (…)`` with the states written out as literals, so the partial indexes apply."""
    name = "states_" + "_".join(states)
    return Message.status.in_(bindparam(name, list(states), expanding=True, literal_execute=True))
