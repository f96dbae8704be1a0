"""tracked-link clicks, offer code pools and interest advice

Revision ID: 0006_links_codes_advice
Revises: 0005_lifetime_shape
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_links_codes_advice"
down_revision = "0005_lifetime_shape"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("clicked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_link_clicks_member_id_members")),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_link_clicks_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_clicks")),
    )
    op.create_index("ix_link_clicks_message", "link_clicks", ["message_id", "clicked_at"], unique=False)
    op.create_index(op.f("ix_link_clicks_member_id"), "link_clicks", ["member_id"], unique=False)

    op.create_table(
        "code_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_pools")),
        sa.UniqueConstraint("name", name=op.f("uq_code_pools_name")),
    )
    op.create_table(
        "offer_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("assigned_member_id", sa.Integer(), nullable=True),
        sa.Column("assigned_message_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_member_id"], ["members.id"], name=op.f("fk_offer_codes_assigned_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["assigned_message_id"], ["messages.id"], name=op.f("fk_offer_codes_assigned_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["code_pools.id"], name=op.f("fk_offer_codes_pool_id_code_pools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_codes")),
        sa.UniqueConstraint("assigned_message_id", name=op.f("uq_offer_codes_assigned_message_id")),
        sa.UniqueConstraint("pool_id", "code", name="uq_offer_codes_pool_code"),
    )
    op.create_index(
        "ix_offer_codes_pool_message", "offer_codes", ["pool_id", "assigned_message_id"], unique=False
    )

    op.create_table(
        "interest_advice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interest", sa.String(length=80), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interest_advice")),
        sa.UniqueConstraint("interest", "locale", name="uq_interest_advice_interest_locale"),
    )


def downgrade() -> None:
    op.drop_table("interest_advice")
    op.drop_index("ix_offer_codes_pool_message", table_name="offer_codes")
    op.drop_table("offer_codes")
    op.drop_table("code_pools")
    op.drop_index(op.f("ix_link_clicks_member_id"), table_name="link_clicks")
    op.drop_index("ix_link_clicks_message", table_name="link_clicks")
    op.drop_table("link_clicks")
