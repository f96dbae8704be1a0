"""``huifang lifetimes backtest|predict`` on plain files: check the lifetime model on your own history.

No database: the purchases CSV (``line_id,member_id,sku,category,purchased_at[,quantity]``) is read
once with the csv module into numpy columns, and the same mathematics as the nightly fit runs on it.
A million lines take seconds and a few hundred MB.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from membership.lifetime_intervals import CatalogueFit, category_priors, fit_catalogue, to_days
from membership.lifetime_model import ModelConfig, personal_factors

REQUIRED = ("line_id", "member_id", "sku", "category", "purchased_at")
DEFAULT_PRIOR_DAYS = 180.0
HIT_WINDOW_DAYS = 14.0  # a reminder "hits" when it lands within the 14 days before the repurchase
LEAD_DAYS = 7.0  # reminders go out this long before the predicted time, as the campaigns do
MAX_REPORTED_ERRORS = 20


class LifetimeFileError(ValueError):
    """A purchases or priors file has rows we will not guess about; the message lists them by line."""

    def __init__(self, path: str | Path, errors: list[str], total: int | None = None):
        self.errors = errors
        total = total if total is not None else len(errors)
        more = f"\n  … and {total - len(errors)} more" if total > len(errors) else ""
        super().__init__(f"{path}: {total} bad row(s)\n  " + "\n  ".join(errors) + more)


@dataclass
class Purchases:
    """Purchase lines as columns; ids are codes into the name lists. Times are days since 1970."""

    line_id: list[str]
    member: np.ndarray
    product: np.ndarray
    category: np.ndarray
    at: np.ndarray
    member_names: list[str]
    skus: list[str]
    categories: list[str]
    product_category: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class _Codes(dict):
    """Interns strings to 0..n-1 codes in first-seen order."""

    def code(self, value: str) -> int:
        found = self.get(value)
        if found is None:
            found = self[value] = len(self)
        return found


def parse_moment(text: str) -> dt.datetime:
    """An ISO date or date-time; an offset is converted to naive UTC like everything we store."""
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def read_purchases(path: str | Path) -> Purchases:
    """Read the purchases CSV; raise ``LifetimeFileError`` naming every bad line (none are skipped)."""
    members, skus, categories = _Codes(), _Codes(), _Codes()
    line_ids: list[str] = []
    member_col, product_col, category_col = (
        np.empty(1 << 16, np.int64),
        np.empty(1 << 16, np.int64),
        np.empty(1 << 16, np.int64),
    )
    at_col = np.empty(1 << 16, np.float64)
    errors: list[str] = []
    n_errors = 0
    seen_ids: dict[str, int] = {}
    day_cache: dict[str, float] = {}
    n = 0
    for line_no, row in _rows(path):
        problem = None
        try:
            line_id, member_id, sku, category, at = _parse_row(row, day_cache)
            first = seen_ids.setdefault(line_id, line_no)
            if first != line_no:
                problem = f"line {line_no}: duplicate line_id {line_id!r} (first on line {first})"
        except ValueError as exc:
            problem = f"line {line_no}: {exc}"
        if problem:
            n_errors += 1
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(problem)
            continue
        if n == len(at_col):  # grow by doubling: amortised O(1) appends without Python lists of ints
            member_col, product_col, category_col, at_col = (
                np.resize(a, 2 * n) for a in (member_col, product_col, category_col, at_col)
            )
        line_ids.append(line_id)
        member_col[n] = members.code(member_id)
        product_col[n] = skus.code(sku)
        category_col[n] = categories.code(category) if category else -1
        at_col[n] = at
        n += 1
    if n_errors:
        raise LifetimeFileError(path, errors, n_errors)
    product = product_col[:n]
    product_category = np.full(len(skus), -1, dtype=np.int64)
    product_category[product[::-1]] = category_col[:n][::-1]  # the first category seen for each sku
    return Purchases(
        line_ids,
        member_col[:n],
        product,
        product_category[product],  # one category per sku, even if the export disagrees with itself
        at_col[:n],
        list(members),
        list(skus),
        list(categories),
        product_category,
    )


def _rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by column name) for every data row; header problems fail at once."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise LifetimeFileError(path, [f"line 1: missing column(s) {', '.join(missing)}"])
        index = {name: header.index(name) for name in REQUIRED}
        width = len(header)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line is not a purchase; it has nothing to be wrong about
            if len(row) != width:
                yield reader.line_num, {"__width__": f"expected {width} fields, found {len(row)}"}
                continue
            yield reader.line_num, {name: row[i] for name, i in index.items()}


def _parse_row(row: dict[str, str], day_cache: dict[str, float]) -> tuple[str, str, str, str, float]:
    if "__width__" in row:
        raise ValueError(row["__width__"])
    line_id, member_id, sku = row["line_id"].strip(), row["member_id"].strip(), row["sku"].strip()
    for name, value in (("line_id", line_id), ("member_id", member_id), ("sku", sku)):
        if not value:
            raise ValueError(f"empty {name}")
    text = row["purchased_at"].strip()
    at = day_cache.get(text)
    if at is None:
        try:
            at = to_days(parse_moment(text))
        except ValueError:
            raise ValueError(f"purchased_at {text!r} is not an ISO date or date-time") from None
        if len(text) == 10:  # date-only exports repeat few values; cache those, not unique timestamps
            day_cache[text] = at
    return line_id, member_id, sku, row["category"].strip(), at


def read_priors(path: str | Path | None) -> dict[str, float]:
    """``item,days`` rows (item = sku or category) → prior median days; bad rows raise with line numbers."""
    if path is None:
        return {}
    priors: dict[str, float] = {}
    errors: list[str] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["item", "days"]:
            raise LifetimeFileError(path, ["line 1: expected the header item,days"])
        for row in reader:
            if not row:
                continue
            try:
                item, days = row[0].strip(), float(row[1])
                if not item or not math.isfinite(days) or days <= 0:
                    raise ValueError
            except (ValueError, IndexError):
                errors.append(f"line {reader.line_num}: expected an item and a positive number of days")
                continue
            priors[item] = days
    if errors:
        raise LifetimeFileError(path, errors[:MAX_REPORTED_ERRORS], len(errors))
    return priors


def prior_arrays(purchases: Purchases, priors: dict[str, float], default: float = DEFAULT_PRIOR_DAYS):
    """Prior days per product (sku, else its category, else default) and per category."""
    by_category = [priors.get(c) for c in purchases.categories]
    product_prior = np.array(
        [
            priors.get(sku) or (by_category[c] if c >= 0 else None) or default
            for sku, c in zip(purchases.skus, purchases.product_category.tolist(), strict=True)
        ],
        dtype=float,
    )
    fallback = category_priors(product_prior, purchases.product_category, len(purchases.categories), default)
    category_prior = np.array([p or fallback[i] for i, p in enumerate(by_category)], dtype=float)
    return product_prior, category_prior


def fit_file(
    purchases: Purchases, as_of: float, priors: dict[str, float], config: ModelConfig
) -> CatalogueFit:
    """The catalogue fit as it would have been made at ``as_of`` (days since 1970)."""
    product_prior, category_prior = prior_arrays(purchases, priors)
    return fit_catalogue(
        purchases.member,
        purchases.product,
        purchases.category,
        purchases.at,
        as_of,
        product_prior,
        category_prior,
        config,
    )


def personal_factor_per_line(fit: CatalogueFit, at: np.ndarray, as_of: float) -> np.ndarray:
    """Each line's multiplier for its member's own rhythm with that item (1 where history is thin)."""
    usable, duration, observed = fit.lines.censored_at(at, as_of)
    median = fit.fits.quantile(0.5)
    rows = usable & observed
    factors = personal_factors(
        fit.lines.pair[rows], duration[rows], np.ones(rows.sum(), bool), median[fit.lines.item[rows]]
    )
    result = np.ones(len(at))
    known = fit.lines.pair < len(factors)
    result[known] = factors[fit.lines.pair[known]]
    return result


# ---- predict ---------------------------------------------------------------------------------------


def predict(
    purchases_path: str | Path,
    as_of: dt.date | dt.datetime,
    out_path: str | Path,
    priors_path: str | Path | None = None,
    config: ModelConfig | None = None,
    lead_days: float = LEAD_DAYS,
) -> int:
    """Write ``line_id,member_id,item,purchased_at,reminder_at`` for every line; returns rows written.

    ``reminder_at`` is empty when the member already bought the item again, is judged lapsed, or the
    line is after ``as_of`` (a date means the end of that day).
    """
    config = config or ModelConfig()
    purchases = read_purchases(purchases_path)
    priors = read_priors(priors_path)
    cut = _as_of_days(as_of)
    fit = fit_file(purchases, cut, priors, config)
    reminder, keep = plan_reminders(fit, purchases.at, cut, config, lead_days)
    items = _item_names(purchases, fit)
    stamps = _iso(purchases.at, "s")
    due = _iso(np.where(keep, reminder, 0.0), "D")
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["line_id", "member_id", "item", "purchased_at", "reminder_at"])
        member_names = purchases.member_names
        for line_id, member, item, stamp, day, ok in zip(
            purchases.line_id,
            purchases.member.tolist(),
            fit.lines.item.tolist(),
            stamps.tolist(),
            due.tolist(),
            keep.tolist(),
            strict=True,
        ):
            writer.writerow([line_id, member_names[member], items[item], stamp, day if ok else ""])
    return len(purchases.line_id)


def plan_reminders(
    fit: CatalogueFit, at: np.ndarray, as_of: float, config: ModelConfig, lead_days: float = LEAD_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """(reminder time, should send) per line: the reminder quantile scaled by the member's rhythm."""
    factor = personal_factor_per_line(fit, at, as_of)
    group = fit.lines.item
    reminder = at + fit.fits.reminder(config)[group] * factor - lead_days
    lapsed = (as_of - at) > fit.fits.lapse_days(config)[group] * factor
    open_now = (at <= as_of) & ~(fit.lines.next_at <= as_of) & ~fit.lines.split
    return reminder, open_now & ~lapsed


