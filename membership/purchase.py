"""Purchase lines as the POS records them: one row per order line, keyed by its external id."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.base import Base
from membership.catalog import Product


class Purchase(Base):
    """One order line against a member's card."""

    __tablename__ = "purchases"
    __table_args__ = (
        Index("ix_purchases_member_product", "member_id", "product_id", "purchased_at"),
        Index("ix_purchases_product_time", "product_id", "purchased_at"),
        Index("ix_purchases_time", "purchased_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_line_id: Mapped[str] = mapped_column(String(80), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    purchased_at: Mapped[dt.datetime]
    quantity: Mapped[int] = mapped_column(default=1)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    last_import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"))

    product: Mapped[Product] = relationship(lazy="joined")
