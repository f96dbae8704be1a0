"""Who changed or launched what, and when: one row per staff action that matters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from database.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_target", "target", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    action: Mapped[str] = mapped_column(String(40))  # e.g. campaign.create, campaign.launch, login.failed
    target: Mapped[str] = mapped_column(String(80))  # e.g. campaign:12
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def record_audit(
    session: Session, staff_id: int | None, action: str, target: str, detail: dict | None = None, now=None
) -> AuditEvent:
    """Append one audit row; the caller's transaction commits it with the change it describes."""
    event = AuditEvent(
        staff_id=staff_id, action=action, target=target, detail=detail or {}, at=now or utcnow()
    )
    session.add(event)
    return event