def _item_names(purchases: Purchases, fit: CatalogueFit) -> list[str]:
    return purchases.skus + purchases.categories


def _iso(days: np.ndarray, unit: str) -> np.ndarray:
    seconds = np.rint(days * 86400).astype(np.int64).astype("datetime64[s]")
    return np.datetime_as_string(seconds, unit=unit)


def _as_of_days(as_of: dt.date | dt.datetime) -> float:
    if isinstance(as_of, dt.datetime):
        return to_days(as_of)
    return to_days(dt.datetime.combine(as_of, dt.time()) + dt.timedelta(days=1))


# ---- backtest --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodScore:
    """How one way of timing reminders would have done over the back-test horizon."""

    method: str
    reminders: int
    hits: int
    repurchases: int
    abs_error_days: float
    judged_hits: int = 0  # hits among the judged reminders (precision's numerator)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.repurchases if self.repurchases else 0.0

    @property
    def precision(self) -> float:
        return self.judged_hits / self.reminders if self.reminders else 0.0


@dataclass(frozen=True)
class BacktestResult:
    cutoff: dt.datetime
    horizon_days: float
    quantile: float
    lines: int
    cycles: int
    scores: list[MethodScore]


def backtest(
    purchases_path: str | Path,
    cutoff: dt.date | dt.datetime,
    horizon_days: float = 180.0,
    priors_path: str | Path | None = None,
    quantile: float | None = None,
    config: ModelConfig | None = None,
    lead_days: float = LEAD_DAYS,
) -> BacktestResult:
    """Fit on purchases before ``cutoff``, then score each method's reminders over the horizon after it."""
    config = config or ModelConfig()
    if quantile is not None:
        config = replace(config, reminder_quantile=quantile)
    purchases = read_purchases(purchases_path)
    priors = read_priors(priors_path)
    return backtest_purchases(purchases, cutoff, horizon_days, priors, config, lead_days)


