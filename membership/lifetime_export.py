"""Write the database's purchases and priors in the file formats ``huifang lifetimes backtest|predict`` read.

So a store can back-test the model on its own data, and the demo's claims can be checked with the
same commands anyone else would run.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from membership.catalog import Category, Product
from membership.lifetime import DEFAULT_PRIOR_DAYS, effective_priors
from membership.member import Member
from membership.purchase import Purchase

FETCH_ROWS = 50_000
PURCHASE_COLUMNS = ("line_id", "member_id", "sku", "category", "purchased_at", "quantity")


def export_purchases(session: Session, path: str | Path) -> int:
    """Every purchase line as ``line_id,member_id,sku,category,purchased_at,quantity`` (card numbers, UTC)."""
    stmt = (
        select(
            Purchase.external_line_id,
            Member.card_number,
            Product.sku,
            Category.code,
            Purchase.purchased_at,
            Purchase.quantity,
        )
        .join(Member, Purchase.member_id == Member.id)
        .join(Product, Purchase.product_id == Product.id)
        .outerjoin(Category, Product.category_id == Category.id)
        .order_by(Purchase.purchased_at, Purchase.id)
        .execution_options(yield_per=FETCH_ROWS)
    )
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(PURCHASE_COLUMNS)
        for part in session.execute(stmt).partitions():
            writer.writerows(
                (line, card, sku, code or "", at.isoformat(timespec="seconds"), qty)
                for line, card, sku, code, at, qty in part
            )
            written += len(part)
    return written


def export_priors(session: Session, path: str | Path, default_days: int = DEFAULT_PRIOR_DAYS) -> int:
    """Each product's effective prior (product → category → parent → default) as ``item,days`` by SKU."""
    priors = effective_priors(session, default_days)
    skus = dict(session.execute(select(Product.id, Product.sku)).all())
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("item", "days"))
        writer.writerows(sorted((skus[pid], days) for pid, days in priors.items()))
    return len(priors)
