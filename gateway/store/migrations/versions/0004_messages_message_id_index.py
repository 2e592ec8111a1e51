"""Index messages.message_id: trace, business-response linking and operator commands look a
message up by MessageId alone, which the unique (direction, partner_id, message_id) key
cannot serve (it leads with direction), so SQLite scanned the whole table.

Revision ID: 0004
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_message_id", "messages", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_message_id", table_name="messages")
