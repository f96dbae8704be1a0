"""Bench: one scheduler tick on PostgreSQL with 1M members and 10M purchases (issue: Campaign engine).

Prints the time of the bare due-query (COUNT over the same SELECT) and of the tick that writes the
outbox rows, and their ratio. Usage: python bench/engine.py [--members N] [--purchases N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench._data import load, replenishment_campaign, start_postgres
from campaigns.audiences import replenishment_due
from campaigns.scheduler import tick
from database.engine import make_engine, make_sessionmaker
from membership.lifetime import store_prior_estimates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--window-days", type=int, default=14)
    args = parser.parse_args()
    now = dt.datetime(2026, 11, 23, 12, 0)
    server, url = start_postgres()
    try:
        print(f"loading {args.members:,} members and {args.purchases:,} purchases …", flush=True)
        timings = load(url, args.members, args.purchases, now)
        print(
            f"  COPY members {timings['members_copy_s']:.1f} s, purchases {timings['purchases_copy_s']:.1f} s"
        )
        engine = make_engine(url)
        session = make_sessionmaker(engine)()
        store_prior_estimates(session)
        campaign = replenishment_campaign(args.window_days)
        session.add(campaign)
        session.commit()

        due = replenishment_due(campaign, now).subquery()
        started = time.perf_counter()
        count = session.scalar(select(func.count()).select_from(due))
        bare = time.perf_counter() - started
        session.rollback()

        started = time.perf_counter()
        result = tick(session, now)
        session.commit()
        ticked = time.perf_counter() - started

        started = time.perf_counter()
        again = tick(session, now)
        session.commit()
        second = time.perf_counter() - started
        print(f"due rows (bare query): {count:,} in {bare:.2f} s")
        print(
            f"tick wrote {result.total:,} outbox rows in {ticked:.2f} s  (ratio tick/bare = {ticked / bare:.2f}×)"
        )
        print(f"second tick wrote {again.total} rows in {second:.2f} s (dedup key)")
        session.close()
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
