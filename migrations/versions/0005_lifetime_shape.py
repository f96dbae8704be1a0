"""lifetime estimates keep the fitted Weibull shape, scale and lapse share, so the UI can draw the curve

Revision ID: 0005_lifetime_shape
Revises: 0004_import_provenance
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_lifetime_shape"
down_revision = "0004_import_provenance"
branch_labels = None
depends_on = None

COLUMNS = ("shape", "scale_days", "lapse_fraction")


def upgrade() -> None:
    with op.batch_alter_table("lifetime_estimates", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lifetime_estimates", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
