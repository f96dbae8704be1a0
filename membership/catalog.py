"""The product catalogue: a category tree and products, each able to carry a lifetime prior."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.base import Base


class Category(Base):
    """A node in the category tree ("Table tennis" > "Paddles")."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    lifetime_prior_days: Mapped[int | None]
    care_tips: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id")


class Product(Base):
    """A sellable item keyed by SKU; a prior here overrides its category's."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    lifetime_prior_days: Mapped[int | None]

    category: Mapped[Category | None] = relationship(lazy="joined")
