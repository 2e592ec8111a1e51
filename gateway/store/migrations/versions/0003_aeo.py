"""AEO registry: operators recognised under mutual-recognition agreements, and the lists applied.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aeo_lists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issuing_country", sa.String(2), nullable=False),
        sa.Column("list_id", sa.String(255), nullable=False),
        sa.Column("list_type", sa.String(8), nullable=False),
        sa.Column("based_on", sa.String(255)),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(255)),
        sa.Column("operators", sa.Integer, nullable=False),
        sa.UniqueConstraint("issuing_country", "list_id", name="uq_aeo_lists_country_list"),
    )
    op.create_table(
        "aeo_operators",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issuing_country", sa.String(2), nullable=False),
        sa.Column("operator_id", sa.String(128), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("address", sa.JSON, nullable=False),
        sa.Column("certificate_type", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.Column("suspensions", sa.JSON, nullable=False),
        sa.Column("list_id", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("issuing_country", "operator_id", name="uq_aeo_operators_country_operator"),
    )
    op.create_index("ix_aeo_operators_operator_id", "aeo_operators", ["operator_id"])


def downgrade() -> None:
    op.drop_table("aeo_operators")
    op.drop_table("aeo_lists")
