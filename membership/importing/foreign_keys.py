"""Initial loads: the foreign keys checked on every inserted row are dropped with the indexes and
restored after the load.

A foreign key is a trigger that looks up and locks the referenced row once per inserted row. On a
first members load that was more than half of the insert (measured on 10,000 members and their
consent events: 193 of 347 ms in the four key triggers). Restoring a key is one set-based check of
the whole table instead, and it is done in two steps: ``ADD … NOT VALID`` (a moment's lock; from then
on every new row is checked) and ``VALIDATE`` (the scan, during which other sessions keep writing).

The keys are part of the product's guarantees (every consent event belongs to a member), so the
window is kept to the load itself. If someone else writes a row that breaks a key during that
window, VALIDATE refuses: the key stays NOT VALID (still enforced for every new row), the error is
logged, and the next load's repair tries again. A process killed mid-load is healed the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import ForeignKeyConstraint, Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint

from membership.importing import ddl

log = logging.getLogger(__name__)


def foreign_keys(tables: Iterable[Table]) -> list[ForeignKeyConstraint]:
    """The model's foreign keys on ``tables``, by name."""
    return sorted((fk for table in tables for fk in table.foreign_key_constraints), key=lambda fk: fk.name)


def drop(session: Session, tables: Iterable[Table], lock_timeout: str) -> list[ForeignKeyConstraint]:
    """Drop the foreign keys of ``tables`` and commit; returns those dropped.

    Gives up, keeping every key, when a table is busy for longer than ``lock_timeout``.
    """
    tables = list(tables)
    present = _validated(session, tables)
    dropped = [fk for fk in foreign_keys(tables) if fk.name in present]
    if not dropped:
        return []
    statements = [f'ALTER TABLE "{fk.table.name}" DROP CONSTRAINT IF EXISTS "{fk.name}"' for fk in dropped]
    if not ddl.within(session, statements, lock_timeout):
        log.warning("%s busy; importing with the foreign keys in place", ", ".join(t.name for t in tables))
        return []
    log.info("dropped %s for a load", ", ".join(fk.name for fk in dropped))
    return dropped


def restore(session: Session, tables: Iterable[Table]) -> list[str]:
    """Add the foreign keys of ``tables`` that are missing and validate any that are not; returns
    the names of those now valid. One whose check fails is logged and left NOT VALID."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    tables = list(tables)
    state = _validated(session, tables)
    pending = [fk for fk in foreign_keys(tables) if not state.get(fk.name, False)]
    if not pending:
        return []
    session.commit()
    dialect = session.get_bind().dialect
    valid = []
    for fk in pending:
        added = fk.name in state
        try:
            if not added:
                # No lock timeout: leaving the key off leaves the table unguarded until the next load.
                session.execute(text(f"{AddConstraint(fk).compile(dialect=dialect)} NOT VALID"))
                session.commit()
                added = True
            session.execute(text(f'ALTER TABLE "{fk.table.name}" VALIDATE CONSTRAINT "{fk.name}"'))
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            # The load's own outcome stands either way; the next load's repair tries again.
            outcome = "stays NOT VALID (still enforced for new rows)" if added else "is missing"
            log.error("%s %s: %s", fk.name, outcome, exc.orig)
            continue
        valid.append(fk.name)
    log.info("restored %s", ", ".join(valid))
    return valid


def _validated(session: Session, tables: list[Table]) -> dict[str, bool]:
    """The foreign keys on ``tables`` in the database: name → validated."""
    rows = session.execute(
        text(
            "SELECT c.conname, c.convalidated FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace "
            "AND t.relname = ANY(:tables)"
        ),
        {"tables": [table.name for table in tables]},
    )
    return {name: validated for name, validated in rows}
