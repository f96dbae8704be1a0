"""Repurchase intervals from purchase lines, vectorised, and the product → category fallback.

A member's purchase of an item followed by their next purchase of the same item is an observed
lifetime; the last purchase before the fitting date is right-censored there. Everything here is
numpy over whole columns (one sort, then differences), so ten million lines take seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from membership.lifetime_model import GroupFits, ModelConfig, fit_groups

MIN_GAP_DAYS = 1.0  # a repeat within a day is a split basket, not a lifetime
MIN_PRODUCT_INTERVALS = 30  # fewer observed intervals than this: the product borrows its category's fit
EPOCH = dt.datetime(1970, 1, 1)


def to_days(moment: dt.datetime) -> float:
    """Naive UTC datetime → days since 1970, the time axis of every array here."""
    return (moment - EPOCH).total_seconds() / 86400


@dataclass(frozen=True)
class LineIntervals:
    """Per purchase line (in input order): its item sequence and what followed it.

    ``next_at`` is the member's next purchase of the same item (NaN if none, at any date);
    ``pair`` numbers the (member, item) sequences; ``split`` marks lines followed within a day.
    """

    item: np.ndarray
    pair: np.ndarray
    next_at: np.ndarray
    split: np.ndarray

    def censored_at(self, at: np.ndarray, as_of: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(usable, duration, observed) as they looked at ``as_of``: later lines and splits are unusable."""
        usable = (at <= as_of) & ~self.split
        observed = self.next_at <= as_of  # NaN compares False: never repurchased is censored
        duration = np.where(observed, self.next_at, as_of) - at
        return usable, duration, observed & usable


def extract(member: np.ndarray, item: np.ndarray, at: np.ndarray, pair_offset: int = 0) -> LineIntervals:
    """Link each line to the same member's next purchase of the same item (times ``at`` in days)."""
    n = len(at)
    order = _sequence_order(member, item, at)
    m, i, t = member[order], item[order], at[order]
    same = np.zeros(n, dtype=bool)
    if n > 1:
        same[:-1] = (m[1:] == m[:-1]) & (i[1:] == i[:-1])
    nxt = np.full(n, np.nan)
    nxt[:-1][same[:-1]] = t[1:][same[:-1]]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~same[:-1]
    next_at = np.empty(n)
    next_at[order] = nxt
    pairs = np.empty(n, dtype=np.int64)
    pairs[order] = np.cumsum(starts) - 1 + pair_offset
    split = (next_at - at) < MIN_GAP_DAYS
    return LineIntervals(item=np.asarray(item), pair=pairs, next_at=next_at, split=split)


def _sequence_order(member: np.ndarray, item: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Indices sorting lines by (member, item, time).

    One argsort of a packed int64 key (time to the second) is several times faster than lexsort on
    three columns; lexsort remains for id ranges too wide to pack.
    """
    if not len(at):
        return np.zeros(0, dtype=np.int64)
    seconds = np.rint((at - at.min()) * 86400).astype(np.int64)
    items = int(item.max()) + 1
    bits_time = max(int(seconds.max()).bit_length(), 1)
    bits_key = (int(member.max()) * items + items).bit_length()
    if member.min() < 0 or item.min() < 0 or bits_time + bits_key > 62:
        return np.lexsort((at, item, member))
    key = (member.astype(np.int64) * items + item) << bits_time
    key |= seconds
    return np.argsort(key, kind="stable")


@dataclass(frozen=True)
class CatalogueFit:
    """Fits for every product, some borrowed from their category.

    Groups 0..P-1 are products, P..P+C-1 categories; ``group_of_product[p]`` is the one product p uses.
    """

    fits: GroupFits
    group_of_product: np.ndarray
    lines: LineIntervals  # ``lines.item`` is each line's group
    n_products: int
    priors: np.ndarray  # the prior median each group was fitted with

    def method(self, product: int) -> str:
        """How product's estimate was made: 'product', 'category' (borrowed) or 'prior' (no intervals)."""
        group = int(self.group_of_product[product])
        if self.fits.n_observed[group] == 0:
            return "prior"
        return "product" if group < self.n_products else "category"


def fit_catalogue(
    member: np.ndarray,
    product: np.ndarray,
    category: np.ndarray,
    at: np.ndarray,
    as_of: float,
    product_prior: np.ndarray,
    category_prior: np.ndarray,
    config: ModelConfig | None = None,
    min_intervals: int = MIN_PRODUCT_INTERVALS,
) -> CatalogueFit:
    """Fit lifetimes for all products from purchase lines (product/category codes, -1 = no category).

    Times are in days; only lines at or before ``as_of`` are used, and open intervals are censored there.
    """
    n_products = len(product_prior)
    lines = extract(member, product, at)
    usable, _, observed = lines.censored_at(at, as_of)
    counts = np.bincount(product[observed], minlength=n_products)
    sparse = (counts < min_intervals)[product] & (category >= 0)
    group_of_product = np.arange(n_products)
    if sparse.any():
        # Only the sparse products' lines change sequence; the rest keep their product-level links.
        rows = np.flatnonzero(sparse)
        item = product.copy()
        item[rows] = n_products + category[rows]
        borrowed = extract(member[rows], item[rows], at[rows], pair_offset=int(lines.pair.max()) + 1)
        next_at, split, pair = lines.next_at.copy(), lines.split.copy(), lines.pair.copy()
        next_at[rows], split[rows], pair[rows] = borrowed.next_at, borrowed.split, borrowed.pair
        lines = LineIntervals(item=item, pair=pair, next_at=next_at, split=split)
        group_of_product[product[rows]] = n_products + category[rows]
    usable, duration, observed = lines.censored_at(at, as_of)
    priors = np.concatenate([product_prior, category_prior]).astype(float)
    fits = fit_groups(duration[usable], observed[usable], lines.item[usable], priors, config)
    return CatalogueFit(fits, group_of_product, lines, n_products, priors)


def category_priors(
    product_prior: np.ndarray, product_category: np.ndarray, n_categories: int, default: float
):
    """A prior per category where none was given: the median of its products' priors."""
    result = np.full(n_categories, float(default))
    for c in np.unique(product_category[product_category >= 0]):
        result[c] = float(np.median(product_prior[product_category == c]))
    return result
