"""Database tables: messages, their events, stored blobs (payloads, raw messages, receipts).

State lives here, not in memory, so a daemon killed at any instant restarts where it was.
The schema itself is created by the Alembic migration in ``migrations/``; these models are
the ORM view of it and must match it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite drops the zone; PostgreSQL keeps it)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
            value = value.astimezone(dt.timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


# Outbound: queued -> sending -> (awaiting-receipt -> sending ...) -> delivered | failed | cancelled
# Inbound: received (committed, receipt sent) -> delivered (in the NSW inbox) | rejected
OUT, IN = "out", "in"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("direction", "partner_id", "message_id", name="uq_messages_dir_partner_msgid"),
        Index("ix_messages_due", "direction", "status", "next_attempt_at"),
        Index("ix_messages_ref", "nsw_reference"),
        Index("ix_messages_message_id", "message_id"),     # migration 0004
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(3))
    partner_id: Mapped[str] = mapped_column(String(128))
    document_type: Mapped[str | None] = mapped_column(String(128))
    pmode_id: Mapped[str | None] = mapped_column(String(255))
    nsw_reference: Mapped[str | None] = mapped_column(String(255))
    conversation_id: Mapped[str | None] = mapped_column(String(255))
    ref_to_message_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The current retry budget started at retry_since with retry_base attempts already made;
    # an operator's `swgw messages retry` opens a new budget without rewriting history.
    retry_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    retry_base: Mapped[int] = mapped_column(Integer, default=0)
    content_type: Mapped[str | None] = mapped_column(Text)      # MIME Content-Type of the raw message
    raw_digest: Mapped[str | None] = mapped_column(String(64))  # sha256 of the raw signed message (blob)
    signed_references: Mapped[dict | None] = mapped_column(JSON)  # uri -> [digest method, value]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Inbound: what the NSW inbox is owed (documents by digest, metadata); see migration 0005.
    nsw_delivery: Mapped[dict | None] = mapped_column(JSON)

    events: Mapped[list["Event"]] = relationship(back_populates="message", order_by="Event.id")
    payloads: Mapped[list["Payload"]] = relationship(back_populates="message", order_by="Payload.id")
    receipts: Mapped[list["ReceiptRecord"]] = relationship(back_populates="message", order_by="ReceiptRecord.id")

    @property
    def receipt(self) -> "ReceiptRecord | None":
        """The receipt that settled this message (sent by us for inbound, verified by us for outbound)."""
        return self.receipts[0] if self.receipts else None


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    step: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="events")


class Payload(Base):
    """A business document carried by a message; the bytes live in the blob store by digest."""
    __tablename__ = "payloads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    content_id: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)

    message: Mapped[Message] = relationship(back_populates="payloads")


class ReceiptRecord(Base):
    """A signed ebMS receipt: the one we sent for an inbound message, or the partner's for an outbound one.

    The bytes are in the blob store by digest; together with the message's raw bytes they are
    the non-repudiation evidence.
    """
    __tablename__ = "receipts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    receipt_message_id: Mapped[str | None] = mapped_column(String(255))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    digest: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="receipts")


class EvidenceEntry(Base):
    """One link of the append-only, hash-chained non-repudiation log (see ``gateway/evidence``).

    ``seq`` is the primary key and gap-free: a writer computes ``max(seq) + 1`` inside the
    transaction of the state change it witnesses, and the key's uniqueness turns a race
    between nodes into a retry instead of a fork. ``entry_hash`` is SHA-256 over the
    canonical serialization of every other column (``gateway.evidence.canonical``).
    """
    __tablename__ = "evidence_log"
    __table_args__ = (Index("ix_evidence_log_message_id", "message_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str | None] = mapped_column(String(3))
    message_id: Mapped[str | None] = mapped_column(String(255))
    partner_id: Mapped[str | None] = mapped_column(String(128))
    message_digest: Mapped[str | None] = mapped_column(String(64))
    receipt_digest: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[str | None] = mapped_column(Text)     # canonical JSON (purge list, time-stamp token...)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class BlobRow(Base):
    """A blob small enough to live in the database (``gateway/store/blobs.py``), by SHA-256."""
    __tablename__ = "blobs"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
