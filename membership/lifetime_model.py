"""The lifetime mathematics: censoring-aware Weibull fits blended with a prior, for many items at once.

Pure functions of numpy arrays (no database, no files), so the nightly fit, the file-based
``backtest``/``predict`` commands and the tests all share one implementation.

The model, per item: a repurchase interval T follows a Weibull(shape k, scale λ) among members who
do come back, and a fraction π of purchases are the member's last (a "cure" mixture: they lapsed,
moved away, bought elsewhere). Intervals still open at the fitting date are right-censored. The
marketer's prior enters as ``prior_weight`` pseudo-observations placed at the prior Weibull's
quantiles, which is the conjugate (inverse-gamma on λ^k) prior in disguise: with ten members the
prior dominates, with hundreds the data does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

PRIOR_SHAPE = 2.0  # wear-out items fail around their median, not memorylessly (see membership.lifetime)
PRIOR_WEIGHT = 20.0  # pseudo-observations the prior is worth
PSEUDO_POINTS = 20  # quantile points the prior is spread over
LAPSE_PRIOR = (1.0, 9.0)  # Beta pseudo-counts for π: "about one purchase in ten is a member's last"
MIN_SHAPE, MAX_SHAPE = 0.3, 12.0
TOLERANCE = 1e-5  # relative change in shape and scale at which a group's EM stops
LOG_RESOLUTION = 2e-3  # durations are tied to 0.2 % relative precision before fitting (speed)


@dataclass(frozen=True)
class ModelConfig:
    """Knobs of the lifetime model; the defaults are the back-tested ones."""

    prior_weight: float = PRIOR_WEIGHT
    prior_shape: float = PRIOR_SHAPE
    reminder_quantile: float = 0.3  # back-tested: 0.3–0.35 beat the median and 0.25 (see bench/lifetime.py)
    low_quantile: float = 0.1
    high_quantile: float = 0.9
    cure: bool = True  # model lapsed members explicitly instead of treating them as "not yet"
    lapse_probability: float = 0.9  # judged lapsed once P(never returns | no repurchase yet) ≥ this
    lapse_factor: float = 3.0  # …or once the interval exceeds this multiple of the high quantile
    max_iterations: int = 200
    reminder_window: float | None = None  # aim at the window most likely to hold the repurchase


@dataclass(frozen=True)
class ItemFit:
    """What we believe about one item's lifetime and what the belief rests on."""

    median_days: float
    low_days: float
    high_days: float
    reminder_days: float
    shape: float
    scale: float
    n_observed: int
    n_censored: int
    method: str
    lapse_fraction: float = 0.0
    lapse_days: float = math.inf


@dataclass(frozen=True)
class GroupFits:
    """Weibull fits for ``n`` groups at once (arrays indexed by group code)."""

    shape: np.ndarray
    scale: np.ndarray
    lapse_fraction: np.ndarray
    n_observed: np.ndarray
    n_censored: np.ndarray

    def quantile(self, q: float) -> np.ndarray:
        return weibull_quantile(self.scale, self.shape, q)

    def reminder(self, config: ModelConfig) -> np.ndarray:
        """Days after purchase to aim the reminder at (before any lead time), per group."""
        if config.reminder_window is None:
            return self.quantile(config.reminder_quantile)
        return best_window_centre(self.scale, self.shape, config.reminder_window)

    def lapse_days(self, config: ModelConfig) -> np.ndarray:
        """Interval after which a member without a repurchase is judged lapsed (win-back, not a reminder)."""
        p, pi = config.lapse_probability, self.lapse_fraction
        # P(lapsed | no repurchase by t) = π / (π + (1-π) S(t)) ≥ p  ⟺  S(t) ≤ π(1-p) / (p(1-π))
        with np.errstate(divide="ignore", invalid="ignore"):
            target = np.clip(pi * (1 - p) / (p * (1 - pi)), 0.0, 1.0)
            by_posterior = self.scale * (-np.log(target)) ** (1 / self.shape)
        cap = config.lapse_factor * self.quantile(config.high_quantile)
        return np.minimum(np.where(target > 0, by_posterior, np.inf), cap)

    def item(self, i: int, config: ModelConfig, method: str) -> ItemFit:
        """The ``ItemFit`` of group ``i``."""
        k, lam = float(self.shape[i]), float(self.scale[i])
        return ItemFit(
            median_days=float(weibull_quantile(lam, k, 0.5)),
            low_days=float(weibull_quantile(lam, k, config.low_quantile)),
            high_days=float(weibull_quantile(lam, k, config.high_quantile)),
            reminder_days=float(weibull_quantile(lam, k, config.reminder_quantile)),
            shape=k,
            scale=lam,
            n_observed=int(self.n_observed[i]),
            n_censored=int(self.n_censored[i]),
            method=method,
            lapse_fraction=float(self.lapse_fraction[i]),
            lapse_days=float(self.lapse_days(config)[i]),
        )


