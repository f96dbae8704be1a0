"""Initial loads: a table's secondary indexes are dropped for the load and rebuilt after
(its foreign keys too: see ``foreign_keys``).

PostgreSQL's own advice for populating a database: a B-tree built once from sorted data costs a
fraction of maintaining it row by row (measured: 1M lines merged in 7.5 s without the three
secondary indexes plus 1.3 s to build them, against 20 s with them). Only a load larger than the
table gets this: rebuilding the indexes of a big table for a small file would cost more than it saves.
The unique indexes stay: the merges' ON CONFLICT needs them. Members lose their phone, e-mail,
interests and search indexes (the trigram one costs most per row) for a first load.

If a process dies between drop and rebuild, the next import of that table (``repair``) recreates
whatever is missing from the model's definitions, so the schema heals without anyone's help.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Index, Table, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from database.base import utcnow
from membership.importing import foreign_keys
from membership.importing.runs import ImportKind, ImportRun, ImportStatus

log = logging.getLogger(__name__)

MIN_ROWS = 100_000  # below this a load is quick either way
LOCK_TIMEOUT = "5s"  # never queue an import behind a long report for the drop's exclusive lock
BUILD_MEMORY = "256MB"  # maintenance_work_mem for the rebuild: the sort stays in memory
BUILDERS = 3  # indexes built at once, each on its own connection (builds also wait on I/O)
RUNNING_FOR = dt.timedelta(hours=6)  # a "running" run older than this died without finishing


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
    try:
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        for ix in dropped:
            session.execute(text(f'DROP INDEX IF EXISTS "{ix.name}"'))
        session.commit()
    except OperationalError:
        session.rollback()
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
                ix.create(conn, checkfirst=True)
        except DBAPIError as exc:
            log.warning("could not build %s: %s", ix.name, exc.orig)
            return None
        return ix.name

    # Builds of one table's indexes share its lock, so two run at once: one per core.
    with ThreadPoolExecutor(max_workers=BUILDERS, thread_name_prefix="index-build") as pool:
        built = [name for name in pool.map(build, missing) if name]
    log.info("built %s", ", ".join(built))
    return built


def repair(
    session: Session,
    kind: ImportKind,
    table: Table,
    current_run_id: int | None = None,
    checked: Iterable[Table] = (),
) -> list[str]:
    """Rebuild the indexes of ``table`` and restore the foreign keys of ``checked`` that a dead load
    left dropped, unless another load of ``kind`` is still running; returns their names."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    others = select(ImportRun.id).where(
        ImportRun.kind == kind,
        ImportRun.status == ImportStatus.RUNNING,
        ImportRun.started_at > utcnow() - RUNNING_FOR,
    )
    if current_run_id is not None:
        others = others.where(ImportRun.id != current_run_id)
    if session.execute(others.limit(1)).first() is not None:
        return []
    return rebuild(session, table) + foreign_keys.restore(session, checked)


def _present(session: Session, table: Table) -> set[str]:
    return set(
        session.scalars(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"),
            {"t": table.name},
        )
    )
