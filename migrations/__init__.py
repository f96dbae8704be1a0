"""Alembic migrations, run programmatically: ``upgrade(engine)`` is what `huifang db upgrade` calls."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

HERE = Path(__file__).parent


def load_metadata() -> MetaData:
    """Import every model module so the metadata is complete, and return it."""
    import accounts.audit
    import accounts.staff  # noqa: F401
    import campaigns.advice
    import campaigns.campaign
    import campaigns.dashboard_snapshot
    import campaigns.inbound
    import campaigns.link_clicks
    import campaigns.message
    import campaigns.offer_codes  # noqa: F401
    import membership.catalog
    import membership.importing.runs
    import membership.importing.tokens
    import membership.lifetime
    import membership.member
    import membership.purchase
    import membership.store  # noqa: F401
    import service.task  # noqa: F401
    from database.base import Base

    return Base.metadata


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at this package; with an engine, env.py uses its connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision``."""
    command.upgrade(alembic_config(engine), revision)
