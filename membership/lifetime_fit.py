"""The nightly (and on-demand) lifetime fit: purchases in, one ``LifetimeEstimate`` per product out.

One streamed SELECT turns the purchases table into numpy columns; the mathematics is the same as the
file-based commands use; one upsert writes every product's estimate. A marketer's ``override_days``
is never touched. The same code serves SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import DateTime, literal, select
from sqlalchemy.orm import Session

from database.base import utcnow
from database.sql import days_between, insert_for
from membership.catalog import Product
from membership.lifetime import DEFAULT_PRIOR_DAYS, LifetimeEstimate, effective_priors
from membership.lifetime_intervals import EPOCH, CatalogueFit, category_priors, fit_catalogue, to_days
from membership.lifetime_model import ModelConfig
from membership.purchase import Purchase

FETCH_ROWS = 200_000  # rows per round trip: big enough to amortise, small enough to stream
COPY_BLOCK_BYTES = 8 << 20  # text parsed per numpy call
UPDATED = (
    "median_days",
    "low_days",
    "high_days",
    "reminder_days",
    "n_observed",
    "n_censored",
    "method",
    "fitted_at",
    "shape",
    "scale_days",
    "lapse_fraction",
)


@dataclass(frozen=True)
class FitReport:
    """What a fit did, for the CLI and the job log."""

    lines: int
    products: int
    learned: int  # from the product's own intervals
    borrowed: int  # from its category's intervals
    prior_only: int  # no intervals at all yet
    seconds: float


@dataclass(frozen=True)
class _Catalogue:
    product_ids: np.ndarray  # sorted; a product's code is its index here
    product_category: np.ndarray  # category code per product, -1 = none
    product_prior: np.ndarray
    category_prior: np.ndarray


def fit_lifetimes(
    session: Session,
    now: dt.datetime | None = None,
    quantile: float | None = None,
    config: ModelConfig | None = None,
) -> FitReport:
    """Refit every product's lifetime from purchases up to ``now`` and upsert the estimates."""
    started = time.perf_counter()
    now = now or utcnow()
    config = config or ModelConfig()
    if quantile is not None:
        config = replace(config, reminder_quantile=quantile)
    catalogue = _load_catalogue(session)
    if not len(catalogue.product_ids):
        return FitReport(0, 0, 0, 0, 0, time.perf_counter() - started)
    member, product, at = _load_purchases(session, catalogue.product_ids, now)
    fit = fit_catalogue(
        member,
        product,
        catalogue.product_category[product],
        at,
        to_days(now),
        catalogue.product_prior,
        catalogue.category_prior,
        config,
    )
    methods = _write_estimates(session, catalogue.product_ids, fit, config, now)
    return FitReport(
        lines=len(at),
        products=len(methods),
        learned=methods.count("product"),
        borrowed=methods.count("category"),
        prior_only=methods.count("prior"),
        seconds=time.perf_counter() - started,
    )


def _load_catalogue(session: Session) -> _Catalogue:
    priors = effective_priors(session, DEFAULT_PRIOR_DAYS)
    rows = session.execute(select(Product.id, Product.category_id).order_by(Product.id)).all()
    product_ids = np.array([r[0] for r in rows], dtype=np.int64)
    category_ids = sorted({r[1] for r in rows if r[1] is not None})
    category_code = {cid: i for i, cid in enumerate(category_ids)}
    product_category = np.array([category_code.get(r[1], -1) for r in rows], dtype=np.int64)
    product_prior = np.array([float(priors.get(r[0], DEFAULT_PRIOR_DAYS)) for r in rows])
    # A borrowed category fit starts from what its products would have assumed on their own.
    category_prior = category_priors(product_prior, product_category, len(category_ids), DEFAULT_PRIOR_DAYS)
    return _Catalogue(product_ids, product_category, product_prior, category_prior)


def _load_purchases(session: Session, product_ids: np.ndarray, now: dt.datetime):
    """(member id, product code, days since 1970) for every purchase up to ``now``, as numpy columns."""
    # The database does the date arithmetic, so no datetime object is built per row; rows come back
    # as plain DB-API tuples (SQLAlchemy Row objects cost ~15 µs each when numpy reads them).
    days = days_between(literal(EPOCH, DateTime()), Purchase.purchased_at)
    stmt = select(Purchase.member_id, Purchase.product_id, days).where(Purchase.purchased_at <= now)
    connection = session.connection()
    compiled = stmt.compile(connection, compile_kwargs={"literal_binds": True})
    if connection.dialect.name == "postgresql":
        data = _copy_out(connection, str(compiled))
    else:
        data = _fetch_tuples(connection, str(compiled))
    member = data[:, 0].astype(np.int64)
    product = np.searchsorted(product_ids, data[:, 1].astype(np.int64))
    return member, product, data[:, 2]


def _copy_out(connection, sql: str) -> np.ndarray:
    """PostgreSQL: COPY the query out as text and let numpy parse it, a block at a time."""
    raw = connection.connection.dbapi_connection
    chunks, blocks, size = [], [], 0
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
        for block in copy:
            blocks.append(bytes(block))
            size += len(block)
            if size >= COPY_BLOCK_BYTES:
                text = b"".join(blocks)
                cut = text.rfind(b"\n") + 1
                chunks.append(_parse_lines(text[:cut]))
                blocks, size = [text[cut:]], len(text) - cut
    if size:
        chunks.append(_parse_lines(b"".join(blocks)))
    return np.concatenate(chunks) if chunks else np.zeros((0, 3))


def _parse_lines(block: bytes) -> np.ndarray:
    return np.loadtxt(io.BytesIO(block), delimiter="\t", dtype=np.float64, ndmin=2).reshape(-1, 3)


def _fetch_tuples(connection, sql: str) -> np.ndarray:
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        chunks = []
        while rows := cursor.fetchmany(FETCH_ROWS):
            chunks.append(np.array(rows, dtype=np.float64).reshape(-1, 3))
    finally:
        cursor.close()
    return np.concatenate(chunks) if chunks else np.zeros((0, 3))


def _write_estimates(
    session: Session, product_ids: np.ndarray, fit: CatalogueFit, config: ModelConfig, now: dt.datetime
) -> list[str]:
    """Upsert one estimate per product (never its override); returns the method used per product."""
    groups = fit.group_of_product
    median, low, high, reminder = (
        fit.fits.quantile(q)[groups]
        for q in (0.5, config.low_quantile, config.high_quantile, config.reminder_quantile)
    )
    shape, scale, lapse = (fit.fits.shape[groups], fit.fits.scale[groups], fit.fits.lapse_fraction[groups])
    methods = [fit.method(i) for i in range(len(product_ids))]
    rows = [
        {
            "product_id": int(pid),
            "median_days": float(median[i]),
            "low_days": float(low[i]),
            "high_days": float(high[i]),
            "reminder_days": float(reminder[i]),
            "n_observed": int(fit.fits.n_observed[groups[i]]),
            "n_censored": int(fit.fits.n_censored[groups[i]]),
            "method": methods[i],
            "fitted_at": now,
            "shape": float(shape[i]),
            "scale_days": float(scale[i]),
            "lapse_fraction": float(lapse[i]),
        }
        for i, pid in enumerate(product_ids.tolist())
    ]
    stmt = insert_for(session, LifetimeEstimate.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["product_id"], set_={name: stmt.excluded[name] for name in UPDATED}
    )
    session.execute(stmt, rows)
    return methods
