"""Members, their households, the consent ledger and contact holds."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.base import Base, utcnow
from membership.store import Store


class Channel(enum.StrEnum):
    """The ways we reach a member; consent is kept per channel."""

    SMS = "sms"
    EMAIL = "email"


def str_enum(cls: type[enum.Enum], length: int = 20) -> Enum:
    """Enums stored as plain strings: new states need no ALTER TYPE."""
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class Household(Base):
    """People who share an address and often a budget (a parent buys for a child)."""

    __tablename__ = "households"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))


def search_text(prefix: str = "") -> str:
    """What member search matches against: the same SQL in the query (``prefix`` "members.") and the index."""
    card, phone, email, name = (f"{prefix}{c}" for c in ("card_number", "phone", "email", "name"))
    return f"({card} || ' ' || coalesce({phone}, '') || ' ' || coalesce({email}, '') || ' ' || {name})"


class Member(Base):
    """A loyalty-card holder. Current consent is denormalised here for set-based audiences;
    its history is the ConsentEvent ledger."""

    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_phone", "phone"),
        Index("ix_members_email", "email"),
        # Audience filters ask "has interest X" of every member; on PostgreSQL a GIN index answers it.
        Index("ix_members_interests", text("CAST(interests AS jsonb)"), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
        # Member search is a substring match over this text; pg_trgm's GIN index makes it a lookup.
        Index("ix_members_search", text(f"{search_text()} gin_trgm_ops"), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_number: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    preferred_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the home store's
    home_store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    tier: Mapped[str] = mapped_column(String(20), default="standard")
    interests: Mapped[list] = mapped_column(JSON, default=list)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_consent_at: Mapped[dt.datetime | None]
    sms_consent_source: Mapped[str | None] = mapped_column(String(100))
    email_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    email_consent_at: Mapped[dt.datetime | None]
    email_consent_source: Mapped[str | None] = mapped_column(String(100))
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The import run that last changed this row (a plain id: membership must not import importing).
    last_import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"))

    home_store: Mapped[Store | None] = relationship(lazy="joined")
    household: Mapped[Household | None] = relationship()

    @property
    def display_name(self) -> str:
        return self.preferred_name or self.name


class ConsentEvent(Base):
    """One grant or withdrawal of consent, with its evidence: the answer to "why may we text her?"."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_member", "member_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, 10))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(100))  # import, sms_reply, web, agent, provider
    evidence: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContactHold(Base):
    """A pause on promotional messages (e.g. while a complaint is open); released, never deleted."""

    __tablename__ = "contact_holds"
    __table_args__ = (Index("ix_contact_holds_open", "member_id", "released_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reason: Mapped[str] = mapped_column(String(100))
    source_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    released_at: Mapped[dt.datetime | None]
