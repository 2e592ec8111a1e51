"""Initial schema: messages, events, payloads, receipts.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("partner_id", sa.String(128), nullable=False),
        sa.Column("document_type", sa.String(128)),
        sa.Column("pmode_id", sa.String(255)),
        sa.Column("nsw_reference", sa.String(255)),
        sa.Column("conversation_id", sa.String(255)),
        sa.Column("ref_to_message_id", sa.String(255)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("retry_since", sa.DateTime(timezone=True)),
        sa.Column("retry_base", sa.Integer, nullable=False, server_default="0"),
        sa.Column("content_type", sa.Text),
        sa.Column("raw_digest", sa.String(64)),
        sa.Column("signed_references", sa.JSON),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("direction", "partner_id", "message_id", name="uq_messages_dir_partner_msgid"),
    )
    op.create_index("ix_messages_due", "messages", ["direction", "status", "next_attempt_at"])
    op.create_index("ix_messages_ref", "messages", ["nsw_reference"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_pk", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_events_message_pk", "events", ["message_pk"])
    op.create_table(
        "payloads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_pk", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("content_id", sa.String(255), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_payloads_message_pk", "payloads", ["message_pk"])
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_pk", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("receipt_message_id", sa.String(255)),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
    )
    op.create_index("ix_receipts_message_pk", "receipts", ["message_pk"])


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_table("payloads")
    op.drop_table("events")
    op.drop_table("messages")
