"""Clicks on tracked links: one row per click, attributed to the message and member it was sent to."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from campaigns.message import Message
from database.base import Base, utcnow
from templating.links import TrackedLink


class LinkClick(Base):
    """A customer followed a tracked link (``/l/<token>``) in one of our messages."""

    __tablename__ = "link_clicks"
    __table_args__ = (Index("ix_link_clicks_message", "message_id", "clicked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    clicked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def record_click(
    session: Session, link: TrackedLink, user_agent: str | None, now: dt.datetime | None = None
) -> LinkClick | None:
    """Record a click on a verified link; test sends and vanished messages redirect without a row."""
    if link.test or link.message_id is None:
        return None
    message = session.get(Message, link.message_id)
    if message is None or message.is_test:
        return None
    click = LinkClick(
        message_id=message.id,
        member_id=message.member_id,
        url=link.url,
        user_agent=(user_agent or "")[:400] or None,
        clicked_at=now or utcnow(),
    )
    session.add(click)
    return click
