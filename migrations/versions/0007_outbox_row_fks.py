"""outbox rows keep member and purchase ids without foreign-key triggers (tick speed)

Revision ID: 0007_outbox_row_fks
Revises: 0006_links_codes_advice
"""

from alembic import op

revision = "0007_outbox_row_fks"
down_revision = "0006_links_codes_advice"
branch_labels = None
depends_on = None

DROPPED = (
    ("fk_messages_member_id_members", "members", "member_id"),
    ("fk_messages_purchase_id_purchases", "purchases", "purchase_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        for name, _table, _column in DROPPED:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        for name, table, column in DROPPED:
            batch_op.create_foreign_key(name, table, [column], ["id"])
