"""Evidence log: the append-only, hash-chained non-repudiation record.

Messages stored before this revision get one entry each (and one per outbound receipt),
marked ``backfilled``, so that `swgw evidence verify` can demand an entry for every row.

Revision ID: 0002
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

from gateway.evidence.canonical import GENESIS_HASH, canonical_json, entry_hash, format_time

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    log = op.create_table(
        "evidence_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(3)),
        sa.Column("message_id", sa.String(255)),
        sa.Column("partner_id", sa.String(128)),
        sa.Column("message_digest", sa.String(64)),
        sa.Column("receipt_digest", sa.String(64)),
        sa.Column("data", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("entry_hash", name="uq_evidence_log_entry_hash"),
    )
    op.create_index("ix_evidence_log_message_id", "evidence_log", ["message_id"])
    _backfill(log)


def _backfill(log: sa.Table) -> None:
    conn = op.get_bind()
    messages = sa.table("messages", sa.column("id"), sa.column("direction"), sa.column("partner_id"),
                        sa.column("message_id"), sa.column("raw_digest"))
    receipts = sa.table("receipts", sa.column("id"), sa.column("message_pk"), sa.column("digest"))
    now = dt.datetime.now(dt.timezone.utc)
    note = canonical_json({"backfilled": "recorded by migration 0002 for a message stored before the "
                                         "evidence log existed"})
    rows, prev = [], GENESIS_HASH
    by_message: dict[int, list[str]] = {}
    for r in conn.execute(sa.select(receipts.c.message_pk, receipts.c.digest).order_by(receipts.c.id)):
        by_message.setdefault(r.message_pk, []).append(r.digest)
    for m in conn.execute(sa.select(messages).order_by(messages.c.id)):
        if m.raw_digest is None:
            continue
        got = by_message.get(m.id, [])
        if m.direction == "out":
            specs = [("message-sent", None)] + [("receipt-received", d) for d in got]
        else:
            specs = [("message-received", got[0] if got else None)]
        for kind, receipt in specs:
            fields = {"seq": len(rows) + 1, "time": format_time(now), "kind": kind, "direction": m.direction,
                      "message_id": m.message_id, "partner_id": m.partner_id, "message_digest": m.raw_digest,
                      "receipt_digest": receipt, "data": note, "prev_hash": prev}
            prev = entry_hash(fields)
            rows.append({**fields, "time": now, "entry_hash": prev})
    if rows:
        op.bulk_insert(log, rows)


def downgrade() -> None:
    op.drop_index("ix_evidence_log_message_id", "evidence_log")
    op.drop_table("evidence_log")
