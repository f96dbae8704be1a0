"""The demo store's history carries a real lifetime signal: exported in the file format, back-tested,
our method beats every naive baseline on hit rate (as ``huifang lifetimes export`` + ``backtest`` show)."""

import csv
import datetime as dt

from sqlalchemy import func, select

import demo
from membership.lifetime import LifetimeEstimate
from membership.lifetime_cli import lifetimes
from membership.lifetime_export import export_priors, export_purchases
from membership.lifetime_files import backtest, read_priors, read_purchases
from membership.purchase import Purchase

NOW = dt.datetime(2026, 11, 23, 9, 0)


def test_demo_history_rewards_the_lifetime_model(session, tmp_path):
    demo.seed(session, members=600, seed_value=7, now=NOW)
    session.flush()
    learned = session.scalar(
        select(func.count()).select_from(LifetimeEstimate).where(LifetimeEstimate.method != "prior")
    )
    assert learned >= 10  # the seeded demo shows learned lifetimes on the products page at once

    purchases, priors = tmp_path / "purchases.csv", tmp_path / "priors.csv"
    lines = export_purchases(session, purchases)
    assert lines == session.scalar(select(func.count()).select_from(Purchase))
    assert export_priors(session, priors) == 15
    with open(purchases, newline="") as f:
        header = next(csv.reader(f))
    assert header == ["line_id", "member_id", "sku", "category", "purchased_at", "quantity"]
    assert len(read_purchases(purchases).line_id) == lines and read_priors(priors)["TT-R-TENERGY"] == 180

    result = backtest(purchases, dt.date(2026, 5, 27), 180, priors)
    scores = {s.method: s for s in result.scores}
    ours = scores.pop("ours")
    assert ours.repurchases > 300
    for name, baseline in scores.items():
        assert ours.hit_rate > baseline.hit_rate, (name, ours, baseline)


def test_export_command_writes_files_backtest_reads(app, session, factory, tmp_path):
    product = factory.product(prior_days=30)
    for i in range(12):
        member = factory.member()
        for k in range(5):
            factory.purchase(member, product, NOW - dt.timedelta(days=160 - 30 * k + i))
    session.commit()
    out, priors = tmp_path / "p.csv", tmp_path / "priors.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(lifetimes, ["export", "--out", str(out), "--priors-out", str(priors)])
    assert result.exit_code == 0, result.output
    assert "wrote 60 purchase lines" in result.output and "wrote 1 priors" in result.output
    assert read_priors(priors) == {product.sku: 30}
    result = runner.invoke(
        lifetimes,
        [
            "backtest",
            "--purchases",
            str(out),
            "--priors",
            str(priors),
            "--cutoff",
            "2026-08-01",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ours" in result.output and "naive median" in result.output