def backtest_purchases(
    purchases: Purchases,
    cutoff: dt.date | dt.datetime,
    horizon_days: float,
    priors: dict[str, float],
    config: ModelConfig,
    lead_days: float = LEAD_DAYS,
) -> BacktestResult:
    """``backtest`` on purchases already read (so quantile tuning reads the file once)."""
    if not isinstance(cutoff, dt.datetime):
        cutoff = dt.datetime.combine(cutoff, dt.time())
    start = to_days(cutoff)
    end = start + horizon_days
    fit = fit_file(purchases, start, priors, config)
    at, lines = purchases.at, fit.lines
    # Cycles to score: purchases made inside the horizon, each with one reminder. Cycles already open
    # at the cutoff are left out: whether their reminder still falls after the cutoff depends on how
    # late the method reminds, which would reward late methods for an artefact of the split.
    cycle = ~lines.split & (at >= start) & (at < end)
    truth = lines.next_at - at
    methods = _method_estimates(fit, at, start, config)
    scores = []
    for name, (point, reminder_days, lapse_days) in methods.items():
        scores.append(
            _score(
                name,
                at,
                lines.next_at,
                truth,
                cycle,
                point,
                reminder_days - lead_days,
                lapse_days,
                start,
                end,
            )
        )
    return BacktestResult(cutoff, horizon_days, config.reminder_quantile, len(at), int(cycle.sum()), scores)


