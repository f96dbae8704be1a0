"""the dashboard's charts kept as a background-computed snapshot; GIN indexes for member interests
and member search (pg_trgm)

Revision ID: 0008_dashboard_snapshots
Revises: 0007_outbox_row_fks
"""

import logging

import sqlalchemy as sa
from alembic import op

log = logging.getLogger(__name__)
SEARCH_TEXT = "(card_number || ' ' || coalesce(phone, '') || ' ' || coalesce(email, '') || ' ' || name)"

revision = "0008_dashboard_snapshots"
down_revision = "0007_outbox_row_fks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_snapshots",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dashboard_snapshots")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_members_interests",
            "members",
            [sa.text("CAST(interests AS jsonb)")],
            postgresql_using="gin",
        )
        _search_index()


def _search_index() -> None:
    """pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner may create it; a role
    that may not still gets a working schema, and member search falls back to a scan."""
    bind = op.get_bind()
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("pg_trgm unavailable (%s): member search will scan instead of using an index", exc.orig)
        return
    savepoint.commit()
    op.execute(f"CREATE INDEX ix_members_search ON members USING gin ({SEARCH_TEXT} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_members_search")
        op.drop_index("ix_members_interests", table_name="members")
    op.drop_table("dashboard_snapshots")
