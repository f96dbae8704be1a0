"""Purchase lines as the POS records them: one row per order line, keyed by its external id."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Index, Numeric, String
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
    # No foreign-key constraints on the ids (migration 0009): every writer resolves them by joining
    # members, products and stores in the same INSERT … SELECT (unknown cards and SKUs are reported),
    # and none of those rows is ever deleted; the constraint triggers were 60% of an import's insert
    # time (30 s of 1M lines, 13 s without them).
    member_id: Mapped[int] = mapped_column()
    product_id: Mapped[int] = mapped_column()
    store_id: Mapped[int | None] = mapped_column()
    purchased_at: Mapped[dt.datetime]
    quantity: Mapped[int] = mapped_column(default=1)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    last_import_run_id: Mapped[int | None] = mapped_column()

    product: Mapped[Product] = relationship(
        lazy="joined", primaryjoin="foreign(Purchase.product_id) == Product.id"
    )
