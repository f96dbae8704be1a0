"""Stored lifetime estimates per product, and the prior inheritance product → category → parent → default."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from database.base import Base, utcnow
from database.sql import insert_for
from membership.catalog import Category, Product

DEFAULT_PRIOR_DAYS = 180
# Prior-only estimates assume a Weibull of this shape: wear-out items fail around their median,
# not memorylessly; the lifetime model replaces it with a fitted shape where data allows.
PRIOR_SHAPE = 2.0
DEFAULT_REMINDER_QUANTILE = 0.3  # the back-tested default, as ModelConfig.reminder_quantile


class LifetimeEstimate(Base):
    """The current belief about how long a product lasts, and what it rests on."""

    __tablename__ = "lifetime_estimates"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), unique=True)
    median_days: Mapped[float]
    low_days: Mapped[float]
    high_days: Mapped[float]
    reminder_days: Mapped[float]  # days after purchase at which wear-out is near (a low quantile)
    n_observed: Mapped[int] = mapped_column(default=0)
    n_censored: Mapped[int] = mapped_column(default=0)
    method: Mapped[str] = mapped_column(String(40), default="prior")
    override_days: Mapped[float | None]  # a marketer's lock; wins over anything learned
    fitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The fitted distribution itself (Weibull among returners, plus the share who never return), so the
    # products page can draw the survival curve; empty on rows written before these were kept.
    shape: Mapped[float | None]
    scale_days: Mapped[float | None]
    lapse_fraction: Mapped[float | None]


def weibull_quantile(median: float, q: float, shape: float = PRIOR_SHAPE) -> float:
    """The q-quantile of a Weibull with the given median and shape."""
    scale = median / math.log(2) ** (1 / shape)
    return scale * (-math.log(1 - q)) ** (1 / shape)


def effective_priors(session: Session, default_days: int = DEFAULT_PRIOR_DAYS) -> dict[int, int]:
    """product_id → prior days, inherited product → category → parent category → default (one query)."""
    parent = aliased(Category)
    rows = session.execute(
        select(
            Product.id, Product.lifetime_prior_days, Category.lifetime_prior_days, parent.lifetime_prior_days
        )
        .outerjoin(Category, Product.category_id == Category.id)
        .outerjoin(parent, Category.parent_id == parent.id)
    )
    return {pid: p or c or gp or default_days for pid, p, c, gp in rows}


def store_prior_estimates(session: Session, quantile: float = DEFAULT_REMINDER_QUANTILE) -> int:
    """Write prior-only estimates for products that have no learned or locked estimate yet."""
    priors = effective_priors(session)
    if not priors:
        return 0
    now = utcnow()
    rows = [
        {
            "product_id": pid,
            **prior_estimate_values(days, quantile),
            "n_observed": 0,
            "n_censored": 0,
            "fitted_at": now,
        }
        for pid, days in priors.items()
    ]
    stmt = insert_for(session, LifetimeEstimate.__table__)
    stmt = stmt.on_conflict_do_nothing(index_elements=["product_id"])
    session.execute(stmt, rows)
    return len(rows)


def prior_estimate_values(days: float, quantile: float = DEFAULT_REMINDER_QUANTILE) -> dict:
    """The estimate columns of a prior-only belief: a Weibull of ``PRIOR_SHAPE`` with median ``days``."""
    return {
        "median_days": float(days),
        "low_days": weibull_quantile(days, 0.1),
        "high_days": weibull_quantile(days, 0.9),
        "reminder_days": weibull_quantile(days, quantile),
        "method": "prior",
        "shape": PRIOR_SHAPE,
        "scale_days": days / math.log(2) ** (1 / PRIOR_SHAPE),
        "lapse_fraction": 0.0,
    }
