"""A/B bench for imports: variants of module settings, alternated on one PostgreSQL server.

On a shared 2-core VM the same code measures 20% apart from one half hour to the next, so one run
of ``bench/import.py`` per variant decides nothing. This script generates the bench files once,
then imports the chosen kind once per variant per round, in alternating order, truncating the
table and checkpointing before each run, and prints the median rows/s and the PostgreSQL and
Python CPU of each variant.

A variant is ``name:module.ATTR=value;module.ATTR=value`` (values are Python literals); the first
is usually the unpatched code, e.g.:

    python bench/import_ab.py --kind purchases --rounds 4 \\
        "now:" "full-batches:membership.importing.bulk.FIRST_BATCH_ROWS=100000"
"""

from __future__ import annotations

import argparse
import ast
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import psycopg

from bench._data import start_postgres
from bench.import_files import write_members, write_products, write_purchases
from database.engine import make_engine, make_sessionmaker
from membership.importing.service import import_file

_STORE = (
    "INSERT INTO stores (code, name, timezone, locale, region, quiet_start, quiet_end, opens_at, closes_at) "
    "VALUES ('S1', 'Bench store', 'Asia/Shanghai', 'zh-CN', 'CN', '21:00', '08:00', '09:00', '21:00')"
)


def parse_variant(spec: str) -> tuple[str, list[tuple[object, str, object]]]:
    """``name:module.ATTR=value;…`` as (name, [(module, attribute, value), …])."""
    name, _, assignments = spec.partition(":")
    patches = []
    for assignment in filter(None, assignments.split(";")):
        target, _, value = assignment.partition("=")
        module, _, attribute = target.strip().rpartition(".")
        patches.append((importlib.import_module(module), attribute, ast.literal_eval(value.strip())))
    return name, patches


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on the machine (the bench's own server)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if "postgres" in (proc.info["name"] or ""):
            try:
                total += sum(proc.cpu_times()[:4])
            except psutil.Error:
                continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--kind", choices=("members", "purchases"), default="purchases")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    args = parser.parse_args()
    variants = [parse_variant(spec) for spec in args.variants]

    workdir = Path(tempfile.mkdtemp(prefix="huifang-import-ab-"))
    members, products, purchases = (
        workdir / "members.csv",
        workdir / "products.csv",
        workdir / "purchases.csv",
    )
    write_members(members, args.members)
    write_products(products)
    write_purchases(purchases, args.purchases, args.members)
    path, rows = (members, args.members) if args.kind == "members" else (purchases, args.purchases)

    server, url = start_postgres()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        engine = make_engine(url)
        session = make_sessionmaker(engine)()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(_STORE)
        import_file(session, "products", products, store_code="S1")
        if args.kind == "purchases":
            import_file(session, "members", members, store_code="S1")
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in variants}
        for round_ in range(args.rounds):
            for name, patches in variants if round_ % 2 == 0 else variants[::-1]:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"TRUNCATE {args.kind} CASCADE")
                    conn.execute("CHECKPOINT")
                saved = [(module, attribute, getattr(module, attribute)) for module, attribute, _ in patches]
                for module, attribute, value in patches:
                    setattr(module, attribute, value)
                try:
                    pg, cpu, started = postgres_cpu(), time.process_time(), time.perf_counter()
                    run = import_file(session, args.kind, path, store_code="S1")
                    seconds = time.perf_counter() - started
                    figures = (rows / seconds, postgres_cpu() - pg, time.process_time() - cpu)
                finally:
                    for module, attribute, value in saved:
                        setattr(module, attribute, value)
                if run.inserted != rows:
                    raise SystemExit(f"{name}: inserted {run.inserted} of {rows} rows ({run.status.value})")
                results[name].append(figures)
                print(
                    f"round {round_} {name:>16}: {figures[0]:9,.0f} rows/s, "
                    f"PostgreSQL CPU {figures[1]:.2f} s, Python CPU {figures[2]:.2f} s",
                    flush=True,
                )
        for name, runs in results.items():
            print(
                f"{name:>16}: median {statistics.median(r[0] for r in runs):9,.0f} rows/s "
                f"(runs: {', '.join(f'{r[0]:,.0f}' for r in runs)}); median CPU: PostgreSQL "
                f"{statistics.median(r[1] for r in runs):.2f} s, Python {statistics.median(r[2] for r in runs):.2f} s"
            )
        session.close()
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":  # the members path starts validation processes, which import this module
    main()
