"""A campaign: what kind, for whom, when, through which channels, with what content."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.base import Base, utcnow
from membership.member import str_enum


class CampaignKind(enum.StrEnum):
    REPLENISHMENT = "replenishment"
    SURVEY = "survey"
    WINBACK = "winback"
    INTEREST = "interest"
    BROADCAST = "broadcast"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


# Survey follow-ups are service, not marketing: exempt from frequency caps, never from opt-out.
TRANSACTIONAL_KINDS = frozenset({CampaignKind.SURVEY})


class Campaign(Base):
    """Kind-specific timing lives in ``settings`` (days_after, lead_days, window_days, category_ids)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CampaignKind] = mapped_column(str_enum(CampaignKind))
    status: Mapped[CampaignStatus] = mapped_column(str_enum(CampaignStatus), default=CampaignStatus.DRAFT)
    priority: Mapped[int] = mapped_column(default=50)
    holdout_pct: Mapped[int] = mapped_column(default=10)
    channels: Mapped[list] = mapped_column(JSON, default=lambda: ["sms", "email"])
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[dt.datetime | None]
    paused_reason: Mapped[str | None] = mapped_column(String(300))

    contents: Mapped[list[CampaignContent]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", lazy="selectin"
    )

    def setting(self, key: str, default: int) -> int:
        return int(self.settings.get(key, default))

    @property
    def transactional(self) -> bool:
        return self.kind in TRANSACTIONAL_KINDS

    def content_for(self, channel: str, locale: str) -> CampaignContent | None:
        """The variant for this channel in the member's locale, else its language, else any."""
        options = [c for c in self.contents if c.channel == channel]
        for match in (
            lambda c: c.locale == locale,
            lambda c: c.locale.split("-")[0] == locale.split("-")[0],
            lambda c: True,
        ):
            found = next((c for c in options if match(c)), None)
            if found:
                return found
        return None


class CampaignContent(Base):
    """The marketer's template for one channel and locale."""

    __tablename__ = "campaign_contents"
    __table_args__ = (UniqueConstraint("campaign_id", "channel", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    channel: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)

    campaign: Mapped[Campaign] = relationship(back_populates="contents")
