"""The lifetime mathematics on synthetic data with known Weibull lifetimes (no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from membership.lifetime_intervals import extract, fit_catalogue
from membership.lifetime_model import (
    ModelConfig,
    fit_groups,
    fit_item,
    kaplan_meier,
    kaplan_meier_quantile,
    naive_mean,
    personal_factors,
    weibull_quantile,
)

TRUE_MEDIAN = 180.0


def renewal(members: int, median: float, shape: float, window: float, rng, lapse: float = 0.0):
    """Each member buys at a random time in the window, then again after each Weibull lifetime.

    Returns (durations, observed): the interval still open at the window's end is censored there.
    ``lapse`` is the chance that a purchase is the member's last (they never come back).
    """
    scale = median / math.log(2) ** (1 / shape)
    t = rng.uniform(0, window, members)
    durations, observed = [], []
    alive = np.ones(members, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        life = scale * rng.weibull(shape, len(idx))
        done = (t[idx] + life <= window) & (rng.random(len(idx)) >= lapse)
        durations.append(np.where(done, life, window - t[idx]))
        observed.append(done)
        t[idx] += life
        alive[idx] = done
    return np.concatenate(durations), np.concatenate(observed)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_hundreds_of_members_learn_the_median_where_the_naive_mean_fails(seed):
    rng = np.random.default_rng(seed)
    durations, observed = renewal(500, TRUE_MEDIAN, 2.0, window=300, rng=rng)
    assert 1 - observed.mean() >= 0.4  # heavy censoring, as the acceptance asks
    fit = fit_item(durations, observed, prior_days=TRUE_MEDIAN * 1.3)  # a prior 30 % too high
    naive = naive_mean(durations, observed)
    assert abs(fit.median_days / TRUE_MEDIAN - 1) <= 0.10
    assert abs(naive / TRUE_MEDIAN - 1) > 0.25
    assert fit.method == "product" and fit.n_observed + fit.n_censored == len(durations)


@pytest.mark.parametrize("seed", range(8))
def test_ten_members_stay_near_a_correct_prior(seed):
    rng = np.random.default_rng(100 + seed)
    durations, observed = renewal(10, TRUE_MEDIAN, 2.0, window=365, rng=rng)
    fit = fit_item(durations, observed, prior_days=TRUE_MEDIAN)
    assert abs(fit.median_days / TRUE_MEDIAN - 1) <= 0.15


def test_a_wrong_prior_yields_to_hundreds_but_not_to_a_handful():
    rng = np.random.default_rng(7)
    many = renewal(400, 60, 2.0, window=365, rng=rng)
    few = renewal(3, 60, 2.0, window=365, rng=rng)
    assert fit_item(*many, prior_days=180).median_days == pytest.approx(60, rel=0.1)
    assert fit_item(*few, prior_days=180).median_days > 90


def test_without_prior_weight_the_fit_is_the_censored_maximum_likelihood():
    rng = np.random.default_rng(3)
    durations, observed = renewal(300, 90, 1.7, window=200, rng=rng)
    ours = fit_item(durations, observed, 90, ModelConfig(prior_weight=1e-9, cure=False))
    data = stats.CensoredData(uncensored=durations[observed], right=durations[~observed])
    shape, _, scale = stats.weibull_min.fit(data, floc=0)
    assert ours.shape == pytest.approx(shape, rel=0.01)
    assert ours.scale == pytest.approx(scale, rel=0.01)


def test_lapsed_members_do_not_inflate_the_lifetime():
    """One purchase in five is the last: without the cure mixture their open intervals read as long lives."""
    rng = np.random.default_rng(11)
    durations, observed = renewal(2000, 30, 2.0, window=730, rng=rng, lapse=0.2)
    fit = fit_item(durations, observed, prior_days=30)
    plain = fit_item(durations, observed, prior_days=30, config=ModelConfig(cure=False))
    assert fit.median_days == pytest.approx(30, rel=0.05)
    assert fit.lapse_fraction == pytest.approx(0.2, abs=0.03)
    assert plain.median_days > 40  # the bias the cure model removes
    assert fit.high_days < fit.lapse_days < 4 * fit.high_days


def test_no_intervals_at_all_is_the_prior():
    fit = fit_item([], [], prior_days=120)
    assert fit.method == "prior"
    assert fit.median_days == pytest.approx(120, rel=1e-6)
    q = ModelConfig().reminder_quantile
    assert fit.reminder_days == pytest.approx(weibull_quantile(120 / math.log(2) ** 0.5, 2.0, q), rel=1e-6)
    assert fit.low_days < fit.reminder_days < fit.median_days < fit.high_days


def test_groups_fitted_together_equal_groups_fitted_alone():
    rng = np.random.default_rng(5)
    parts = [renewal(n, m, 2.0, window=400, rng=rng) for n, m in ((50, 30), (200, 150), (5, 400))]
    durations = np.concatenate([d for d, _ in parts])
    observed = np.concatenate([o for _, o in parts])
    groups = np.repeat(np.arange(3), [len(d) for d, _ in parts])
    priors = np.array([40.0, 120.0, 365.0])
    together = fit_groups(durations, observed, groups, priors)
    for g, (d, o) in enumerate(parts):
        alone = fit_item(d, o, priors[g])
        assert together.quantile(0.5)[g] == pytest.approx(alone.median_days, rel=1e-3)


def test_kaplan_meier_by_hand():
    times, survival = kaplan_meier([1, 2, 2, 3, 4, 5], [True, True, False, True, False, True])
    # at risk 6 → 5/6; at 2: 5 at risk, 1 event → ×4/5; at 3: 3 at risk → ×2/3; at 5: 1 at risk → 0
    assert times.tolist() == [1, 2, 3, 5]
    assert survival == pytest.approx([5 / 6, 2 / 3, 4 / 9, 0.0])
    assert kaplan_meier_quantile([1, 2, 3], [True, False, False], 0.5) == math.inf


def test_kaplan_meier_median_agrees_with_the_weibull_on_weibull_data():
    rng = np.random.default_rng(9)
    durations, observed = renewal(1000, TRUE_MEDIAN, 2.0, window=500, rng=rng)
    km = kaplan_meier_quantile(durations, observed, 0.5)
    assert km == pytest.approx(fit_item(durations, observed, TRUE_MEDIAN).median_days, rel=0.08)


def test_personal_rhythm_is_shrunk_and_vanishes_without_between_member_spread():
    rng = np.random.default_rng(4)
    pairs = np.repeat(np.arange(400), 6)
    rhythm = np.exp(rng.normal(0, 0.4, 400))  # some members wear gear out much faster than others
    scale = 100 * rhythm[pairs] / math.log(2) ** 0.5
    durations = scale * rng.weibull(3.0, len(pairs))
    factors = personal_factors(pairs, durations, np.ones(len(pairs), bool), np.full(len(pairs), 100.0))
    assert np.corrcoef(np.log(factors), np.log(rhythm))[0, 1] > 0.7
    assert np.std(np.log(factors)) < 0.4  # shrunk towards the item's median
    same = 100 / math.log(2) ** (1 / 3) * rng.weibull(3.0, len(pairs))
    flat = personal_factors(pairs, same, np.ones(len(pairs), bool), np.full(len(pairs), 100.0))
    assert np.max(np.abs(np.log(flat))) < 0.1
    few = personal_factors(np.array([0, 0, 1]), np.array([10.0, 20, 30]), np.ones(3, bool), np.full(3, 20.0))
    assert few.tolist() == [1.0, 1.0]  # two intervals is not a rhythm


def test_intervals_link_each_purchase_to_the_next_of_the_same_item():
    member = np.array([1, 1, 1, 2, 1, 2])
    item = np.array([7, 7, 7, 7, 8, 7])
    at = np.array([0.0, 10.0, 30.0, 5.0, 12.0, 5.2])  # member 2's second line is a split basket
    lines = extract(member, item, at)
    assert np.isnan(lines.next_at[[2, 4, 5]]).all()
    assert lines.next_at[:2].tolist() == [10.0, 30.0]
    assert lines.split.tolist() == [False, False, False, True, False, False]
    usable, duration, observed = lines.censored_at(at, as_of=20.0)
    assert usable.tolist() == [True, True, False, False, True, True]
    assert observed[usable].tolist() == [True, False, False, False]
    assert duration[usable].tolist() == pytest.approx([10.0, 10.0, 8.0, 14.8])
    assert len(set(lines.pair[[0, 1, 2]])) == 1 and lines.pair[4] != lines.pair[0]


def test_sparse_products_borrow_their_category_fit():
    rng = np.random.default_rng(2)
    rows = []
    for m in range(300):  # product 0 is popular; product 1 (same category) is bought by a few
        product = 0 if m < 297 else 1
        t = rng.uniform(0, 100)
        while t < 500:
            rows.append((m, product, t))
            t += 60 * rng.weibull(2.0) / math.log(2) ** 0.5
    member, product, at = (np.array(c) for c in zip(*rows, strict=True))
    fit = fit_catalogue(
        member, product, np.zeros(len(product), np.int64), at, 500.0, np.array([60.0, 60.0]), np.array([60.0])
    )
    assert fit.method(0) == "product" and fit.method(1) == "category"
    assert fit.fits.quantile(0.5)[fit.group_of_product[1]] == pytest.approx(60, rel=0.15)
