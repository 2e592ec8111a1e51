"""Walk the evidence chain and the files it names; report every broken or missing link.

What is checked, so that altering any one stored thing is noticed:

* the chain: ``seq`` gap-free from 1, each ``prev_hash`` equal to the previous ``entry_hash``,
  each ``entry_hash`` equal to the SHA-256 of the entry's canonical serialization;
* the files: every blob an entry names (raw message, receipt, time-stamp token) and every
  payload exists and still hashes to its name, unless a later purge entry removed it;
* the rows: every ``messages`` and ``receipts`` row is witnessed by an entry with the same
  digest (so altering a row, or deleting the newest entries, is noticed too);
* time-stamp tokens: signature valid and imprint equal to the hash of the entry they cover;
* checkpoints (when given a ``CheckpointPolicy``): the chain still reaches the signed heads
  written outside the database, so deleting the newest entries *with* their rows is noticed
  too (``checkpoint_verify``).

Problems are sorted by chain position; the first one is "the first broken link".
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import select

from gateway.evidence.canonical import GENESIS_HASH, entry_hash
from gateway.evidence.chain import MESSAGE_KINDS, PURGE, RECEIPT_RECEIVED, TIMESTAMP, entry_fields
from gateway.evidence.checkpoint_verify import CheckpointPolicy, check_checkpoints
from gateway.evidence.tsp import TimestampError, verify_token
from gateway.store.blobs import MISSING, OK
from gateway.store.models import EvidenceEntry, Message, Payload, ReceiptRecord
from gateway.store.store import MessageStore


@dataclass(frozen=True)
class Problem:
    seq: int | None      # chain position it belongs to (None: a row or file outside the chain)
    where: str           # the broken thing: entry and field, table row and column, or file path
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass
class VerifyReport:
    entries: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    files_checked: int = 0
    files_purged: int = 0
    timestamps: int = 0
    last_timestamp: str | None = None
    checkpoint: str | None = None        # the newest checkpoint, when checkpoints were checked
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: math.inf if p.seq is None else p.seq)


def _safe_data(entry: EvidenceEntry) -> dict:
    try:
        value = json.loads(entry.data) if entry.data else {}
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}


class _Checker:
    def __init__(self, store: MessageStore, tsa_trust: list[x509.Certificate] | None):
        self.store = store
        self.tsa_trust = tsa_trust
        self.report = VerifyReport()
        self._files: dict[str, str] = {}
        self._purged: set[str] = set()

    def problem(self, seq: int | None, where: str, detail: str) -> None:
        self.report.problems.append(Problem(seq, where, detail))

    def file_state(self, digest: str) -> str:
        if digest not in self._files:
            self._files[digest] = self.store.blobs.state(digest)
            if self._files[digest] != MISSING:
                self.report.files_checked += 1
        return self._files[digest]

    def check_file(self, digest: str, seq: int | None, what: str, purged_at: int | None) -> bool:
        """True when the blob is there and intact; a purge after ``seq`` makes absence expected."""
        state = self.file_state(digest)
        if state == OK:
            return True
        if state == MISSING and purged_at is not None and (seq is None or purged_at > seq):
            self._purged.add(digest)
            self.report.files_purged = len(self._purged)
            return False
        where = self.store.blobs.where(digest)
        if state == MISSING:
            self.problem(seq, where, f"missing ({what}); no purge entry removed it")
        else:
            self.problem(seq, where, f"content no longer hashes to {digest} ({what}): it was altered")
        return False


def verify_evidence(store: MessageStore, tsa_trust: list[x509.Certificate] | None = None,
                    checkpoints: CheckpointPolicy | None = None) -> VerifyReport:
    """Check the whole evidence log; the report lists every problem (empty when all is intact)."""
    c = _Checker(store, tsa_trust)
    with store.sessions() as s:
        entries = list(s.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq)))
        messages = s.execute(select(Message.id, Message.direction, Message.partner_id, Message.message_id,
                                    Message.raw_digest)).all()
        receipts = s.execute(select(ReceiptRecord.id, ReceiptRecord.message_pk, ReceiptRecord.digest)).all()
        payloads = s.execute(select(Payload.id, Payload.message_pk, Payload.digest)).all()
    r = c.report
    r.entries = len(entries)
    if entries:
        r.head_seq, r.head_hash = entries[-1].seq, entries[-1].entry_hash

    msg_by_key = {(m.direction, m.partner_id, m.message_id): m for m in messages}
    msg_by_pk = {m.id: m for m in messages}
    receipts_by_msg: dict[int, list] = {}
    for rec in receipts:
        receipts_by_msg.setdefault(rec.message_pk, []).append(rec)

    purged_at: dict[str, int] = {}
    for e in entries:
        if e.kind == PURGE:
            for digest in _safe_data(e).get("blobs", []):
                purged_at.setdefault(digest, e.seq)

    # 1. the chain itself
    intact: dict[int, bool] = {}
    by_seq = {e.seq: e for e in entries}
    prev, expected = GENESIS_HASH, 1
    for i, e in enumerate(entries):
        if e.seq != expected:
            c.problem(expected, f"evidence_log seq {expected}",
                      f"entry missing: the sequence jumps from {expected - 1} to {e.seq} (rows deleted)")
        recomputed = entry_hash(entry_fields(e))
        nxt = entries[i + 1] if i + 1 < len(entries) else None
        intact[e.seq] = recomputed == e.entry_hash and e.prev_hash == prev
        if e.prev_hash != prev:
            c.problem(e.seq, f"evidence_log seq {e.seq}, field prev_hash",
                      f"is {e.prev_hash[:16]}…, not the entry_hash of the entry before it ({prev[:16]}…)")
        elif recomputed != e.entry_hash:
            if nxt is not None and nxt.prev_hash == recomputed:
                c.problem(e.seq, f"evidence_log seq {e.seq}, field entry_hash",
                          f"was altered: the entry's content hashes to {recomputed[:16]}…, which the next "
                          f"entry links to, but entry_hash says {e.entry_hash[:16]}…")
            else:
                c.problem(e.seq, f"evidence_log seq {e.seq}, field {_altered_field(e, msg_by_key, receipts_by_msg)}",
                          f"the row was altered: its fields hash to {recomputed[:16]}…, "
                          f"not to its entry_hash {e.entry_hash[:16]}…")
        prev, expected = e.entry_hash, e.seq + 1

    # 2. the files each entry names, and 3. the rows each entry witnesses
    for e in entries:
        label = f"entry seq {e.seq}, {e.kind} {e.message_id or ''}".rstrip()
        if e.message_digest:
            c.check_file(e.message_digest, e.seq, f"message_digest of {label}", purged_at.get(e.message_digest))
        if e.receipt_digest:
            c.check_file(e.receipt_digest, e.seq, f"receipt_digest of {label}", purged_at.get(e.receipt_digest))
        if e.kind in MESSAGE_KINDS or e.kind == RECEIPT_RECEIVED:
            _check_witnessed_rows(c, e, intact.get(e.seq, False), msg_by_key, receipts_by_msg)
        if e.kind == TIMESTAMP:
            _check_timestamp(c, e, by_seq, purged_at)

    # rows no entry witnesses (an inserted row, or the newest entries deleted)
    witnessed_msgs = {(e.direction, e.partner_id, e.message_id) for e in entries if e.kind in MESSAGE_KINDS}
    witnessed_receipts = {(e.direction, e.partner_id, e.message_id, e.receipt_digest) for e in entries
                          if e.receipt_digest}
    for m in messages:
        if m.raw_digest is None:
            continue
        if (m.direction, m.partner_id, m.message_id) not in witnessed_msgs:
            c.problem(None, f"messages row id={m.id} ({m.direction} {m.message_id})",
                      "no evidence entry witnesses this message (newest entries deleted, or the row was "
                      "inserted or altered outside the gateway)")
        for rec in receipts_by_msg.get(m.id, []):
            if (m.direction, m.partner_id, m.message_id, rec.digest) not in witnessed_receipts:
                c.problem(None, f"receipts row id={rec.id} (receipt of {m.message_id}), column digest",
                          f"{rec.digest[:16]}… is not the receipt digest any evidence entry recorded for "
                          f"this message: the row was altered, or its entry deleted")
    all_purged = set(purged_at)
    for p in payloads:
        m = msg_by_pk.get(p.message_pk)
        c.check_file(p.digest, None, f"payload of message {m.message_id if m else p.message_pk}",
                     0 if p.digest in all_purged else None)
    if checkpoints is not None:
        result = check_checkpoints(checkpoints, [(e.seq, e.entry_hash, e.time) for e in entries])
        r.checkpoint = result.summary
        for f in result.findings:
            c.problem(f.seq, f.where, f.detail)
    return r


def _check_witnessed_rows(c: _Checker, e: EvidenceEntry, intact: bool, msg_by_key, receipts_by_msg) -> None:
    if not intact:
        return          # the entry itself is already reported; comparing rows to it proves nothing
    m = msg_by_key.get((e.direction, e.partner_id, e.message_id))
    if m is None:
        c.problem(e.seq, f"messages row for {e.direction} {e.message_id} from/to {e.partner_id}",
                  f"missing, although entry seq {e.seq} witnesses it (row deleted or its key altered)")
        return
    if m.raw_digest != e.message_digest:
        c.problem(e.seq, f"messages row id={m.id} ({e.message_id}), column raw_digest",
                  f"is {str(m.raw_digest)[:16]}…, but entry seq {e.seq} recorded {str(e.message_digest)[:16]}…: "
                  f"the row was altered")
    if e.receipt_digest and e.receipt_digest not in {r.digest for r in receipts_by_msg.get(m.id, [])}:
        c.problem(e.seq, f"receipts of messages row id={m.id} ({e.message_id}), column digest",
                  f"no receipt row has the digest {e.receipt_digest[:16]}… that entry seq {e.seq} recorded: "
                  f"the row was altered or deleted")


def _altered_field(e: EvidenceEntry, msg_by_key, receipts_by_msg) -> str:
    """Best guess which field of an altered entry changed, by comparing with the row it witnesses."""
    if e.kind not in (*MESSAGE_KINDS, RECEIPT_RECEIVED):
        return "time, kind or data"
    m = msg_by_key.get((e.direction, e.partner_id, e.message_id))
    if m is None:
        return "message_id, partner_id or direction"
    if m.raw_digest != e.message_digest:
        return "message_digest"
    if e.receipt_digest and e.receipt_digest not in {r.digest for r in receipts_by_msg.get(m.id, [])}:
        return "receipt_digest"
    return "time, kind or data"


def _check_timestamp(c: _Checker, e: EvidenceEntry, by_seq: dict[int, EvidenceEntry],
                     purged_at: dict[str, int]) -> None:
    data = _safe_data(e)
    token_digest, covered_seq, covered_hash = (data.get("token_digest"), data.get("timestamped_seq"),
                                               data.get("timestamped_hash"))
    where = f"evidence_log seq {e.seq} (timestamp)"
    if not token_digest:
        c.problem(e.seq, where, "names no token_digest")
        return
    if not c.check_file(token_digest, e.seq, f"time-stamp token of entry seq {e.seq}", purged_at.get(token_digest)):
        return
    covered = by_seq.get(covered_seq)
    if covered is None or covered.entry_hash != covered_hash:
        c.problem(e.seq, where, f"covers seq {covered_seq} with hash {str(covered_hash)[:16]}…, which is not "
                  "that entry's entry_hash")
        return
    try:
        info = verify_token(c.store.blobs.get(token_digest), c.tsa_trust)
    except (TimestampError, OSError) as exc:
        c.problem(e.seq, c.store.blobs.where(token_digest), f"time-stamp token rejected: {exc}")
        return
    if info.hashed_message.hex() != covered_hash:
        c.problem(e.seq, where, "the token's messageImprint is not the hash of the entry it claims to cover")
        return
    c.report.timestamps += 1
    c.report.last_timestamp = f"seq {covered_seq} time-stamped at {info.gen_time.isoformat()}"
