"""Appending to the evidence chain, inside the caller's transaction.

An entry is written in the same database transaction as the state change it witnesses
(message recorded, receipt accepted): either both exist or neither does, so the log can
never claim a message the store lost, nor miss one it kept.

Gap-free sequence with concurrent writers: the next ``seq`` is read inside the transaction
and ``seq`` is the primary key. On SQLite the transaction already holds the database write
lock when the hooks run (they run after the witnessed INSERT/UPDATE is flushed), so no
other writer can interleave. On PostgreSQL two nodes may read the same head; the loser's
INSERT violates the key, its SAVEPOINT is rolled back and it retries on the new head.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.evidence.canonical import FIELDS, GENESIS_HASH, canonical_json, entry_hash, format_time
from gateway.store.models import IN, OUT, EvidenceEntry

MESSAGE_SENT = "message-sent"           # outbound: the signed bytes committed for (re)sending
RECEIPT_RECEIVED = "receipt-received"   # outbound: the partner's verified receipt
MESSAGE_RECEIVED = "message-received"   # inbound: the raw message and the receipt we answered
PURGE = "purge"                         # retention removed these blobs on purpose
TIMESTAMP = "timestamp"                 # an RFC 3161 token over the then head of the chain
MESSAGE_KINDS = (MESSAGE_SENT, MESSAGE_RECEIVED)

MAX_ATTEMPTS = 20


def entry_fields(entry: EvidenceEntry) -> dict[str, Any]:
    """The hashed fields of a stored entry, exactly as the canonical serialization wants them."""
    values = {name: getattr(entry, name) for name in FIELDS}
    values["time"] = format_time(entry.time)
    return values


def entry_json(entry: EvidenceEntry) -> dict[str, Any]:
    """An entry as exported: the hashed fields plus ``entry_hash``."""
    return {**entry_fields(entry), "entry_hash": entry.entry_hash}


def entry_data(entry: EvidenceEntry) -> dict[str, Any]:
    """The decoded ``data`` object of an entry (empty when it has none)."""
    return json.loads(entry.data) if entry.data else {}


_TABLE = EvidenceEntry.__table__
_HEAD = select(_TABLE.c.seq, _TABLE.c.entry_hash).order_by(_TABLE.c.seq.desc()).limit(1)
_INSERT = insert(_TABLE)


_HEAD_KEY = "evidence_head"


def _head(session: Session) -> tuple[int, str]:
    cached = session.info.get(_HEAD_KEY)
    if cached is not None:
        return cached
    row = session.connection().execute(_HEAD).first()
    return (row.seq, row.entry_hash) if row else (0, GENESIS_HASH)


@dataclass(frozen=True)
class ChainEntry:
    """An entry just appended, as written (the ORM's EvidenceEntry is for reading the log:
    instrumenting one per message costs more than computing its hash)."""
    seq: int
    time: dt.datetime
    kind: str
    direction: str | None
    message_id: str | None
    partner_id: str | None
    message_digest: str | None
    receipt_digest: str | None
    data: str | None
    prev_hash: str
    entry_hash: str = ""


def append_entry(session: Session, kind: str, *, direction: str | None = None, message_id: str | None = None,
                 partner_id: str | None = None, message_digest: str | None = None,
                 receipt_digest: str | None = None, data: Mapping[str, Any] | None = None,
                 time: dt.datetime | None = None) -> ChainEntry:
    """Append one entry in ``session``'s transaction and return it (its ``seq`` and hash set)."""
    time = time or dt.datetime.now(dt.timezone.utc)
    sqlite = session.get_bind().dialect.name == "sqlite"
    encoded = canonical_json(dict(data)) if data is not None else None
    for _ in range(MAX_ATTEMPTS):
        last_seq, prev = _head(session)
        entry = ChainEntry(seq=last_seq + 1, time=time, kind=kind, direction=direction, message_id=message_id,
                           partner_id=partner_id, message_digest=message_digest, receipt_digest=receipt_digest,
                           data=encoded, prev_hash=prev)
        entry = replace(entry, entry_hash=entry_hash(entry_fields(entry)))
        # A Core INSERT of the values: no ORM unit of work (and no autoflush) per entry.
        row = {name: getattr(entry, name) for name in (*FIELDS, "entry_hash")}
        if sqlite:                  # we hold the write lock: the head cannot move under us
            session.connection().execute(_INSERT, row)
            # ... until the transaction ends, so the next append of a group commit need not
            # read it again (session.info lives as long as this session's transaction).
            session.info[_HEAD_KEY] = (entry.seq, entry.entry_hash)
            return entry
        try:
            with session.begin_nested():
                session.connection().execute(_INSERT, row)
            return entry
        except IntegrityError:      # another node appended first: retry on the new head
            continue
    raise RuntimeError(f"could not append to the evidence log after {MAX_ATTEMPTS} attempts (contention)")


def append_standalone(sessions: Callable[[], Any], kind: str, **fields: Any) -> ChainEntry:
    """Append an entry that witnesses no other row (purge, time-stamp) in a transaction of its own.

    Here the head is read before this transaction writes anything, so on SQLite too a
    concurrent writer may take the same ``seq``; the whole transaction is then retried.
    """
    for _ in range(MAX_ATTEMPTS):
        try:
            with sessions.begin() as s:
                return append_entry(s, kind, **fields)
        except IntegrityError:
            continue
    raise RuntimeError(f"could not append to the evidence log after {MAX_ATTEMPTS} attempts (contention)")


# -- hooks called by MessageStore in the transaction of the change they witness ---------------
def witness_outbound(session: Session, message_id: str, partner_id: str, raw_digest: str) -> ChainEntry:
    """The exact signed bytes of an outbound message were recorded (they are what every retry sends)."""
    return append_entry(session, MESSAGE_SENT, direction=OUT, message_id=message_id,
                        partner_id=partner_id, message_digest=raw_digest)


def witness_receipt(session: Session, message_id: str, partner_id: str, raw_digest: str | None,
                    receipt_digest: str) -> ChainEntry:
    """The partner's signed receipt for an outbound message was verified and accepted."""
    return append_entry(session, RECEIPT_RECEIVED, direction=OUT, message_id=message_id,
                        partner_id=partner_id, message_digest=raw_digest, receipt_digest=receipt_digest)


def witness_inbound(session: Session, message_id: str, partner_id: str, raw_digest: str,
                    receipt_digest: str | None) -> ChainEntry:
    """An inbound message was recorded, with the signed receipt we answered (if any)."""
    return append_entry(session, MESSAGE_RECEIVED, direction=IN, message_id=message_id,
                        partner_id=partner_id, message_digest=raw_digest, receipt_digest=receipt_digest)
