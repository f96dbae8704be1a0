"""What marketers change by hand: a product's locked lifetime, and the priors of products and categories.

Every change is one audit row in the caller's transaction. Prior-only estimates follow a changed prior at
once (so the scheduler uses it before the next nightly fit); learned estimates pick it up at that fit.
"""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from accounts.audit import record_audit
from membership.catalog import Category, Product
from membership.lifetime import (
    LifetimeEstimate,
    effective_priors,
    prior_estimate_values,
    store_prior_estimates,
)
from membership.lifetime_model import ModelConfig

MIN_DAYS, MAX_DAYS = 1, 3650  # a day to ten years: anything else is a typo


def parse_days(raw: str | None, allow_empty: bool = False) -> int | None:
    """A whole number of days from a form field; empty means "none" where ``allow_empty``."""
    text = (raw or "").strip()
    if not text:
        if allow_empty:
            return None
        raise ValueError("enter a number of days")
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of days") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}")
    return days


def set_override(session: Session, product_id: int, days: int, staff_id: int | None) -> LifetimeEstimate:
    """Lock a product's lifetime at ``days``: the scheduler uses it over anything learned or assumed."""
    days = _checked(days)
    estimate = _estimate(session, product_id)
    before = estimate.override_days
    estimate.override_days = float(days)
    record_audit(
        session, staff_id, "lifetime.override", f"product:{product_id}", {"from": before, "to": days}
    )
    return estimate


def clear_override(session: Session, product_id: int, staff_id: int | None) -> LifetimeEstimate:
    """Unlock a product's lifetime: the learned (or prior) estimate is used again."""
    estimate = _estimate(session, product_id)
    before = estimate.override_days
    estimate.override_days = None
    record_audit(session, staff_id, "lifetime.unlock", f"product:{product_id}", {"from": before})
    return estimate


def set_product_prior(session: Session, product_id: int, days: int | None, staff_id: int | None) -> Product:
    """Set (or, with None, remove so it inherits) a product's own lifetime prior."""
    product = session.get(Product, product_id)
    if product is None:
        raise LookupError(f"no product {product_id}")
    before = product.lifetime_prior_days
    product.lifetime_prior_days = None if days is None else _checked(days)
    record_audit(
        session,
        staff_id,
        "product.prior",
        f"product:{product_id}",
        {"from": before, "to": product.lifetime_prior_days},
    )
    session.flush()
    refresh_prior_estimates(session, select(Product.id).where(Product.id == product_id))
    return product


def set_category_prior(
    session: Session, category_id: int, days: int | None, staff_id: int | None
) -> Category:
    """Set (or remove) a category's lifetime prior; its products and sub-categories' products inherit it."""
    category = session.get(Category, category_id)
    if category is None:
        raise LookupError(f"no category {category_id}")
    before = category.lifetime_prior_days
    category.lifetime_prior_days = None if days is None else _checked(days)
    record_audit(
        session,
        staff_id,
        "category.prior",
        f"category:{category_id}",
        {"from": before, "to": category.lifetime_prior_days},
    )
    session.flush()
    children = select(Category.id).where(Category.parent_id == category_id)
    affected = select(Product.id).where(
        or_(Product.category_id == category_id, Product.category_id.in_(children))
    )
    refresh_prior_estimates(session, affected)
    return category


def refresh_prior_estimates(session: Session, product_ids=None) -> int:
    """Rewrite prior-only estimates (of ``product_ids``, a select of ids, or all) from the current priors."""
    store_prior_estimates(session)  # products that have no estimate row yet get one
    priors = effective_priors(session)
    stmt = select(LifetimeEstimate.id, LifetimeEstimate.product_id, LifetimeEstimate.median_days).where(
        LifetimeEstimate.method == "prior"
    )
    if product_ids is not None:
        stmt = stmt.where(LifetimeEstimate.product_id.in_(product_ids))
    rows = [
        _prior_row(estimate_id, priors[product_id])
        for estimate_id, product_id, median in session.execute(stmt)
        if product_id in priors and abs(median - priors[product_id]) > 1e-6
    ]
    if rows:
        session.execute(update(LifetimeEstimate), rows)
    return len(rows)


def _prior_row(estimate_id: int, days: float) -> dict:
    # The nightly fit's reminder quantile, so a prior-only row reads the same whoever wrote it.
    return {"id": estimate_id, **prior_estimate_values(days, ModelConfig().reminder_quantile)}


def _estimate(session: Session, product_id: int) -> LifetimeEstimate:
    """The product's estimate row, created from its prior if the nightly fit has not written one yet."""
    if session.get(Product, product_id) is None:
        raise LookupError(f"no product {product_id}")
    find = select(LifetimeEstimate).where(LifetimeEstimate.product_id == product_id)
    estimate = session.scalar(find)
    if estimate is None:
        store_prior_estimates(session)
        estimate = session.scalar(find)
    return estimate


def _checked(days: int) -> int:
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}")
    return int(days)
