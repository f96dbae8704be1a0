"""Initial loads: a table's secondary indexes are dropped for the load and rebuilt after
(its foreign keys too: see ``foreign_keys``).

PostgreSQL's own advice for populating a database: a B-tree built once from sorted data costs a
fraction of maintaining it row by row (measured: 1M lines merged in 7.5 s without the three
secondary indexes plus 1.3 s to build them, against 20 s with them). Only a load larger than the
table gets this: rebuilding the indexes of a big table for a small file would cost more than it saves.
The unique indexes stay: the merges' ON CONFLICT needs them. Members lose their phone, e-mail,
interests and search indexes (the trigram one costs most per row) for a first load.

If a process dies between drop and rebuild, the next import of that table (``repair``) recreates
whatever is missing from the model's definitions, so the schema heals without anyone's help. A
running load holds an advisory lock (``loading``) that keeps repairs off what it dropped on purpose;
PostgreSQL drops the lock with a dead process's connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import Index, Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from membership.importing import ddl, foreign_keys
from membership.importing.runs import ImportKind

log = logging.getLogger(__name__)

MIN_ROWS = 100_000  # below this a load is quick either way
LOCK_TIMEOUT = "5s"  # never queue an import behind a long report for the drop's exclusive lock
BUILD_MEMORY = "256MB"  # maintenance_work_mem for the rebuild: the sort stays in memory
# No parallel workers per build: the builds already run side by side (BUILDERS), so a build's
# workers would only take CPU from the others. Measured on 2 cores, purchases: 139.8k against
# 125.8k rows/s, median of 4 alternating rounds; builds without workers won 7 of 8 paired rounds.
BUILD_PARALLEL_WORKERS = 0
# Except a GIN build (PostgreSQL 18 builds GIN in parallel), which outlasts the others: the members'
# trigram index took 2.08 s alone and 0.97 s with one worker, while the three B-trees beside it took
# 0.2 s each. It starts first and keeps one worker, which takes the core the B-trees leave.
GIN_BUILD_WORKERS = 1
BUILDERS = 3  # indexes built at once, each on its own connection (builds also wait on I/O)


def secondary_indexes(table: Table) -> list[Index]:
    """``table``'s indexes that no constraint or ON CONFLICT depends on."""
    return sorted((ix for ix in table.indexes if not ix.unique), key=lambda ix: ix.name)


def drop_for_load(session: Session, table: Table, expected_rows: int) -> list[Index]:
    """Drop the secondary indexes when ``expected_rows`` outnumber the table; returns those dropped.

    Committed at once (the lanes' sessions must see it). Gives up, keeping the indexes, when the
    table is busy for longer than LOCK_TIMEOUT.
    """
    if session.get_bind().dialect.name != "postgresql" or expected_rows < MIN_ROWS:
        return []
    rows = session.execute(
        text(f"SELECT reltuples FROM pg_class WHERE relname = '{table.name}'")
    ).scalar_one()
    if expected_rows <= max(float(rows), 0.0):
        return []
    present = _present(session, table)
    dropped = [ix for ix in secondary_indexes(table) if ix.name in present]
    if not ddl.within(session, [f'DROP INDEX IF EXISTS "{ix.name}"' for ix in dropped], LOCK_TIMEOUT):
        log.warning("%s is busy; importing with its indexes in place", table.name)
        return []
    log.info("dropped %s for a load of about %d rows", ", ".join(ix.name for ix in dropped), expected_rows)
    return dropped


def rebuild(session: Session, table: Table, indexes: list[Index] | None = None) -> list[str]:
    """Create ``indexes`` (default: every secondary index) that do not exist; returns those built.

    One that cannot be built (the trigram index without the pg_trgm extension) is logged and
    skipped: the migration that made it optional says the same.
    """
    if session.get_bind().dialect.name != "postgresql":
        return []
    present = _present(session, table)
    wanted = secondary_indexes(table) if indexes is None else indexes
    missing = [ix for ix in wanted if ix.name not in present]
    if not missing:
        return []
    session.commit()  # this session's snapshot must not hold anything the builds wait for
    engine = session.get_bind()

    def build(ix: Index) -> str | None:
        try:
            with engine.begin() as conn:
                conn.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
                conn.execute(text(f"SET LOCAL max_parallel_maintenance_workers = {_workers(ix)}"))
                ix.create(conn, checkfirst=True)
        except DBAPIError as exc:
            log.warning("could not build %s: %s", ix.name, exc.orig)
            return None
        return ix.name

    # Builds of one table's indexes share its lock, so they run at once, the longest (GIN) first.
    ordered = sorted(missing, key=lambda ix: _workers(ix) == BUILD_PARALLEL_WORKERS)
    with ThreadPoolExecutor(max_workers=BUILDERS, thread_name_prefix="index-build") as pool:
        done = {name for name in pool.map(build, ordered) if name}
    built = [ix.name for ix in missing if ix.name in done]
    log.info("built %s", ", ".join(built))
    return built


def _workers(ix: Index) -> int:
    """Parallel workers for building ``ix`` (see BUILD_PARALLEL_WORKERS, GIN_BUILD_WORKERS)."""
    using = ix.dialect_options["postgresql"].get("using")
    return GIN_BUILD_WORKERS if str(using).lower() == "gin" else BUILD_PARALLEL_WORKERS


# Advisory lock keys, one per kind of load: (a constant for Huifang's loads, the kind's number).
_LOCK_CLASS = 0x48554946
_LOCK_KEYS = {ImportKind.MEMBERS: 1, ImportKind.PURCHASES: 2, ImportKind.PRODUCTS: 3}


@contextmanager
def loading(session: Session, kind: ImportKind) -> Iterator[None]:
    """Held for the whole of a load that may drop indexes or keys (PostgreSQL).

    A shared advisory lock on a connection of its own: loads of a kind may run side by side, and
    ``repair`` leaves alone what one of them dropped on purpose. PostgreSQL releases it with the
    connection, so a load whose process died holds nothing back: the next load repairs at once.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    with session.get_bind().connect() as conn:
        conn.execute(
            text("SELECT pg_advisory_lock_shared(:c, :k)"), {"c": _LOCK_CLASS, "k": _LOCK_KEYS[kind]}
        )
        conn.commit()  # the lock belongs to the connection; its transaction need not stay open
        try:
            yield
        finally:
            try:
                conn.execute(
                    text("SELECT pg_advisory_unlock_shared(:c, :k)"),
                    {"c": _LOCK_CLASS, "k": _LOCK_KEYS[kind]},
                )
                conn.commit()
            except DBAPIError:
                conn.invalidate()  # never back to the pool still holding the lock


def repair(session: Session, kind: ImportKind, table: Table, checked: Iterable[Table] = ()) -> list[str]:
    """Rebuild the indexes of ``table`` and restore the foreign keys of ``checked`` that a dead load
    left dropped, unless a load of ``kind`` is running; returns their names."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    with session.get_bind().connect() as conn:
        keys = {"c": _LOCK_CLASS, "k": _LOCK_KEYS[kind]}
        alone = conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), keys).scalar_one()
        conn.commit()
        if not alone:
            return []
        try:
            return rebuild(session, table) + foreign_keys.restore(session, checked)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), keys)
            conn.commit()


def _present(session: Session, table: Table) -> set[str]:
    return set(
        session.scalars(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"),
            {"t": table.name},
        )
    )
