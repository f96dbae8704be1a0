"""import runs, their bad rows, and per-store API tokens

Revision ID: 0002_import_runs
Revises: 0002_callback_queue
Create Date: 2026-11-23 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_import_runs"
# Chained after the callback-queue revision so the tree keeps a single head.
down_revision = "0002_callback_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("members", "products", "purchases", name="importkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("encoding", sa.String(length=20), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running", "succeeded", "partial", "failed", name="importstatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_import_runs_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.create_index("ix_import_runs_started", ["started_at"], unique=False)

    op.create_table(
        "import_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=60), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["import_runs.id"],
            name=op.f("fk_import_errors_run_id_import_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_errors")),
    )
    with op.batch_alter_table("import_errors", schema=None) as batch_op:
        batch_op.create_index("ix_import_errors_run", ["run_id", "line"], unique=False)

    op.create_table(
        "store_api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_api_tokens_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_store_api_tokens_token_hash")),
    )
    with op.batch_alter_table("store_api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_store_api_tokens_store_id"), ["store_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("store_api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_api_tokens_store_id"))
    op.drop_table("store_api_tokens")
    with op.batch_alter_table("import_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_import_errors_run")
    op.drop_table("import_errors")
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_import_runs_started")
    op.drop_table("import_runs")
