"""Bench: the product-lifetime model at chain scale (issue 4).

Generates synthetic purchase lines in numpy (≈1M members, ≈2k products in ≈100 categories, Weibull
lifetimes, lapsing members), then times interval extraction + fitting on 10M lines (target ≤ 60 s),
and ``backtest`` / ``predict`` on a 1M-line CSV (target ≤ 2 min and ≤ 1 GB RSS each).

Usage: python bench/lifetime.py [--scale 1.0] [--skip-files]   (--scale 0.05 for a quick run)
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from membership.lifetime_intervals import fit_catalogue
from membership.lifetime_model import ModelConfig

EPOCH = dt.datetime(2024, 1, 1)
WINDOW_DAYS = 730.0


def synthetic(lines: int, members: int, products: int, categories: int, seed: int = 7) -> dict:
    """Purchase lines as arrays: member, product, category, day (float), plus the truth per product."""
    rng = np.random.default_rng(seed)
    cat_median = np.exp(rng.uniform(np.log(14), np.log(730), categories))
    product_category = rng.integers(0, categories, products)
    median = cat_median[product_category] * np.exp(rng.normal(0, 0.2, products))
    shape = rng.uniform(1.3, 3.0, products)
    scale = median / np.log(2) ** (1 / shape)
    popularity = 1 / np.arange(1, products + 1) ** 1.1  # a long tail of rarely bought products
    popularity /= popularity.sum()
    expected_cycles = np.clip(WINDOW_DAYS / median, 1, 8) * 0.5
    n_pairs = int(lines / (popularity @ expected_cycles))
    pair_product = rng.choice(products, n_pairs, p=popularity)
    pair_member = rng.integers(0, members, n_pairs)
    t = rng.uniform(0, np.minimum(median[pair_product], 365), n_pairs)
    out_m, out_p, out_t, out_pair = [], [], [], []
    active = np.arange(n_pairs)
    while len(active):
        out_pair.append(active)
        out_m.append(pair_member[active])
        out_p.append(pair_product[active])
        out_t.append(t[active])
        p = pair_product[active]
        t[active] += np.maximum(1.0, scale[p] * rng.weibull(1.0, len(active)) ** (1 / shape[p]))
        keep = (t[active] < WINDOW_DAYS) & (rng.random(len(active)) < 0.88)
        active = active[keep]
    # The line count per pair is only known afterwards: keep whole pairs up to the requested size.
    pair = np.concatenate(out_pair)
    keep = pair < np.quantile(pair, min(1.0, lines / len(pair)))
    product = np.concatenate(out_p)[keep]
    return {
        "member": np.concatenate(out_m)[keep],
        "product": product,
        "category": product_category[product],
        "day": np.concatenate(out_t)[keep],
        "cat_median": cat_median,
        "product_category": product_category,
        "median": median,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_fit(data: dict) -> None:
    n_products = len(data["median"])
    product_prior = np.round(data["cat_median"][data["product_category"]])
    started = time.perf_counter()
    fit = fit_catalogue(
        data["member"],
        data["product"],
        data["category"],
        data["day"],
        WINDOW_DAYS,
        product_prior,
        np.round(data["cat_median"]),
        ModelConfig(),
    )
    seconds = time.perf_counter() - started
    groups = fit.group_of_product
    learned = fit.fits.quantile(0.5)[groups]
    rel = np.abs(learned / data["median"] - 1)
    sold = np.bincount(data["product"], minlength=n_products) >= 200
    borrowed = int((groups >= n_products).sum())
    print(f"  extraction + fit: {seconds:.1f} s for {len(data['day']):,} lines (target ≤ 60 s)")
    print(
        f"  {n_products} products ({borrowed} borrowed their category's fit); median |error| vs truth "
        f"{np.median(rel[sold]):.1%} over {int(sold.sum())} products with ≥ 200 lines"
    )


def write_csv(data: dict, path: Path, n: int) -> None:
    """The purchases import format: line_id,member_id,sku,category,purchased_at,quantity."""
    days = data["day"][:n]
    stamps = np.datetime_as_string(
        np.datetime64(EPOCH, "s") + (days * 86400).astype("timedelta64[s]"), unit="s"
    )
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["line_id", "member_id", "sku", "category", "purchased_at", "quantity"])
        member, product, category = data["member"][:n], data["product"][:n], data["category"][:n]
        for k in range(n):
            writer.writerow([f"L{k}", f"M{member[k]}", f"P{product[k]}", f"C{category[k]}", stamps[k], 1])


def _run_command(kind: str, path: str, queue) -> None:
    """Run backtest or predict in a fresh process, so its peak RSS is its own."""
    from membership import lifetime_files

    started = time.perf_counter()
    cutoff = EPOCH + dt.timedelta(days=WINDOW_DAYS - 180)
    if kind == "backtest":
        result = lifetime_files.backtest(path, cutoff, horizon_days=180)
        summary = lifetime_files.format_backtest(result)
    else:
        out = Path(path).with_suffix(".due.csv")
        written = lifetime_files.predict(path, cutoff, out)
        summary = f"  wrote {written:,} rows"
    queue.put((time.perf_counter() - started, _own_peak_rss_mb(), summary))


def _own_peak_rss_mb() -> float:
    """VmHWM of this process image: getrusage's maxrss survives exec, so a spawned child would report
    the peak of the (much larger) parent it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def bench_files(data: dict, lines: int) -> None:
    with tempfile.TemporaryDirectory(prefix="huifang-lifetime-") as tmp:
        path = Path(tmp) / "purchases.csv"
        # A store's export: every line of some of the members, over the whole window, in time order.
        # (The generated arrays are in repurchase-round order, so their first lines are all early ones.)
        cut = np.partition(data["member"], min(lines, len(data["member"])) - 1)[
            min(lines, len(data["member"])) - 1
        ]
        rows = np.flatnonzero(data["member"] <= cut)
        order = rows[np.argsort(data["day"][rows], kind="stable")][:lines]
        subset = {k: (v[order] if len(v) == len(data["day"]) else v) for k, v in data.items()}
        started = time.perf_counter()
        write_csv(subset, path, lines)
        print(
            f"  wrote {lines:,}-line CSV ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        ctx = mp.get_context("spawn")
        for kind in ("backtest", "predict"):
            queue = ctx.Queue()
            proc = ctx.Process(target=_run_command, args=(kind, str(path), queue))
            proc.start()
            seconds, rss, summary = queue.get()
            proc.join()
            print(f"  {kind}: {seconds:.1f} s, peak RSS {rss:.0f} MB (target ≤ 120 s, ≤ 1024 MB)")
            print(summary)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 10M lines / 1M members")
    parser.add_argument("--skip-files", action="store_true", help="only the in-memory fit")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also time the nightly job's path: fit_lifetimes() reading the purchases from PostgreSQL",
    )
    args = parser.parse_args()
    lines, members = int(10_000_000 * args.scale), int(1_000_000 * args.scale)
    started = time.perf_counter()
    data = synthetic(lines, max(members, 100), products=2000, categories=100)
    print(
        f"generated {len(data['day']):,} lines, {members:,} members in {time.perf_counter() - started:.1f} s"
    )
    bench_fit(data)
    print(f"  peak RSS so far {peak_rss_mb():.0f} MB")
    if not args.skip_files:
        file_lines = min(len(data["day"]) // 2, int(1_000_000 * max(args.scale, 0.1)))
        bench_files(data, file_lines)
    if args.postgres:
        bench_database(lines, members)


def bench_database(lines: int, members: int) -> None:
    """The nightly refit end to end: stream the purchases out of PostgreSQL, fit, upsert the estimates."""
    import datetime as dt

    from bench._data import load, start_postgres
    from database.engine import make_engine, make_sessionmaker
    from membership.lifetime_fit import fit_lifetimes

    server, url = start_postgres()
    try:
        now = dt.datetime(2026, 11, 23, 12, 0)
        print(f"loading {members:,} members and {lines:,} purchases into PostgreSQL …", flush=True)
        load(url, members, lines, now)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            report = fit_lifetimes(session, now)
            session.commit()
        print(
            f"  fit_lifetimes from PostgreSQL: {report.lines:,} lines, {report.products} products in "
            f"{report.seconds:.1f} s (target ≤ 60 s); peak RSS {peak_rss_mb():.0f} MB"
        )
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
