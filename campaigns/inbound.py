"""Inbound replies, stored raw before anything else, and the survey answers parsed from them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, utcnow
from membership.member import str_enum


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"  # stored, not yet processed
    PROCESSED = "processed"  # matched and acted upon
    UNMATCHED = "unmatched"  # unknown sender or no open survey: waits in the staff inbox
    TRIAGE = "triage"  # still unclear after one clarification: a person reads it
    HANDLED = "handled"  # a staff member dealt with an unmatched or triage reply
    FAILED = "failed"  # processing raised; kept with the error for a retry


class InboundMessage(Base):
    """A reply as it arrived; unique on the provider's id so a retried webhook is stored once."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_status", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    provider_id: Mapped[str] = mapped_column(String(200), unique=True)
    from_address: Mapped[str] = mapped_column(String(254), index=True)
    to_address: Mapped[str | None] = mapped_column(String(254))
    body: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[InboundStatus] = mapped_column(str_enum(InboundStatus), default=InboundStatus.RECEIVED)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    intent: Mapped[str | None] = mapped_column(String(20))
    processed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    handled_at: Mapped[dt.datetime | None]
    staff_note: Mapped[str | None] = mapped_column(Text)


class SurveyResponse(Base):
    """A survey answer (satisfied / unsatisfied / unclear) tied to the survey message it answers."""

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    answer: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
