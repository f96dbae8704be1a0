"""delivery-status callbacks that overtake their message's outcome commit are parked, not dropped

Revision ID: 0011_parked_statuses
Revises: 0010_outbox_queue_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_parked_statuses"
down_revision = "0010_outbox_queue_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_statuses")),
    )
    with op.batch_alter_table("parked_statuses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_parked_statuses_open",
            ["provider_id"],
            unique=False,
            postgresql_where=sa.text("settled_at IS NULL"),
            sqlite_where=sa.text("settled_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("parked_statuses", schema=None) as batch_op:
        batch_op.drop_index("ix_parked_statuses_open")
    op.drop_table("parked_statuses")
