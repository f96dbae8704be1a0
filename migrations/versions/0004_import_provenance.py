"""members and purchases remember the import run that last changed them

Revision ID: 0004_import_provenance
Revises: 0003_audit_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_import_provenance"
down_revision = "0003_audit_events"
branch_labels = None
depends_on = None

TABLES = ("members", "purchases")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("last_import_run_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                op.f(f"fk_{table}_last_import_run_id_import_runs"),
                "import_runs",
                ["last_import_run_id"],
                ["id"],
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"fk_{table}_last_import_run_id_import_runs"), type_="foreignkey")
            batch_op.drop_column("last_import_run_id")
