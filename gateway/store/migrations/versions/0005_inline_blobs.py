"""Blobs in the database, and what the NSW is owed for each inbound message.

``blobs`` holds raw messages, receipts, payloads and time-stamp tokens up to the store's
inline limit, so they commit in the same transaction (and the same fsync) as the rows that
name them; larger ones stay files under ``<state_dir>/blobs``, which is also where blobs
written before this revision remain (the store reads both).

``messages.nsw_delivery`` is, for an inbound message, the inbox hand-off (documents by
digest and the metadata the NSW gets): the message commits as ``received`` with it, the inbox
files are written after the commit, and a restart redelivers any message still ``received``.

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("nsw_delivery", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("nsw_delivery")
    op.drop_table("blobs")
