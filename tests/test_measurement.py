"""Campaign measurement: the funnel from real rows, and a lift interval that is honest.

The simulation draws campaigns with a known true lift many times; the reported 95% interval must
cover the truth 93–97% of the time (a Wald interval on small holdouts would not).
"""

import datetime as dt

import numpy as np
import pytest

from campaigns.campaign import CampaignKind
from campaigns.measurement import campaign_results, lift, wilson
from campaigns.message import Message, MessageStatus

NOW = dt.datetime(2026, 6, 15, 4, 0)


@pytest.mark.parametrize(
    ("p_treated", "p_control", "n_treated", "n_control"),
    [(0.30, 0.20, 900, 100), (0.25, 0.25, 2000, 200), (0.08, 0.05, 5000, 500), (0.60, 0.40, 300, 60)],
)
def test_interval_covers_the_true_lift_about_95_percent_of_the_time(
    p_treated, p_control, n_treated, n_control
):
    rng = np.random.default_rng(20261123)
    trials = 4000
    xt = rng.binomial(n_treated, p_treated, trials)
    xc = rng.binomial(n_control, p_control, trials)
    truth = p_treated - p_control
    covered = sum(
        1
        for a, b in zip(xt, xc, strict=True)
        if (r := lift(int(a), n_treated, int(b), n_control)).low <= truth <= r.high
    )
    assert 0.93 <= covered / trials <= 0.97


def test_lift_figures_and_edge_cases():
    result = lift(300, 1000, 20, 100)
    assert result.treated_rate == 0.3 and result.control_rate == 0.2
    assert result.difference == pytest.approx(0.1) and result.relative == pytest.approx(0.5)
    assert result.low < 0.1 < result.high and result.significant
    assert lift(0, 0, 5, 10).low is None and lift(5, 10, 0, 0).difference is None
    low, high = wilson(0, 20)
    assert low == 0.0 and 0 < high < 0.2
    assert lift(0, 50, 0, 50).low < 0 < lift(0, 50, 0, 50).high


def _row(session, campaign, member, status, due, **kw):
    message = Message(
        campaign_id=campaign.id,
        member_id=member.id,
        subject_ref=f"m{member.id}",
        channel="sms",
        to_address=member.phone,
        status=status,
        due_at=due,
        **kw,
    )
    session.add(message)
    return message


def test_campaign_results_from_the_database(session, factory):
    campaign = factory.campaign(CampaignKind.REPLENISHMENT)
    product = factory.product()
    due = NOW - dt.timedelta(days=40)
    treated = [factory.member() for _ in range(10)]
    held = [factory.member() for _ in range(5)]
    for i, m in enumerate(treated):
        status = MessageStatus.DELIVERED if i < 8 else MessageStatus.SUPPRESSED
        _row(session, campaign, m, status, due, sent_at=due if i < 8 else None)
    for m in held:
        _row(session, campaign, m, MessageStatus.HELD_OUT, due)
    late = factory.member()
    _row(
        session, campaign, late, MessageStatus.SENT, NOW - dt.timedelta(days=3), sent_at=NOW
    )  # still maturing
    session.flush()
    # 4 treated buy within 30 days (one of them twice), 1 held-out member does; one buys too late.
    for m in treated[:4]:
        factory.purchase(m, product, due + dt.timedelta(days=5), amount=100)
    factory.purchase(treated[0], product, due + dt.timedelta(days=6), amount=50)
    factory.purchase(held[0], product, due + dt.timedelta(days=10), amount=80)
    factory.purchase(held[1], product, due + dt.timedelta(days=31), amount=80)
    factory.purchase(treated[5], product, due - dt.timedelta(days=1), amount=80)  # before: not attributed

    results = campaign_results(session, campaign.id, window_days=30, now=NOW)
    assert results.funnel["eligible"] == 16 and results.funnel["held_out"] == 5
    assert (
        results.funnel["sent"] == 9 and results.funnel["delivered"] == 8 and results.funnel["suppressed"] == 2
    )
    assert results.maturing == 1
    assert (results.lift.treated_n, results.lift.treated_x) == (10, 4)
    assert (results.lift.control_n, results.lift.control_x) == (5, 1)
    assert results.treated_revenue == 450 and results.control_revenue == 80
    assert results.incremental_revenue == pytest.approx((45 - 16) * 10)
    assert results.funnel["repurchased"] == 4
