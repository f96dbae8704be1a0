"""A store of the chain: where members join and buy, with its own time zone and locale."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base


class Store(Base):
    """One shop (or web shop); its time zone drives quiet hours and SLA clocks."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")
    region: Mapped[str] = mapped_column(String(2), default="CN")  # default phone region
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    # Opening hours (local time): the callback SLA clock only runs while the store's staff are in.
    opens_at: Mapped[str] = mapped_column(String(5), default="09:00", server_default="09:00")
    closes_at: Mapped[str] = mapped_column(String(5), default="21:00", server_default="21:00")
