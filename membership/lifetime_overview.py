"""The products page's read model: one page of products with their prior, its source and the estimate.

Two queries per page (a count and one joined SELECT), however many products the catalogue holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from membership.catalog import Category, Product
from membership.lifetime import DEFAULT_PRIOR_DAYS, PRIOR_SHAPE, LifetimeEstimate

# The quantiles the nightly fit stores as low/high (ModelConfig defaults), used to recover a shape
# from rows written before the shape itself was kept.
LOW_Q, HIGH_Q = 0.1, 0.9


@dataclass(frozen=True)
class ProductLifetime:
    """One product's row on the page: what is assumed, what was learned, and which one is used."""

    product_id: int
    sku: str
    name: str
    category_id: int | None
    category_name: str | None
    prior_days: float
    prior_source: str  # "product", "category", "parent category" or "default"
    prior_source_name: str | None  # the category the prior comes from, when it comes from one
    own_prior_days: int | None
    estimate: LifetimeEstimate | None

    @property
    def learned(self) -> bool:
        return self.estimate is not None and self.estimate.method != "prior" and self.estimate.n_observed > 0

    @property
    def in_use(self) -> str:
        """Which value the scheduler uses: a locked override, else the learned estimate, else the prior."""
        if self.estimate is not None and self.estimate.override_days is not None:
            return "override"
        return "learned" if self.learned else "prior"

    @property
    def in_use_days(self) -> float:
        if self.in_use == "override":
            return self.estimate.override_days
        return self.estimate.median_days if self.learned else self.prior_days

    @property
    def curve(self) -> tuple[float, float, float] | None:
        """(shape, scale, lapse fraction) of the estimate's distribution; recovered from quantiles if need be."""
        e = self.estimate
        if e is None:
            return None
        if e.shape and e.scale_days:
            return e.shape, e.scale_days, e.lapse_fraction or 0.0
        return (*weibull_from_quantiles(e.median_days, e.high_days), 0.0)


@dataclass(frozen=True)
class ProductPage:
    rows: list[ProductLifetime]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass(frozen=True)
class CategoryPrior:
    id: int
    code: str
    name: str
    parent_name: str | None
    prior_days: int | None
    inherited_days: int  # what its products inherit when they set nothing themselves
    products: int


def weibull_from_quantiles(median: float, high: float, high_q: float = HIGH_Q) -> tuple[float, float]:
    """(shape, scale) of the Weibull with this median and ``high_q`` quantile."""
    if not (median > 0 and high > median):
        return PRIOR_SHAPE, median / math.log(2) ** (1 / PRIOR_SHAPE)
    shape = (math.log(-math.log(1 - high_q)) - math.log(math.log(2))) / math.log(high / median)
    return shape, median / math.log(2) ** (1 / shape)


def product_lifetimes(
    session: Session,
    page: int = 1,
    per_page: int = 50,
    query: str = "",
    category_id: int | None = None,
    default_days: int = DEFAULT_PRIOR_DAYS,
) -> ProductPage:
    """One page of products (by category, then SKU), optionally filtered by SKU/name text or category."""
    parent = aliased(Category)
    filters = []
    if query:
        like = f"%{query.strip()}%"
        filters.append(or_(Product.sku.ilike(like), Product.name.ilike(like)))
    if category_id:
        sub = select(Category.id).where(Category.parent_id == category_id)
        filters.append(or_(Product.category_id == category_id, Product.category_id.in_(sub)))
    total = session.scalar(select(func.count()).select_from(Product).where(*filters)) or 0
    page = min(max(page, 1), max(1, math.ceil(total / per_page)))
    stmt = (
        select(Product, Category.name, Category.lifetime_prior_days, parent.name, parent.lifetime_prior_days)
        .add_columns(LifetimeEstimate)
        .outerjoin(Category, Product.category_id == Category.id)
        .outerjoin(parent, Category.parent_id == parent.id)
        .outerjoin(LifetimeEstimate, LifetimeEstimate.product_id == Product.id)
        .where(*filters)
        .order_by(Category.name, Product.sku)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = [
        _row(product, cat_name, cat_prior, parent_name, parent_prior, estimate, default_days)
        for product, cat_name, cat_prior, parent_name, parent_prior, estimate in session.execute(stmt)
    ]
    return ProductPage(rows, total, page, per_page)


def _row(product, cat_name, cat_prior, parent_name, parent_prior, estimate, default_days) -> ProductLifetime:
    if product.lifetime_prior_days:
        days, source, source_name = product.lifetime_prior_days, "product", None
    elif cat_prior:
        days, source, source_name = cat_prior, "category", cat_name
    elif parent_prior:
        days, source, source_name = parent_prior, "parent category", parent_name
    else:
        days, source, source_name = default_days, "default", None
    return ProductLifetime(
        product_id=product.id,
        sku=product.sku,
        name=product.name,
        category_id=product.category_id,
        category_name=cat_name,
        prior_days=float(days),
        prior_source=source,
        prior_source_name=source_name,
        own_prior_days=product.lifetime_prior_days,
        estimate=estimate,
    )


def category_priors_overview(session: Session, default_days: int = DEFAULT_PRIOR_DAYS) -> list[CategoryPrior]:
    """Every category with its own prior, what it passes on, and how many products sit directly in it."""
    parent = aliased(Category)
    counts = select(Product.category_id, func.count().label("n")).group_by(Product.category_id).subquery()
    stmt = (
        select(Category, parent.name, parent.lifetime_prior_days, func.coalesce(counts.c.n, 0))
        .outerjoin(parent, Category.parent_id == parent.id)
        .outerjoin(counts, counts.c.category_id == Category.id)
        .order_by(func.coalesce(parent.name, Category.name), Category.parent_id.is_not(None), Category.name)
    )
    return [
        CategoryPrior(
            id=c.id,
            code=c.code,
            name=c.name,
            parent_name=parent_name,
            prior_days=c.lifetime_prior_days,
            inherited_days=c.lifetime_prior_days or parent_prior or default_days,
            products=n,
        )
        for c, parent_name, parent_prior, n in session.execute(stmt)
    ]
