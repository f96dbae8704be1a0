"""Bench: CSV import into PostgreSQL (issue: Data intake).

Generates a members file (200,000 lines) and a purchases file (1,000,000 lines), imports both
through ``import_file`` and prints rows/s, the peak RSS of this process, the time of a bare
``COPY`` of the same purchases file into a plain table, and the ratio of the two.
Targets: purchases ≥ 100,000 rows/s, members ≥ 20,000 rows/s, peak RSS ≤ 300 MB.

Usage: python bench/import.py [--scale 0.1] [--keep DIR]
Uses HUIFANG_DATABASE_URL when set (an empty, migrated database), else an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

import membership.importing.runs
import membership.importing.tokens  # noqa: F401 - the import tables must be in the metadata
from bench.import_files import write_members, write_products, write_purchases
from database.engine import make_engine, make_sessionmaker
from membership.importing.service import import_file


def bare_copy(url: str, path: Path) -> float:
    """Seconds to COPY the purchases file into an unindexed table of text columns."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE bare_copy (line_id text, card_number text, sku text, purchased_at text, "
            "quantity text, amount text)"
        )
        started = time.perf_counter()
        copy_sql = "COPY bare_copy FROM STDIN WITH (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, cur.copy(copy_sql) as cp, open(path, "rb") as f:
            while block := f.read(1 << 20):
                cp.write(block)
        return time.perf_counter() - started


def timed_import(session, kind: str, path: Path) -> tuple[float, object]:
    started = time.perf_counter()
    run = import_file(session, kind, path, store_code="S1")
    return time.perf_counter() - started, run


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TreeRss:
    """Peak memory of this process and its descendants (the members validation workers), sampled.

    Summed as PSS (proportional set size): the workers are forked from one server process and
    share its pages, which a sum of RSS would count once per process. Read from smaps_rollup,
    which the kernel keeps summed: walking the full smaps took CPU from the import being measured.
    """

    def __init__(self, every: float = 0.25) -> None:
        import psutil

        self.me, self.every, self.peak = psutil.Process(), every, 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            total = 0
            for proc in [self.me, *self.me.children(recursive=True)]:
                try:
                    with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                        total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
                except (OSError, StopIteration, ValueError):  # a worker that just exited
                    continue
            self.peak = max(self.peak, total / 1024)

    def __enter__(self) -> TreeRss:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 1,000,000 purchases / 200,000 members"
    )
    parser.add_argument("--keep", type=Path, help="directory for the generated files (kept)")
    args = parser.parse_args()
    n_members, n_purchases = int(200_000 * args.scale), int(1_000_000 * args.scale)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="huifang-import-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    server = None
    url = os.environ.get("HUIFANG_DATABASE_URL")
    if not url:
        from bench._data import start_postgres

        server, url = start_postgres()
    try:
        print(f"generating {n_members:,} members and {n_purchases:,} purchases in {workdir} …", flush=True)
        members, products, purchases = (
            workdir / "members.csv",
            workdir / "products.csv",
            workdir / "purchases.csv",
        )
        write_members(members, n_members)
        write_products(products)
        write_purchases(purchases, n_purchases, n_members)
        print(
            f"  files: {purchases.stat().st_size / 1e6:.0f} MB purchases, {members.stat().st_size / 1e6:.0f} MB members"
        )
        print(f"  peak RSS after generating: {peak_rss_mb():.0f} MB")
        # The files just written are still dirty in the page cache: flush them now, not while the
        # first import is being timed (the bench's own writes are not the import's cost).
        os.sync()

        engine = make_engine(url)
        session = make_sessionmaker(engine)()
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "INSERT INTO stores (code, name, timezone, locale, region, quiet_start, quiet_end, opens_at, closes_at) "
                "VALUES ('S1', 'Bench store', 'Asia/Shanghai', 'zh-CN', 'CN', '21:00', '08:00', '09:00', '21:00') "
                "ON CONFLICT (code) DO NOTHING"
            )
        import_file(session, "products", products, store_code="S1")

        results = {}
        tree = TreeRss().__enter__()
        for kind, path, rows in (("members", members, n_members), ("purchases", purchases, n_purchases)):
            seconds, run = timed_import(session, kind, path)
            results[kind] = (seconds, rows / seconds)
            print(
                f"{kind:>9}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s "
                f"(inserted {run.inserted:,}, failed {run.failed:,}, status {run.status.value})",
                flush=True,
            )
        seconds, run = timed_import(session, "purchases", purchases)
        print(
            f"purchases again (no changes): {seconds:.2f} s = {n_purchases / seconds:,.0f} rows/s "
            f"(unchanged {run.unchanged:,})"
        )
        copy_s = bare_copy(url, purchases)
        import_s = results["purchases"][0]
        print(f"bare COPY of the purchases file into a plain table: {copy_s:.2f} s")
        print(f"import / bare COPY: {import_s / copy_s:.1f}x")
        tree.__exit__()
        rss = max(peak_rss_mb(), tree.peak)
        print(
            f"peak RSS: {peak_rss_mb():.0f} MB this process; {tree.peak:.0f} MB with its validation workers"
        )
        targets = (
            results["purchases"][1] >= 100_000,
            results["members"][1] >= 20_000,
            rss <= 300,
        )
        print(
            "targets (purchases ≥ 100k/s, members ≥ 20k/s, RSS ≤ 300 MB):",
            ["miss", "met"][all(targets)],
            targets,
        )
        session.close()
        engine.dispose()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