def _method_estimates(fit: CatalogueFit, at: np.ndarray, start: float, config: ModelConfig) -> dict:
    """Per line, for each method: (point estimate, reminder days before lead, lapse days)."""
    group = fit.lines.item
    usable, duration, observed = fit.lines.censored_at(at, start)
    done = usable & observed
    n = len(fit.fits.shape)
    prior_median = fit.priors
    mean, median = _naive(group[done], duration[done], n, prior_median)
    factor = personal_factor_per_line(fit, at, start)
    never = np.full(len(at), np.inf)
    ours_median = fit.fits.quantile(0.5)[group] * factor
    ours_reminder = fit.fits.reminder(config)[group] * factor
    prior_q = prior_median * (np.log1p(-config.reminder_quantile) / np.log(0.5)) ** (1 / config.prior_shape)
    return {
        "prior only": (prior_median[group], prior_median[group], never),
        "naive mean": (mean[group], mean[group], never),
        "naive median": (median[group], median[group], never),
        f"prior at q={config.reminder_quantile:g}": (prior_median[group], prior_q[group], never),
        "ours": (ours_median, ours_reminder, fit.fits.lapse_days(config)[group] * factor),
    }


def _naive(group, duration, n, fallback) -> tuple[np.ndarray, np.ndarray]:
    """Mean and median of completed intervals per group (the prior where a group has none)."""
    count = np.bincount(group, minlength=n)
    mean = np.where(
        count > 0, np.bincount(group, weights=duration, minlength=n) / np.maximum(count, 1), fallback
    )
    order = np.lexsort((duration, group))
    sorted_d = duration[order]
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    median = fallback.copy()
    has = count > 0
    lo = first[has] + (count[has] - 1) // 2
    hi = first[has] + count[has] // 2
    median[has] = (sorted_d[lo] + sorted_d[hi]) / 2
    return mean, median


def _score(name, at, next_at, truth, cycle, point, reminder_days, lapse_days, start, end) -> MethodScore:
    """Hit rate over repurchases inside the horizon; precision over reminders we can already judge."""
    reminder = at + reminder_days
    sent = cycle & (reminder < end) & ~(next_at <= reminder) & (reminder_days < lapse_days)
    returned = cycle & (next_at < end)
    hits = sent & returned & (next_at - reminder <= HIT_WINDOW_DAYS)
    # A reminder in the last 14 days could still hit after the data ends: judge only earlier ones.
    judged = sent & (reminder < end - HIT_WINDOW_DAYS)
    errors = np.abs(point[returned] - truth[returned])
    return MethodScore(
        name,
        int(judged.sum()),
        int(hits.sum()),
        int(returned.sum()),
        float(np.median(errors)) if len(errors) else math.nan,
        int((hits & judged).sum()),
    )


def format_backtest(result: BacktestResult) -> str:
    """The back-test as a plain-text table."""
    head = (
        f"back-test: {result.lines:,} lines, cutoff {result.cutoff:%Y-%m-%d}, horizon {result.horizon_days:g} days, "
        f"{result.cycles:,} purchase cycles scored, reminder quantile {result.quantile:g}\n"
    )
    rows = [
        f"{'method':<16} {'reminders':>10} {'hits':>8} {'repurchases':>12} {'hit rate':>9} {'precision':>10} {'MAE days':>9}"
    ]
    for s in result.scores:
        rows.append(
            f"{s.method:<16} {s.reminders:>10,} {s.hits:>8,} {s.repurchases:>12,} "
            f"{s.hit_rate:>9.1%} {s.precision:>10.1%} {s.abs_error_days:>9.1f}"
        )
    return head + "\n".join(rows)
