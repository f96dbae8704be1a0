"""The web process keeps as many PostgreSQL connections as it serves requests at once."""

import pytest
from sqlalchemy import text

from database.appsession import autocommit_engine


def _backends_in_a_burst(engine, width: int) -> set[int]:
    """Hold ``width`` connections at once, as ``width`` concurrent requests do; their backend pids."""
    conns = [engine.connect() for _ in range(width)]
    try:
        return {conn.execute(text("SELECT pg_backend_pid()")).scalar() for conn in conns}
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.postgres
@pytest.mark.parametrize(("pool_size", "reopened"), [(6, False), (2, True)])
def test_a_burst_within_the_pool_reuses_its_connections(
    postgres_url, redis_url, tmp_path, pool_size, reopened
):
    from app import create_app

    app = create_app(
        {
            "database_url": postgres_url,
            "database_pool_size": pool_size,
            "redis_url": redis_url,
            "instance_path": tmp_path,
            "secret_key": "test-secret",
            "testing": True,
        }
    )
    engine = autocommit_engine(app)
    try:
        first = _backends_in_a_burst(engine, 6)
        second = _backends_in_a_burst(engine, 6)
    finally:
        engine.dispose()
    assert len(first) == len(second) == 6
    # Beyond the pool, connections are closed on return: the next burst starts new backends.
    assert bool(second - first) is reopened


def test_the_pool_size_setting_is_read_and_checked(tmp_path):
    from settings import SettingsError, load_settings

    env = {"HUIFANG_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(env).database_pool_size == 20
    assert load_settings({**env, "HUIFANG_DATABASE_POOL_SIZE": "64"}).database_pool_size == 64
    with pytest.raises(SettingsError, match="HUIFANG_DATABASE_POOL_SIZE"):
        load_settings({**env, "HUIFANG_DATABASE_POOL_SIZE": "0"})