def weibull_quantile(scale, shape, q: float):
    """The q-quantile of Weibull(shape, scale); works on scalars and arrays."""
    return scale * (-np.log1p(-q)) ** (1 / shape)


def best_window_centre(scale, shape, window: float) -> np.ndarray:
    """Centre of the ``window``-day span most likely to contain the repurchase, per group.

    P(c - w/2 < T ≤ c + w/2) peaks near the density's mode; searched on a quantile grid so items
    without a mode (shape ≤ 1, no wear-out) still get a sensible, early answer.
    """
    scale, shape = np.atleast_1d(scale)[:, None], np.atleast_1d(shape)[:, None]
    grid = weibull_quantile(scale, shape, np.linspace(0.02, 0.8, 157)[None, :])
    lo, hi = np.maximum(grid - window / 2, 0), grid + window / 2
    mass = np.exp(-((lo / scale) ** shape)) - np.exp(-((hi / scale) ** shape))
    return grid[np.arange(len(grid)), np.argmax(mass, axis=1)]


def weibull_scale_for_median(median, shape):
    """The scale whose Weibull has the given median."""
    return median / np.log(2) ** (1 / shape)


def kaplan_meier(durations, observed) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier survival: (event times, S just after each time). Ties: events before censorings."""
    t = np.asarray(durations, dtype=float)
    d = np.asarray(observed, dtype=bool)
    times, inverse = np.unique(t, return_inverse=True)
    events = np.bincount(inverse, weights=d, minlength=len(times))
    leaving = np.bincount(inverse, minlength=len(times))
    at_risk = len(t) - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    survival = np.cumprod(1 - events / at_risk)
    keep = events > 0
    return times[keep], survival[keep]


def kaplan_meier_quantile(durations, observed, q: float) -> float:
    """First time the KM curve drops to 1-q or below; ``inf`` when follow-up is too short to tell."""
    times, survival = kaplan_meier(durations, observed)
    below = np.nonzero(survival <= 1 - q)[0]
    return float(times[below[0]]) if len(below) else math.inf


def naive_mean(durations, observed) -> float:
    """Mean of completed intervals only: the biased baseline (short intervals complete first)."""
    done = np.asarray(durations, dtype=float)[np.asarray(observed, dtype=bool)]
    return float(done.mean()) if len(done) else math.nan


def fit_item(
    durations, observed, prior_days: float, config: ModelConfig | None = None, method: str = "product"
) -> ItemFit:
    """Fit one item: its intervals, whether each was observed (else censored), and its prior median."""
    config = config or ModelConfig()
    durations = np.asarray(durations, dtype=float)
    fits = fit_groups(
        durations,
        np.asarray(observed, dtype=bool),
        np.zeros(len(durations), dtype=np.int64),
        np.array([float(prior_days)]),
        config,
    )
    return fits.item(0, config, method if fits.n_observed[0] else "prior")


def fit_groups(
    durations: np.ndarray,
    observed: np.ndarray,
    groups: np.ndarray,
    prior_median: np.ndarray,
    config: ModelConfig | None = None,
    weights: np.ndarray | None = None,
) -> GroupFits:
    """Fit every group (item) at once: a prior-blended, censoring-aware (cure-)Weibull MLE per group.

    ``groups`` are codes 0..n-1 (n = len(prior_median)); ``weights`` are optional counts per row.
    """
    config = config or ModelConfig()
    n = len(prior_median)
    groups = np.asarray(groups, dtype=np.int64)
    observed = np.asarray(observed, dtype=bool)
    base = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=float)
    n_obs = np.bincount(groups, weights=base * observed, minlength=n)
    n_cens = np.bincount(groups, weights=base * ~observed, minlength=n)
    g, logt, event, count = _collapse(groups, np.asarray(durations, dtype=float), observed, base)
    real = np.bincount(g, weights=count, minlength=n)  # π is a share of members' purchases, not pseudo ones
    g, logt, event, count = _with_prior(g, logt, event, count, prior_median, config)
    shape, scale, lapse = _fit_collapsed(g, logt, event, count, real, config)
    return GroupFits(shape, scale, lapse, n_obs.astype(np.int64), n_cens.astype(np.int64))


def _collapse(groups, durations, observed, weights):
    """Tie durations to a fine log grid and merge duplicates: millions of rows become a few 100k."""
    logt = np.log(np.maximum(durations, 0.5))  # same-day repeats are basket splits, not lifetimes
    bins = np.rint(logt / LOG_RESOLUTION).astype(np.int64)
    offset = bins.min() if len(bins) else 0
    span = (bins.max() - offset + 1) if len(bins) else 1
    key = (groups * span + (bins - offset)) * 2 + observed
    size = int(key.max()) + 1 if len(key) else 0
    if size <= max(64_000_000, 4 * len(key)):
        # A dense count is O(n) where np.unique would sort; the grid is small enough to allocate.
        dense = np.bincount(key, weights=weights, minlength=size)
        uniq = np.flatnonzero(dense)
        count = dense[uniq]
    else:
        uniq, inverse = np.unique(key, return_inverse=True)
        count = np.bincount(inverse, weights=weights, minlength=len(uniq))
    event = (uniq & 1).astype(bool)
    rest = uniq >> 1
    return rest // span, ((rest % span) + offset) * LOG_RESOLUTION, event, count


def _with_prior(g, logt, event, count, prior_median, config: ModelConfig):
    """Append the prior as weighted, uncensored pseudo-observations whose own fit is exactly the prior."""
    n = len(prior_median)
    scale = weibull_scale_for_median(np.asarray(prior_median, dtype=float), config.prior_shape)
    unit = _unit_pseudo_log_points(PSEUDO_POINTS, config.prior_shape)
    pseudo = np.log(scale)[:, None] + unit[None, :]
    return (
        np.concatenate([g, np.repeat(np.arange(n), len(unit))]),
        np.concatenate([logt, pseudo.ravel()]),
        np.concatenate([event, np.ones(n * len(unit), dtype=bool)]),
        np.concatenate([count, np.full(n * len(unit), config.prior_weight / len(unit))]),
    )


@functools.lru_cache(maxsize=8)
def _unit_pseudo_log_points(points: int, shape: float) -> np.ndarray:
    """Log of points at Weibull(shape, 1) quantiles, corrected so their MLE is exactly (shape, 1).

    Evenly spaced quantiles fit a slightly different Weibull (about 0.4 % off with 20 points); the
    family is closed under x → (x/λ)^a, and so is its MLE, which makes the correction exact.
    """
    probs = (np.arange(points) + 0.5) / points
    logz = np.log(-np.log1p(-probs)) / shape
    zeros = np.zeros(points, dtype=np.int64)
    k, log_lam = _weibull_newton(
        zeros, logz, np.ones(points, bool), np.ones(points), 1, np.array([shape]), 50
    )
    return (logz - log_lam[0]) * k[0] / shape


def _fit_collapsed(g, logt, event, count, n_all, config: ModelConfig):
    """EM for the cure mixture around a vectorised profile-likelihood Newton solve for the shape.

    Groups leave the loop as they converge, so a few slow groups do not cost a pass over all rows.
    """
    n = len(n_all)
    events = np.bincount(g, weights=count * event, minlength=n)
    centre = np.bincount(g, weights=count * event * logt, minlength=n) / events
    u = logt - centre[g]  # centring keeps exp(k·u) finite for any duration scale
    lapse = np.full(n, 0.1 if config.cure else 0.0)
    susceptible = np.ones(len(g))
    shape = np.full(n, config.prior_shape)
    log_scale = np.zeros(n)
    shape, log_scale = _weibull_newton(g, u, event, count, n, shape, steps=30)
    if not config.cure:
        return shape, np.exp(log_scale + centre), lapse
    a, b = LAPSE_PRIOR
    rows = np.arange(len(g))
    for _ in range(config.max_iterations):
        gi, ui, ei, ci = g[rows], u[rows], event[rows], count[rows]
        z = np.exp(np.clip(shape[gi] * (ui - log_scale[gi]), -700, 700))
        surv = np.exp(-z)
        pi = lapse[gi]
        s = np.where(ei, 1.0, (1 - pi) * surv / (pi + (1 - pi) * surv))
        susceptible[rows] = s
        lapsed = np.bincount(gi, weights=ci * ~ei * (1 - s), minlength=n)
        new_lapse = (lapsed + a - 1) / (n_all + a + b - 2)
        new_shape, new_log_scale = _weibull_newton(gi, ui, ei, ci * s, n, shape, steps=2)
        moved = (
            (np.abs(new_shape - shape) > TOLERANCE * shape)
            | (np.abs(new_log_scale - log_scale) > TOLERANCE)
            | (np.abs(new_lapse - lapse) > TOLERANCE)
        )
        present = np.bincount(gi, minlength=n) > 0
        shape = np.where(present, new_shape, shape)
        log_scale = np.where(present, new_log_scale, log_scale)
        lapse = np.where(present, new_lapse, lapse)
        active = moved & present
        if not active.any():
            break
        rows = rows[active[g[rows]]]
    return shape, np.exp(log_scale + centre), lapse


def _weibull_newton(g, u, event, w, n, shape, steps: int):
    """Solve the weighted censored-Weibull score equation for the shape, per group, by safeguarded Newton.

    With λ profiled out, 1/k + mean_events(u) − Σw·e^{ku}·u / Σw·e^{ku} = 0 is decreasing in k.
    """
    d = np.bincount(g, weights=w * event, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):  # groups absent from this pass are NaN, unused
        return _newton_steps(g, u, event, w, n, shape, steps, d)


def _newton_steps(g, u, event, w, n, shape, steps, d):
    mean_u = np.bincount(g, weights=w * event * u, minlength=n) / d
    k = shape.copy()
    for _ in range(steps):
        s0, s1, s2 = _moments(g, u, w, k, n)
        m1 = s1 / s0
        score = 1 / k + mean_u - m1
        slope = -1 / k**2 - np.maximum(s2 / s0 - m1**2, 0.0)
        step = np.clip(-score / slope, -k / 2, k)  # never more than halve or double in one step
        k = np.clip(k + step, MIN_SHAPE, MAX_SHAPE)
        if np.max(np.abs(step)) < 1e-9:
            break
    s0, _, _ = _moments(g, u, w, k, n, only_s0=True)
    return k, (np.log(s0) - np.log(d)) / k


def _moments(g, u, w, k, n, only_s0: bool = False):
    e = w * np.exp(k[g] * u)
    s0 = np.bincount(g, weights=e, minlength=n)
    if only_s0:
        return s0, None, None
    eu = e * u
    return s0, np.bincount(g, weights=eu, minlength=n), np.bincount(g, weights=eu * u, minlength=n)


def personal_factors(
    pair: np.ndarray,
    durations: np.ndarray,
    observed: np.ndarray,
    item_median: np.ndarray,
    min_intervals: int = 3,
) -> np.ndarray:
    """A multiplicative factor per (member, item) pair for their own rhythm, shrunk by empirical Bayes.

    ``pair`` codes each interval's (member, item); ``item_median`` is that interval's item median.
    Pairs with fewer than ``min_intervals`` observed intervals get 1. The shrinkage τ²/(τ²+σ²/n) is
    estimated from the data, so where members do not differ (or we cannot tell) it falls to nothing.
    """
    pair = np.asarray(pair, dtype=np.int64)
    n_pairs = int(pair.max()) + 1 if len(pair) else 0
    factors = np.ones(n_pairs)
    obs = np.asarray(observed, dtype=bool) & (np.asarray(durations) > 0)
    if not obs.any():
        return factors
    p = pair[obs]
    r = np.log(np.asarray(durations, dtype=float)[obs]) - np.log(np.asarray(item_median, dtype=float)[obs])
    n = np.bincount(p, minlength=n_pairs)
    total = np.bincount(p, weights=r, minlength=n_pairs)
    mean = np.divide(total, n, out=np.zeros(n_pairs), where=n > 0)
    within = np.bincount(p, weights=(r - mean[p]) ** 2, minlength=n_pairs)
    dof = np.maximum(n - 1, 0).sum()
    eligible = n >= min_intervals
    if dof == 0 or eligible.sum() < 2:
        return factors
    sigma2 = within.sum() / dof
    centred = mean[eligible] - np.average(mean[eligible], weights=n[eligible])
    tau2 = max(0.0, float(np.mean(centred**2) - sigma2 * np.mean(1 / n[eligible])))
    shrink = tau2 / (tau2 + sigma2 / n[eligible])
    factors[eligible] = np.exp(shrink * centred)
    return factors
