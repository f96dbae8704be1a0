"""``lifetimes backtest|predict`` on small generated CSV files (no database, no app)."""

from __future__ import annotations

import csv
import datetime as dt
import math

import numpy as np
import pytest
from click.testing import CliRunner

from membership.lifetime_cli import lifetimes
from membership.lifetime_files import LifetimeFileError, backtest, predict, read_priors, read_purchases

START = dt.datetime(2024, 1, 1)
HEADER = ["line_id", "member_id", "sku", "category", "purchased_at", "quantity"]
# sku, category, true median days; the priors below are deliberately 1.6× too long. A young store:
# 16 months of history against lifetimes of months, so many intervals are still open (censored).
ITEMS = [("SHUTTLE", "badminton", 45.0), ("STRINGS", "tennis", 100.0), ("SHOES", "running", 150.0)]


def write_history(path, members: int = 1000, days: int = 480, seed: int = 1, lapse: float = 0.12) -> None:
    """Weibull(2) repurchase cycles per member and item; some purchases are a member's last."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(members):
        for sku, category, median in ITEMS:
            if rng.random() < 0.4:
                continue
            rhythm = median * rng.uniform(0.8, 1.25)
            t = rng.uniform(0, median)
            while t < days:
                rows.append((START + dt.timedelta(days=float(t)), f"M{m}", sku, category))
                if rng.random() < lapse:
                    break
                t += max(2.0, rhythm * rng.weibull(2.0) / math.log(2) ** 0.5)
    rows.sort()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i, (at, member, sku, category) in enumerate(rows):
            writer.writerow([f"L{i}", member, sku, category, at.isoformat(timespec="seconds"), 1])


def write_priors(path, factor: float = 1.6) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "days"])
        for sku, _category, median in ITEMS:
            writer.writerow([sku, round(median * factor)])


@pytest.fixture
def history(tmp_path):
    path, priors = tmp_path / "purchases.csv", tmp_path / "priors.csv"
    write_history(path)
    write_priors(priors)
    return path, priors


def test_backtest_scores_each_method_and_ours_beats_the_naive_ones(history):
    path, priors = history
    result = backtest(path, dt.date(2024, 11, 1), horizon_days=120, priors_path=priors)
    scores = {s.method: s for s in result.scores}
    assert {"prior only", "naive mean", "naive median", "ours"} <= set(scores)
    ours = scores["ours"]
    assert ours.repurchases == scores["prior only"].repurchases > 100
    for name in ("prior only", "naive mean", "naive median"):
        assert ours.hit_rate > scores[name].hit_rate, name
    assert ours.abs_error_days < scores["prior only"].abs_error_days
    assert 0 < ours.precision <= 1


def test_predict_writes_every_line_with_a_reminder_only_where_one_is_due(tmp_path):
    path = tmp_path / "purchases.csv"
    lines = [
        ("A1", "alice", "SHUTTLE", "badminton", "2026-01-01T10:00:00"),  # bought again: no reminder
        ("A2", "alice", "SHUTTLE", "badminton", "2026-05-20T10:00:00"),  # the open one: reminder
        ("B1", "bob", "SHUTTLE", "badminton", "2023-02-01"),  # years ago, never again: lapsed
        ("C1", "carol", "SHUTTLE", "badminton", "2026-07-01"),  # after the as-of date
    ]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER[:5])
        writer.writerows(lines)
    priors = tmp_path / "priors.csv"
    priors.write_text("item,days\nbadminton,60\n")
    out = tmp_path / "due.csv"
    assert predict(path, dt.date(2026, 6, 1), out, priors) == 4
    rows = list(csv.DictReader(out.open()))
    assert [r["line_id"] for r in rows] == ["A1", "A2", "B1", "C1"]
    due = {r["line_id"]: r["reminder_at"] for r in rows}
    assert due["A1"] == due["B1"] == due["C1"] == ""
    # About the prior's 30 % quantile (Weibull shape 2: 0.72 × 60 ≈ 43 days) less 7 days' lead, pulled
    # a little later by alice's one observed 139-day interval.
    reminder = dt.date.fromisoformat(due["A2"])
    assert dt.date(2026, 6, 22) <= reminder <= dt.date(2026, 7, 10)
    assert rows[0]["item"] == "SHUTTLE" or rows[0]["item"] == "badminton"


def test_bad_rows_are_reported_by_line_number_not_skipped(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text(
        "line_id,member_id,sku,category,purchased_at\n"
        "L1,M1,SKU1,cat,2026-01-01\n"
        "L2,M1,SKU1,cat,yesterday\n"
        "L3,,SKU1,cat,2026-01-02\n"
        "L4,M2,SKU1\n"
        "L1,M3,SKU1,cat,2026-01-03\n"
    )
    with pytest.raises(LifetimeFileError) as caught:
        read_purchases(path)
    message = str(caught.value)
    assert "4 bad row(s)" in message
    assert "line 3: purchased_at 'yesterday'" in message
    assert "line 4: empty member_id" in message
    assert "line 5: expected 5 fields, found 3" in message
    assert "line 6: duplicate line_id 'L1' (first on line 2)" in message


def test_a_missing_column_and_bad_priors_fail_clearly(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text("line_id,member_id,sku,purchased_at\nL1,M1,SKU1,2026-01-01\n")
    with pytest.raises(LifetimeFileError, match="line 1: missing column\\(s\\) category"):
        read_purchases(path)
    priors = tmp_path / "priors.csv"
    priors.write_text("item,days\nSKU1,90\nSKU2,-5\nSKU3,soon\n")
    with pytest.raises(LifetimeFileError) as caught:
        read_priors(priors)
    assert "line 3" in str(caught.value) and "line 4" in str(caught.value)


def test_dates_with_offsets_become_utc(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text(
        "line_id,member_id,sku,category,purchased_at\nL1,M1,S,c,2026-01-01T08:00:00+08:00\nL2,M1,S,,2026-01-01\n"
    )
    purchases = read_purchases(path)
    assert purchases.at[0] == purchases.at[1]
    assert purchases.category.tolist() == [0, 0]  # one category per sku: the first one seen


def test_cli_backtest_and_predict(history, tmp_path):
    path, priors = history
    runner = CliRunner()
    result = runner.invoke(
        lifetimes,
        [
            "backtest",
            "--purchases",
            str(path),
            "--cutoff",
            "2024-11-01",
            "--priors",
            str(priors),
            "--quantile",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "naive median" in result.output and "ours" in result.output and "hit rate" in result.output
    out = tmp_path / "due.csv"
    result = runner.invoke(
        lifetimes, ["predict", "--purchases", str(path), "--as-of", "2025-02-28", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(read_purchases(path).line_id)
    assert 0 < sum(1 for r in rows if r["reminder_at"]) < len(rows)


def test_cli_reports_bad_files_without_a_traceback(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text("line_id,member_id,sku,category,purchased_at\nL1,M1,S,c,not-a-date\n")
    result = CliRunner().invoke(lifetimes, ["backtest", "--purchases", str(path), "--cutoff", "2026-01-01"])
    assert result.exit_code == 1
    assert "line 2: purchased_at 'not-a-date'" in result.output
