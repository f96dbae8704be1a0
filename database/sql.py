"""Dialect-aware SQL pieces, so domain queries read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, String, cast, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class shift_days(FunctionElement):
    """``timestamp + days`` where days may be a column expression (fractional days allowed)."""

    type = DateTime()
    inherit_cache = True


@compiles(shift_days, "postgresql")
def _shift_days_pg(element, compiler, **kw):
    ts, days = list(element.clauses)
    return f"({compiler.process(ts, **kw)} + ({compiler.process(days, **kw)}) * interval '1 day')"


@compiles(shift_days, "sqlite")
def _shift_days_sqlite(element, compiler, **kw):
    ts, days = list(element.clauses)
    # strftime keeps microseconds so string comparison with stored values stays exact.
    return (
        f"strftime('%Y-%m-%d %H:%M:%f000', {compiler.process(ts, **kw)}, "
        f"printf('%+.6f days', {compiler.process(days, **kw)}))"
    )


class days_between(FunctionElement):
    """Fractional days from ``start`` to ``end``."""

    type = Float()
    inherit_cache = True


@compiles(days_between, "postgresql")
def _days_between_pg(element, compiler, **kw):
    start, end = list(element.clauses)
    return (
        f"(extract(epoch from ({compiler.process(end, **kw)} - {compiler.process(start, **kw)})) / 86400.0)"
    )


@compiles(days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    start, end = list(element.clauses)
    return f"(julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}))"


def insert_for(session: Session, table: Any):
    """An INSERT construct with ``on_conflict_do_nothing`` for the session's dialect."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


def hash_bucket(key: ColumnElement, salt: int) -> ColumnElement:
    """A stable 0–99 bucket for an integer key and a salt; identical on both databases (holdout)."""
    big = cast(key, BigInteger) * literal(2654435761, BigInteger) + literal(salt * 40503 + 12345, BigInteger)
    return (big % literal(1000003, BigInteger)) % 100


class json_array_contains(FunctionElement):
    """True when a JSON array column holds the given string."""

    inherit_cache = True


@compiles(json_array_contains, "postgresql")
def _json_contains_pg(element, compiler, **kw):
    column, value = list(element.clauses)
    return f"(CAST({compiler.process(column, **kw)} AS JSONB) ? {compiler.process(value, **kw)})"


@compiles(json_array_contains, "sqlite")
def _json_contains_sqlite(element, compiler, **kw):
    column, value = list(element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "
        f"WHERE json_each.value = {compiler.process(value, **kw)})"
    )


class _time_text(FunctionElement):
    """A timestamp formatted as text on both databases; subclasses name the two formats."""

    type = String()
    inherit_cache = True
    pg_format = sqlite_format = ""


@compiles(_time_text, "postgresql")
def _time_text_pg(element, compiler, **kw):
    (ts,) = list(element.clauses)
    return f"to_char({compiler.process(ts, **kw)}, '{element.pg_format}')"


@compiles(_time_text, "sqlite")
def _time_text_sqlite(element, compiler, **kw):
    (ts,) = list(element.clauses)
    return f"strftime('{element.sqlite_format}', {compiler.process(ts, **kw)})"


class day_text(_time_text):
    """A timestamp's calendar day as 'YYYY-MM-DD' text (for GROUP BY day on both databases)."""

    inherit_cache = True
    pg_format, sqlite_format = "YYYY-MM-DD", "%Y-%m-%d"


class month_text(_time_text):
    """A timestamp's month as 'YYYY-MM' text."""

    inherit_cache = True
    pg_format, sqlite_format = "YYYY-MM", "%Y-%m"
