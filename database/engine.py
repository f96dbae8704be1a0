"""Engine and session factories; nothing connects until first use."""

from __future__ import annotations

import os
import weakref

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def make_engine(url: str, *, pool_size: int | None = None, **kwargs) -> Engine:
    """Create an engine tuned per dialect (SQLite: WAL, busy timeout, FKs on).

    ``pool_size`` is how many PostgreSQL connections the process keeps; a web process should keep
    as many as it serves requests at once.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # No ping per checkout (a round trip on every request: a tenth of the webhook's throughput).
        # After a database restart the first statement on a dead connection fails, SQLAlchemy then
        # discards the whole pool, and the caller's retry (a 5xx to Twilio, a job retry) goes through.
        # Connections beyond pool_size are closed when returned: below the request concurrency each
        # burst opened and closed backends (1 per 70 webhooks with 5; throughput fell by 10-20%).
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
        engine = create_engine(url, pool_recycle=3600, **kwargs)
    _engines.add(engine)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the web process read while the worker writes; busy_timeout queues writers.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so views can render after committing."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def _dispose_after_fork() -> None:
    # RQ forks a work horse per job: pooled connections must not be shared across processes.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)
