"""Retention: remove the bytes of old, settled messages and say so in the chain.

The purge entry is appended *before* any file is deleted and lists every digest it
removes, so `evidence verify` can tell an expected absence from a lost file, and a crash
half-way leaves files that are merely still there. Rows (messages, events, receipts) stay:
they are small and keep the story `swgw trace` tells. A blob still used by a message that is
kept (content addressing shares identical bytes) is not deleted.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from gateway.evidence.canonical import format_time
from gateway.evidence.chain import PURGE, append_standalone, entry_data
from gateway.store.models import EvidenceEntry, Message, Payload, ReceiptRecord
from gateway.store.store import MessageStore

SETTLED = ("delivered", "failed", "rejected", "cancelled")
"""Only messages no pipeline will touch again; queued ones still need their bytes to be resent."""


@dataclass
class PurgeResult:
    cutoff: dt.datetime
    messages: list[tuple[str, str, str]] = field(default_factory=list)   # (direction, partner, message id)
    blobs: list[str] = field(default_factory=list)
    deleted_files: int = 0
    entry: EvidenceEntry | None = None


def purge(store: MessageStore, older_than_days: float, *, dry_run: bool = False,
          now: dt.datetime | None = None) -> PurgeResult:
    """Purge settled messages created before ``now - older_than_days``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    result = PurgeResult(cutoff=now - dt.timedelta(days=older_than_days))
    with store.sessions() as s:
        done = {tuple(m) for e in s.scalars(select(EvidenceEntry).where(EvidenceEntry.kind == PURGE))
                for m in entry_data(e).get("messages", [])}
        rows = s.execute(select(Message.id, Message.direction, Message.partner_id, Message.message_id,
                                Message.status, Message.created_at, Message.raw_digest)).all()
        blobs_of: dict[int, set[str]] = {m.id: {m.raw_digest} - {None} for m in rows}
        for pk, digest in s.execute(select(ReceiptRecord.message_pk, ReceiptRecord.digest)):
            blobs_of[pk].add(digest)
        for pk, digest in s.execute(select(Payload.message_pk, Payload.digest)):
            blobs_of[pk].add(digest)
    doomed, kept = set(), set()
    for m in rows:
        key = (m.direction, m.partner_id, m.message_id)
        if key in done:
            continue
        if m.status in SETTLED and m.created_at < result.cutoff:
            result.messages.append(key)
            doomed |= blobs_of[m.id]
        else:
            kept |= blobs_of[m.id]
    result.blobs = sorted(doomed - kept)
    if dry_run or not result.messages:
        return result
    result.entry = append_standalone(store.sessions, PURGE, data={
        "older_than_days": older_than_days, "cutoff": format_time(result.cutoff),
        "messages": [list(k) for k in sorted(result.messages)], "blobs": result.blobs})
    for digest in result.blobs:
        if store.blobs.delete(digest):
            result.deleted_files += 1
    return result
