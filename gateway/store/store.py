"""The message store: every state change of a message, and the event that explains it, in one transaction.

All methods are synchronous and blocking; the daemon calls them off the reactor thread
(``deferToThread``). The CLI calls them directly.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from gateway.evidence.chain import witness_inbound, witness_outbound, witness_receipt
from gateway.store.blobs import BlobStore
from gateway.store.models import IN, OUT, Event, Message, Payload, ReceiptRecord

MIGRATIONS = Path(__file__).parent / "migrations"

# Outbound states
QUEUED, SENDING, AWAITING, DELIVERED, FAILED, CANCELLED = (
    "queued", "sending", "awaiting-receipt", "delivered", "failed", "cancelled")
RESENDABLE = (QUEUED, AWAITING)          # states the sender picks up when next_attempt_at is due
# Inbound states
RECEIVED, REJECTED = "received", "rejected"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class DuplicateMessage(Exception):
    """A MessageId already recorded for this partner and direction."""


@dataclass(frozen=True)
class StepEvent:
    """One pipeline step's outcome, timed when it happened (not when it was persisted)."""
    step: str
    outcome: str
    detail: str | None = None
    time: dt.datetime = field(default_factory=lambda: utcnow())


@dataclass(frozen=True)
class PayloadData:
    content_id: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class OutboundJob:
    """What the sender needs to (re)send one message: the identical signed bytes every time."""
    pk: int
    message_id: str
    partner_id: str
    pmode_id: str | None
    content_type: str
    body: bytes
    attempts: int
    created_at: dt.datetime
    signed_references: dict
    retry_since: dt.datetime | None = None   # start of the current retry budget
    retry_base: int = 0                      # attempts made before the current budget


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class MessageStore:
    def __init__(self, url: str, blob_dir: Path, *, run_migrations: bool = True):
        self.engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.blobs = BlobStore(blob_dir)

    def close(self) -> None:
        self.engine.dispose()

    # -- helpers -----------------------------------------------------------------
    @staticmethod
    def _events(session: Session, pk: int, events: Iterable[StepEvent]) -> None:
        for ev in events:
            session.add(Event(message_pk=pk, time=ev.time, step=ev.step, outcome=ev.outcome, detail=ev.detail))

    def _store_payloads(self, session: Session, pk: int, payloads: Sequence[PayloadData]) -> None:
        for p in payloads:
            digest = self.blobs.put(p.data)
            session.add(Payload(message_pk=pk, content_id=p.content_id, mime_type=p.mime_type,
                                digest=digest, size=len(p.data)))

    def add_event(self, pk: int, step: str, outcome: str, detail: str | None = None) -> None:
        with self.sessions.begin() as s:
            self._events(s, pk, [StepEvent(step, outcome, detail)])

    # -- outbound ----------------------------------------------------------------
    def record_outbound(self, *, message_id: str, partner_id: str, document_type: str, pmode_id: str,
                        nsw_reference: str | None, conversation_id: str, ref_to_message_id: str | None,
                        content_type: str, raw: bytes, signed_references: dict,
                        payloads: Sequence[PayloadData], events: Sequence[StepEvent]) -> int:
        """Persist a packed, signed message as ``queued``: files first, then one DB transaction."""
        raw_digest = self.blobs.put(raw)
        now = utcnow()
        try:
            return self._insert_outbound(now, raw_digest, message_id=message_id, partner_id=partner_id,
                                         document_type=document_type, pmode_id=pmode_id,
                                         nsw_reference=nsw_reference, conversation_id=conversation_id,
                                         ref_to_message_id=ref_to_message_id, content_type=content_type,
                                         signed_references=signed_references, payloads=payloads, events=events)
        except IntegrityError:
            raise DuplicateMessage(message_id) from None

    def _insert_outbound(self, now, raw_digest, *, message_id, partner_id, document_type, pmode_id,
                         nsw_reference, conversation_id, ref_to_message_id, content_type,
                         signed_references, payloads, events) -> int:
        with self.sessions.begin() as s:
            msg = Message(message_id=message_id, direction=OUT, partner_id=partner_id,
                          document_type=document_type, pmode_id=pmode_id, nsw_reference=nsw_reference,
                          conversation_id=conversation_id, ref_to_message_id=ref_to_message_id,
                          status=QUEUED, created_at=now, updated_at=now, attempts=0, next_attempt_at=now,
                          retry_since=now, retry_base=0,
                          content_type=content_type, raw_digest=raw_digest,
                          signed_references=signed_references)
            s.add(msg)
            s.flush()
            self._store_payloads(s, msg.id, payloads)
            self._events(s, msg.id, [*events, StepEvent("persist", "ok", f"queued for {partner_id}")])
            witness_outbound(s, msg)
            return msg.id

    def record_rejected_outbound(self, *, message_id: str, partner_id: str, document_type: str,
                                 pmode_id: str | None, nsw_reference: str | None, error: str,
                                 document: PayloadData, events: Sequence[StepEvent]) -> int:
        """Record a submission the gateway refused to send (e.g. its mapping failed), as
        ``rejected``: the NSW can read why by MessageId or reference, and nothing is ever sent.
        The NSW's document is kept as the payload, so the operator can reproduce the failure."""
        now = utcnow()
        try:
            with self.sessions.begin() as s:
                msg = Message(message_id=message_id, direction=OUT, partner_id=partner_id,
                              document_type=document_type, pmode_id=pmode_id, nsw_reference=nsw_reference,
                              conversation_id=None, ref_to_message_id=None, status=REJECTED,
                              created_at=now, updated_at=now, attempts=0, next_attempt_at=None,
                              retry_base=0, last_error=error)
                s.add(msg)
                s.flush()
                self._store_payloads(s, msg.id, [document])
                self._events(s, msg.id, events)
                return msg.id
        except IntegrityError:
            raise DuplicateMessage(message_id) from None

    def recover_interrupted(self) -> int:
        """Messages left ``sending`` by a crash go back to the queue (sending is at-least-once)."""
        now = utcnow()
        with self.sessions.begin() as s:
            rows = s.scalars(select(Message).where(Message.direction == OUT, Message.status == SENDING)).all()
            for msg in rows:
                msg.status, msg.next_attempt_at, msg.updated_at = QUEUED, now, now
                self._events(s, msg.id, [StepEvent("recover", "requeued",
                                                   "send was interrupted by a restart; will resend")])
            return len(rows)

    def claim_due(self, limit: int, now: dt.datetime | None = None) -> list[OutboundJob]:
        """Atomically move due ``queued``/``awaiting-receipt`` messages to ``sending``
        (a conditional UPDATE per row, so several nodes never claim the same message)."""
        now = now or utcnow()
        jobs = []
        with self.sessions.begin() as s:
            candidates = s.scalars(
                select(Message).where(Message.direction == OUT, Message.status.in_(RESENDABLE),
                                      Message.next_attempt_at <= now)
                .order_by(Message.next_attempt_at, Message.id).limit(limit)).all()
            for msg in candidates:
                attempts, status = msg.attempts + 1, msg.status
                claimed = s.execute(update(Message).where(Message.id == msg.id, Message.status == status)
                                    .values(status=SENDING, updated_at=now, attempts=Message.attempts + 1))
                if claimed.rowcount != 1:
                    continue
                jobs.append(OutboundJob(pk=msg.id, message_id=msg.message_id, partner_id=msg.partner_id,
                                        pmode_id=msg.pmode_id, content_type=msg.content_type,
                                        body=b"", attempts=attempts, created_at=msg.created_at,
                                        signed_references=msg.signed_references or {},
                                        retry_since=msg.retry_since or msg.created_at,
                                        retry_base=msg.retry_base or 0))
        # Blob reads happen outside the transaction; the raw message never changes once stored.
        result = []
        for job in jobs:
            with self.sessions() as s:
                digest = s.get(Message, job.pk).raw_digest
            try:
                body = self.blobs.get(digest)
            except OSError as exc:
                # A lost or corrupted stored message cannot be resent as signed; fail it
                # loudly rather than strand the rest of the batch in 'sending'.
                why = f"stored raw message {digest} cannot be read ({exc}); restore it from backup " \
                      f"and run `swgw messages retry`, or resubmit the document"
                self.mark_failed(job.pk, why, [StepEvent("send", "error", why)])
                continue
            result.append(OutboundJob(**{**job.__dict__, "body": body}))
        return result

    def mark_delivered(self, pk: int, receipt: bytes, receipt_content_type: str,
                       events: Sequence[StepEvent], receipt_message_id: str | None = None) -> None:
        """A verified receipt settles the message from any state: it proves delivery, even when
        it arrives late (after a timeout, on a retry) or after an operator gave up on it."""
        digest = self.blobs.put(receipt)
        now = utcnow()
        with self.sessions.begin() as s:
            msg = s.get(Message, pk)
            if msg.status in (FAILED, CANCELLED):
                events = [*events, StepEvent("late-receipt", "delivered",
                                             f"receipt arrived although the message was {msg.status}")]
            msg.status, msg.updated_at, msg.next_attempt_at, msg.last_error = DELIVERED, now, None, None
            s.add(ReceiptRecord(message_pk=pk, receipt_message_id=receipt_message_id, time=now, digest=digest,
                                content_type=receipt_content_type))
            self._events(s, pk, events)
            witness_receipt(s, msg, digest)

    def mark_retry(self, pk: int, error: str, next_attempt_at: dt.datetime,
                   events: Sequence[StepEvent], *, transmitted: bool = False) -> bool:
        """Schedule the next attempt. ``transmitted`` says the partner may have the message
        (we got an answer, or timed out after sending): it then awaits its receipt.
        Returns False if the message left ``sending`` meanwhile (an operator cancelled it)."""
        now = utcnow()
        with self.sessions.begin() as s:
            msg = s.get(Message, pk)
            self._events(s, pk, events)
            if msg.status != SENDING:
                return False
            msg.status = AWAITING if transmitted else QUEUED
            msg.updated_at, msg.next_attempt_at, msg.last_error = now, next_attempt_at, error
            return True

    def mark_failed(self, pk: int, error: str, events: Sequence[StepEvent]) -> bool:
        now = utcnow()
        with self.sessions.begin() as s:
            msg = s.get(Message, pk)
            self._events(s, pk, events)
            if msg.status != SENDING:
                return False
            msg.status, msg.updated_at, msg.next_attempt_at, msg.last_error = FAILED, now, None, error
            return True

    # -- operator actions --------------------------------------------------------
    def _outbound(self, s: Session, message_id: str) -> Message:
        msg = s.scalars(select(Message).where(Message.direction == OUT, Message.message_id == message_id)).first()
        if msg is None:
            raise LookupError(f"no outbound message with id {message_id} in this gateway's store")
        return msg

    def retry_message(self, message_id: str, operator: str = "operator") -> Message:
        """Requeue a failed, cancelled or waiting message now, with a fresh retry budget."""
        now = utcnow()
        with self.sessions.begin() as s:
            msg = self._outbound(s, message_id)
            if msg.status not in (FAILED, CANCELLED, QUEUED, AWAITING):
                raise ValueError(f"message {message_id} is {msg.status}; only failed, cancelled, queued or "
                                 f"awaiting-receipt messages can be retried")
            previous = msg.status
            msg.status, msg.next_attempt_at, msg.updated_at = QUEUED, now, now
            msg.retry_since, msg.retry_base = now, msg.attempts
            self._events(s, msg.id, [StepEvent("retry", "requested",
                                               f"{operator} requeued the message (was {previous}); "
                                               "new retry budget")])
            return msg

    def cancel_message(self, message_id: str, operator: str = "operator") -> Message:
        """Stop sending a message. A receipt that still arrives will mark it delivered."""
        now = utcnow()
        with self.sessions.begin() as s:
            msg = self._outbound(s, message_id)
            if msg.status in (DELIVERED, CANCELLED):
                raise ValueError(f"message {message_id} is already {msg.status}")
            previous = msg.status
            msg.status, msg.next_attempt_at, msg.updated_at = CANCELLED, None, now
            self._events(s, msg.id, [StepEvent("cancel", "done", f"{operator} cancelled the message "
                                               f"(was {previous})")])
            return msg

    # -- inbound -----------------------------------------------------------------
    def find_inbound(self, partner_id: str, message_id: str) -> Message | None:
        """The inbound message (with payloads and receipts) by the unique key, an indexed lookup."""
        with self.sessions() as s:
            return s.scalars(select(Message).options(selectinload(Message.payloads), selectinload(Message.receipts))
                             .where(Message.direction == IN, Message.partner_id == partner_id,
                                    Message.message_id == message_id)).first()

    def record_inbound(self, *, message_id: str, partner_id: str, document_type: str | None,
                       pmode_id: str | None, nsw_reference: str | None, conversation_id: str | None,
                       ref_to_message_id: str | None, status: str, content_type: str, raw: bytes,
                       receipt: bytes | None, receipt_content_type: str | None, error: str | None,
                       receipt_message_id: str | None = None,
                       payloads: Sequence[PayloadData], events: Sequence[StepEvent]) -> int:
        """Record a received message with its evidence; DuplicateMessage if already recorded."""
        raw_digest = self.blobs.put(raw)
        receipt_digest = self.blobs.put(receipt) if receipt is not None else None
        now = utcnow()
        try:
            with self.sessions.begin() as s:
                msg = Message(message_id=message_id, direction=IN, partner_id=partner_id,
                              document_type=document_type, pmode_id=pmode_id, nsw_reference=nsw_reference,
                              conversation_id=conversation_id, ref_to_message_id=ref_to_message_id,
                              status=status, created_at=now, updated_at=now, attempts=1,
                              content_type=content_type, raw_digest=raw_digest,
                              last_error=error)
                s.add(msg)
                s.flush()
                self._store_payloads(s, msg.id, payloads)
                if receipt_digest is not None:
                    s.add(ReceiptRecord(message_pk=msg.id, receipt_message_id=receipt_message_id, time=now,
                                        digest=receipt_digest, content_type=receipt_content_type))
                self._events(s, msg.id, events)
                witness_inbound(s, msg, receipt_digest)
                return msg.id
        except IntegrityError:
            raise DuplicateMessage(message_id) from None

    def nsw_reference(self, pk: int) -> str | None:
        """The NSW's reference of a message: one column by primary key (no events or payloads)."""
        with self.sessions() as s:
            return s.scalar(select(Message.nsw_reference).where(Message.id == pk))

    def blob(self, digest: str) -> bytes:
        return self.blobs.get(digest)

    # -- queries -----------------------------------------------------------------
    def find(self, message_id: str | None = None, reference: str | None = None) -> list[Message]:
        """Messages (with events) by ebMS MessageId or by the NSW's own reference."""
        with self.sessions() as s:
            q = select(Message).options(selectinload(Message.events), selectinload(Message.payloads),
                                        selectinload(Message.receipts))
            q = q.where(Message.message_id == message_id) if message_id else q.where(
                Message.nsw_reference == reference)
            return list(s.scalars(q.order_by(Message.id)).all())

    def list_messages(self, partner: str | None = None, status: str | None = None,
                      limit: int = 200) -> list[Message]:
        with self.sessions() as s:
            q = select(Message)
            if partner:
                q = q.where(Message.partner_id == partner)
            if status:
                q = q.where(Message.status == status)
            return list(s.scalars(q.order_by(Message.id.desc()).limit(limit)).all())
