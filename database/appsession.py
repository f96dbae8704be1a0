"""Wiring the database into a Flask app: one engine per app, a session per request or job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from database.engine import make_engine, make_sessionmaker

_KEY = "huifang.db"


def init_app(app: Flask, url: str, pool_size: int | None = None) -> None:
    """Create the engine (lazily connecting) and close the request session on teardown."""
    engine = make_engine(url, pool_size=pool_size)
    app.extensions[_KEY] = (
        engine,
        make_sessionmaker(engine),
        engine.execution_options(isolation_level="AUTOCOMMIT"),
    )
    app.teardown_appcontext(_close_session)


def engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions[_KEY][0]


def autocommit_engine(app: Flask | None = None) -> Engine:
    """The same pool, each statement its own transaction: for hot paths that write in one statement.

    A single statement is atomic on its own and is durable when it returns, so an explicit
    BEGIN and COMMIT would only add two round trips.
    """
    return (app or current_app).extensions[_KEY][2]


def sessionmaker_for(app: Flask | None = None) -> sessionmaker[Session]:
    return (app or current_app).extensions[_KEY][1]


def db_session() -> Session:
    """The session of the current request (or app context), created on first use."""
    if "db_session" not in g:
        g.db_session = sessionmaker_for()()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


@contextmanager
def session_scope(app: Flask | None = None) -> Iterator[Session]:
    """A session for a job or command: committed on success, rolled back on error, always closed."""
    session = sessionmaker_for(app)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
