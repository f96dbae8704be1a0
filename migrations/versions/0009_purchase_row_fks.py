"""purchase lines keep member, product, store and import-run ids without foreign-key triggers (import speed)

Revision ID: 0009_purchase_row_fks
Revises: 0008_dashboard_snapshots
"""

from alembic import op

revision = "0009_purchase_row_fks"
down_revision = "0008_dashboard_snapshots"
branch_labels = None
depends_on = None

DROPPED = (
    ("fk_purchases_member_id_members", "members", "member_id"),
    ("fk_purchases_product_id_products", "products", "product_id"),
    ("fk_purchases_store_id_stores", "stores", "store_id"),
    ("fk_purchases_last_import_run_id_import_runs", "import_runs", "last_import_run_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        for name, _table, _column in DROPPED:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        for name, table, column in DROPPED:
            batch_op.create_foreign_key(name, table, [column], ["id"])
