"""The message store: every state change of a message, and the event that explains it, in one transaction.

Writes are group-committed (``writer.py``): what arrives together shares one transaction.

All methods are synchronous and blocking; the daemon calls them off the reactor thread
(``deferToThread``). The CLI calls them directly.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from crypto.content import Octets
from gateway.evidence.chain import witness_inbound, witness_outbound, witness_receipt
from gateway.store.blobs import INLINE_MAX, BlobStore
from gateway.store.connect import DatabaseUnavailable, describe_url, explain, make_engine, open_engine
from gateway.store.models import IN, OUT, Event, Message, Payload, ReceiptRecord
from gateway.store.writer import GroupCommitWriter, PendingWrite

T = TypeVar("T")

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
    data: Octets            # bytes, or a spooled file for a large payload (``crypto.content``)


@dataclass(frozen=True)
class OutboundJob:
    """What the sender needs to (re)send one message: the identical signed bytes every time."""
    pk: int
    message_id: str
    partner_id: str
    pmode_id: str | None
    content_type: str
    body: Octets            # the stored raw message; a large one streams from its blob file
    attempts: int
    created_at: dt.datetime
    signed_references: dict
    retry_since: dt.datetime | None = None   # start of the current retry budget
    retry_base: int = 0                      # attempts made before the current budget
    nsw_reference: str | None = None         # for the outcome report to the NSW


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass(frozen=True)
class InboundVerdict:
    """What duplicate elimination needs of an earlier copy of an inbound message: a few columns,
    not the entity with its payloads and receipts."""
    pk: int
    status: str
    document_type: str | None
    last_error: str | None
    payload_digests: tuple[str, ...]
    receipt_digest: str | None
    receipt_content_type: str | None


@dataclass(frozen=True)
class NswDelivery:
    """An inbound message the NSW inbox is owed: committed ``received``, not yet ``delivered``."""
    pk: int
    message_id: str
    partner_id: str
    nsw_reference: str | None
    document_type: str | None
    conversation_id: str | None
    ref_to_message_id: str | None
    plan: dict


_MESSAGES, _EVENTS, _PAYLOADS, _RECEIPTS = (Message.__table__, Event.__table__, Payload.__table__,
                                           ReceiptRecord.__table__)


# The hot path's statements, built once: building a select() per call costs several times
# what executing it does (SQLAlchemy then also skips re-deriving its compiled-cache key).
_M = _MESSAGES.c
_INSERT_MESSAGE, _INSERT_EVENTS, _INSERT_PAYLOADS, _INSERT_RECEIPT = (
    insert(_MESSAGES), insert(_EVENTS), insert(_PAYLOADS), insert(_RECEIPTS))
_OUTCOME_OF = select(_M.status, _M.message_id, _M.partner_id, _M.raw_digest).where(_M.id == bindparam("b_pk"))
_SET_DELIVERED = update(_MESSAGES).where(_M.id == bindparam("b_pk")).values(
    status=DELIVERED, updated_at=bindparam("b_now"), next_attempt_at=None, last_error=None)
_SETTLE_SENDING = update(_MESSAGES).where(_M.id == bindparam("b_pk"), _M.status == SENDING).values(
    status=bindparam("b_status"), next_attempt_at=bindparam("b_next"), last_error=bindparam("b_error"),
    updated_at=bindparam("b_now"))
_CLAIM_ONE = update(_MESSAGES).where(_M.id == bindparam("b_pk"), _M.status == bindparam("b_status")).values(
    status=SENDING, updated_at=bindparam("b_now"), attempts=_M.attempts + 1)
_NSW_DELIVERED = update(_MESSAGES).where(_M.id == bindparam("b_pk"), _M.status == RECEIVED).values(
    status=DELIVERED, updated_at=bindparam("b_now"))
_VERDICT_OF = select(_M.id, _M.status, _M.document_type, _M.last_error).where(
    _M.direction == IN, _M.partner_id == bindparam("b_partner"), _M.message_id == bindparam("b_mid"))
_PAYLOAD_DIGESTS = select(_PAYLOADS.c.digest).where(_PAYLOADS.c.message_pk == bindparam("b_pk")).order_by(_PAYLOADS.c.id)
_FIRST_RECEIPT = select(_RECEIPTS.c.digest, _RECEIPTS.c.content_type).where(
    _RECEIPTS.c.message_pk == bindparam("b_pk")).order_by(_RECEIPTS.c.id).limit(1)


def _event_rows(pk: int, events: Iterable[StepEvent]) -> list[dict]:
    return [{"message_pk": pk, "time": ev.time, "step": ev.step, "outcome": ev.outcome, "detail": ev.detail}
            for ev in events]


class MessageStore:
    """Every write goes through one group-commit writer (``gateway/store/writer.py``) as Core
    statements: a message with its payloads, receipt, events and evidence entry is one unit of
    work, and the units that arrive together commit in one transaction."""

    def __init__(self, url: str, blob_dir: Path, *, run_migrations: bool = True, inline_max: int = INLINE_MAX):
        self.engine = open_engine(url)
        if run_migrations:
            try:
                migrate(self.engine)
            except DBAPIError as exc:      # e.g. a user that may not create tables
                self.engine.dispose()
                raise DatabaseUnavailable(explain(describe_url(url), exc)) from None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.blobs = BlobStore(blob_dir, self.engine, inline_max)
        self.writer = GroupCommitWriter(self.sessions)

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()

    # -- helpers -----------------------------------------------------------------
    def _write(self, work: Callable[[Session], T]) -> T:
        return self.writer.run(work)

    @staticmethod
    def _events(session: Session, pk: int, events: Iterable[StepEvent]) -> None:
        rows = _event_rows(pk, events)
        if rows:
            session.connection().execute(_INSERT_EVENTS, rows)

    def _stage_payloads(self, payloads: Sequence[PayloadData]) -> list[tuple[PayloadData, str, dict | None]]:
        return [(p, *self.blobs.stage(p.data)) for p in payloads]

    def _insert_payloads(self, session: Session, pk: int, staged) -> None:
        if not staged:
            return
        self.blobs.insert(session.connection(), [row for _, _, row in staged])
        session.connection().execute(_INSERT_PAYLOADS, [{"message_pk": pk, "content_id": p.content_id, "mime_type": p.mime_type,
                                             "digest": digest, "size": len(p.data)} for p, digest, _ in staged])

    @staticmethod
    def _insert_message(session: Session, **values) -> int:
        try:
            result = session.connection().execute(_INSERT_MESSAGE, values)
        except IntegrityError:
            raise DuplicateMessage(values["message_id"]) from None
        return result.inserted_primary_key[0]

    def add_event(self, pk: int, step: str, outcome: str, detail: str | None = None) -> None:
        self._write(lambda s: self._events(s, pk, [StepEvent(step, outcome, detail)]))

    # -- outbound ----------------------------------------------------------------
    def record_outbound(self, *, message_id: str, partner_id: str, document_type: str, pmode_id: str,
                        nsw_reference: str | None, conversation_id: str, ref_to_message_id: str | None,
                        content_type: str, raw: Octets, signed_references: dict,
                        payloads: Sequence[PayloadData], events: Sequence[StepEvent]) -> int:
        """Persist a packed, signed message as ``queued``: message, payloads, events and its
        evidence entry in one unit of work (large blobs are files, durable before it)."""
        return self.record_outbound_later(
            message_id=message_id, partner_id=partner_id, document_type=document_type, pmode_id=pmode_id,
            nsw_reference=nsw_reference, conversation_id=conversation_id, ref_to_message_id=ref_to_message_id,
            content_type=content_type, raw=raw, signed_references=signed_references, payloads=payloads,
            events=events).result()

    def record_outbound_later(self, *, message_id: str, partner_id: str, document_type: str, pmode_id: str,
                              nsw_reference: str | None, conversation_id: str, ref_to_message_id: str | None,
                              content_type: str, raw: Octets, signed_references: dict,
                              payloads: Sequence[PayloadData], events: Sequence[StepEvent]) -> "PendingWrite[int]":
        """:meth:`record_outbound` without waiting: ``result()`` returns the primary key once the
        message is durable, so a caller with many messages gets them into one commit."""
        raw_digest, raw_row = self.blobs.stage(raw)
        staged = self._stage_payloads(payloads)
        now = utcnow()

        def work(s: Session) -> int:
            self.blobs.insert(s.connection(), [raw_row])
            pk = self._insert_message(
                s, message_id=message_id, direction=OUT, partner_id=partner_id, document_type=document_type,
                pmode_id=pmode_id, nsw_reference=nsw_reference, conversation_id=conversation_id,
                ref_to_message_id=ref_to_message_id, status=QUEUED, created_at=now, updated_at=now, attempts=0,
                next_attempt_at=now, retry_since=now, retry_base=0, content_type=content_type,
                raw_digest=raw_digest, signed_references=signed_references)
            self._insert_payloads(s, pk, staged)
            self._events(s, pk, [*events, StepEvent("persist", "ok", f"queued for {partner_id}")])
            witness_outbound(s, message_id, partner_id, raw_digest)
            return pk
        return self.writer.submit(work)

    def record_rejected_outbound(self, *, message_id: str, partner_id: str, document_type: str,
                                 pmode_id: str | None, nsw_reference: str | None, error: str,
                                 document: PayloadData, events: Sequence[StepEvent]) -> int:
        """Record a submission the gateway refused to send (e.g. its mapping failed), as
        ``rejected``: the NSW can read why by MessageId or reference, and nothing is ever sent.
        The NSW's document is kept as the payload, so the operator can reproduce the failure."""
        staged = self._stage_payloads([document])
        now = utcnow()

        def work(s: Session) -> int:
            pk = self._insert_message(
                s, message_id=message_id, direction=OUT, partner_id=partner_id, document_type=document_type,
                pmode_id=pmode_id, nsw_reference=nsw_reference, conversation_id=None, ref_to_message_id=None,
                status=REJECTED, created_at=now, updated_at=now, attempts=0, next_attempt_at=None,
                retry_base=0, last_error=error)
            self._insert_payloads(s, pk, staged)
            self._events(s, pk, events)
            return pk
        return self._write(work)

    def recover_interrupted(self) -> int:
        """Messages left ``sending`` by a crash go back to the queue (sending is at-least-once)."""
        now = utcnow()

        def work(s: Session) -> int:
            pks = list(s.scalars(select(Message.id).where(Message.direction == OUT, Message.status == SENDING)))
            if pks:
                s.execute(update(_MESSAGES).where(_MESSAGES.c.id.in_(pks))
                          .values(status=QUEUED, next_attempt_at=now, updated_at=now))
                s.execute(insert(_EVENTS), [r for pk in pks for r in _event_rows(pk, [StepEvent(
                    "recover", "requeued", "send was interrupted by a restart; will resend")])])
            return len(pks)
        return self._write(work)

    def claim_due(self, limit: int, now: dt.datetime | None = None) -> list[OutboundJob]:
        """Atomically move due ``queued``/``awaiting-receipt`` messages to ``sending``
        (a conditional UPDATE per row, so several nodes never claim the same message)."""
        now = now or utcnow()
        m = _MESSAGES.c

        def work(s: Session) -> list[tuple[OutboundJob, str]]:
            candidates = s.execute(
                select(m.id, m.message_id, m.partner_id, m.pmode_id, m.content_type, m.attempts, m.status,
                       m.created_at, m.signed_references, m.retry_since, m.retry_base, m.raw_digest,
                       m.nsw_reference)
                .where(m.direction == OUT, m.status.in_(RESENDABLE), m.next_attempt_at <= now)
                .order_by(m.next_attempt_at, m.id).limit(limit)).all()
            claimed = []
            conn = s.connection()
            for row in candidates:
                done = conn.execute(_CLAIM_ONE, {"b_pk": row.id, "b_status": row.status, "b_now": now})
                if done.rowcount != 1:
                    continue
                claimed.append((OutboundJob(pk=row.id, message_id=row.message_id, partner_id=row.partner_id,
                                            pmode_id=row.pmode_id, content_type=row.content_type, body=b"",
                                            attempts=row.attempts + 1, created_at=row.created_at,
                                            signed_references=row.signed_references or {},
                                            retry_since=row.retry_since or row.created_at,
                                            retry_base=row.retry_base or 0, nsw_reference=row.nsw_reference),
                                row.raw_digest))
            return claimed
        # Blob reads happen outside the transaction; the raw message never changes once stored.
        result = []
        for job, digest in self._write(work):
            try:
                body = self.blobs.content(digest)
            except OSError as exc:
                # A lost or corrupted stored message cannot be resent as signed; fail it
                # loudly rather than strand the rest of the batch in 'sending'.
                why = f"stored raw message {digest} cannot be read ({exc}); restore it from backup " \
                      f"and run `swgw messages retry`, or resubmit the document"
                self.mark_failed(job.pk, why, [StepEvent("send", "error", why)])
                continue
            result.append(replace(job, body=body))
        return result

    def mark_delivered(self, pk: int, receipt: bytes, receipt_content_type: str,
                       events: Sequence[StepEvent], receipt_message_id: str | None = None) -> None:
        """A verified receipt settles the message from any state: it proves delivery, even when
        it arrives late (after a timeout, on a retry) or after an operator gave up on it."""
        digest, row = self.blobs.stage(receipt)
        now = utcnow()
        m = _MESSAGES.c

        def work(s: Session) -> None:
            conn = s.connection()
            msg = conn.execute(_OUTCOME_OF, {"b_pk": pk}).one()
            extra = [StepEvent("late-receipt", "delivered", f"receipt arrived although the message was {msg.status}")] \
                if msg.status in (FAILED, CANCELLED) else []
            conn.execute(_SET_DELIVERED, {"b_pk": pk, "b_now": now})
            self.blobs.insert(conn, [row])
            conn.execute(_INSERT_RECEIPT, {"message_pk": pk, "receipt_message_id": receipt_message_id, "time": now,
                                           "digest": digest, "content_type": receipt_content_type})
            self._events(s, pk, [*events, *extra])
            witness_receipt(s, msg.message_id, msg.partner_id, msg.raw_digest, digest)
        self._write(work)

    def _settle_attempt(self, pk: int, events: Sequence[StepEvent], status: str,
                        next_attempt_at: dt.datetime | None, last_error: str) -> bool:
        """Record an attempt's events and, if the message is still ``sending``, its new state."""
        def work(s: Session) -> bool:
            self._events(s, pk, events)
            done = s.connection().execute(_SETTLE_SENDING, {"b_pk": pk, "b_status": status, "b_next": next_attempt_at,
                                                            "b_error": last_error, "b_now": utcnow()})
            return done.rowcount == 1
        return self._write(work)

    def mark_retry(self, pk: int, error: str, next_attempt_at: dt.datetime,
                   events: Sequence[StepEvent], *, transmitted: bool = False) -> bool:
        """Schedule the next attempt. ``transmitted`` says the partner may have the message
        (we got an answer, or timed out after sending): it then awaits its receipt.
        Returns False if the message left ``sending`` meanwhile (an operator cancelled it)."""
        return self._settle_attempt(pk, events, status=AWAITING if transmitted else QUEUED,
                                    next_attempt_at=next_attempt_at, last_error=error)

    def mark_failed(self, pk: int, error: str, events: Sequence[StepEvent]) -> bool:
        return self._settle_attempt(pk, events, status=FAILED, next_attempt_at=None, last_error=error)

    # -- operator actions --------------------------------------------------------
    def _outbound(self, s: Session, message_id: str) -> Message:
        msg = s.scalars(select(Message).where(Message.direction == OUT, Message.message_id == message_id)).first()
        if msg is None:
            raise LookupError(f"no outbound message with id {message_id} in this gateway's store")
        return msg

    def retry_message(self, message_id: str, operator: str = "operator") -> Message:
        """Requeue a failed, cancelled or waiting message now, with a fresh retry budget."""
        now = utcnow()

        def work(s: Session) -> Message:
            msg = self._outbound(s, message_id)
            if msg.status not in (FAILED, CANCELLED, QUEUED, AWAITING):
                raise ValueError(f"message {message_id} is {msg.status}; only failed, cancelled, queued or "
                                 f"awaiting-receipt messages can be retried")
            previous = msg.status
            msg.status, msg.next_attempt_at, msg.updated_at = QUEUED, now, now
            msg.retry_since, msg.retry_base = now, msg.attempts
            s.flush()
            self._events(s, msg.id, [StepEvent("retry", "requested",
                                               f"{operator} requeued the message (was {previous}); "
                                               "new retry budget")])
            return msg
        return self._write(work)

    def cancel_message(self, message_id: str, operator: str = "operator") -> Message:
        """Stop sending a message. A receipt that still arrives will mark it delivered."""
        now = utcnow()

        def work(s: Session) -> Message:
            msg = self._outbound(s, message_id)
            if msg.status in (DELIVERED, CANCELLED):
                raise ValueError(f"message {message_id} is already {msg.status}")
            previous = msg.status
            msg.status, msg.next_attempt_at, msg.updated_at = CANCELLED, None, now
            s.flush()
            self._events(s, msg.id, [StepEvent("cancel", "done", f"{operator} cancelled the message "
                                               f"(was {previous})")])
            return msg
        return self._write(work)

    # -- inbound -----------------------------------------------------------------
    def inbound_verdict(self, partner_id: str, message_id: str) -> InboundVerdict | None:
        """An earlier copy of an inbound message, by the unique key (index lookups, few columns)."""
        with self.engine.connect() as conn:
            row = conn.execute(_VERDICT_OF, {"b_partner": partner_id, "b_mid": message_id}).first()
            if row is None:
                return None
            digests = tuple(conn.scalars(_PAYLOAD_DIGESTS, {"b_pk": row.id}))
            receipt = conn.execute(_FIRST_RECEIPT, {"b_pk": row.id}).first()
        return InboundVerdict(row.id, row.status, row.document_type, row.last_error, digests,
                              receipt.digest if receipt else None, receipt.content_type if receipt else None)

    def find_inbound(self, partner_id: str, message_id: str) -> Message | None:
        """The inbound message with its payloads and receipts, by the unique key (operators, tests)."""
        with self.sessions() as s:
            return s.scalars(select(Message).options(selectinload(Message.payloads), selectinload(Message.receipts))
                             .where(Message.direction == IN, Message.partner_id == partner_id,
                                    Message.message_id == message_id)).first()

    def record_inbound(self, *, message_id: str, partner_id: str, document_type: str | None,
                       pmode_id: str | None, nsw_reference: str | None, conversation_id: str | None,
                       ref_to_message_id: str | None, status: str, content_type: str, raw: Octets,
                       receipt: bytes | None, receipt_content_type: str | None, error: str | None,
                       receipt_message_id: str | None = None,
                       payloads: Sequence[PayloadData], events: Sequence[StepEvent],
                       nsw_delivery: dict | None = None, extra_blobs: Sequence[bytes] = (),
                       effects: Callable[[Session], Sequence[StepEvent]] | None = None,
                       linked_events: Mapping[int, Sequence[StepEvent]] | None = None) -> int:
        """Record a received message with its evidence as one unit of work; DuplicateMessage if
        already recorded. ``effects`` are changes that commit with it (an AEO list applied to
        the registry) and return their events; an exception from them records nothing.
        ``extra_blobs`` are documents ``nsw_delivery`` names that are not payloads (a mapped
        canonical document); ``linked_events`` go to other messages (the one a response answers)."""
        raw_digest, raw_row = self.blobs.stage(raw)
        receipt_digest, receipt_row = self.blobs.stage(receipt) if receipt is not None else (None, None)
        staged = self._stage_payloads(payloads)
        extra_rows = [self.blobs.stage(data)[1] for data in extra_blobs]
        now = utcnow()

        def work(s: Session) -> int:
            effect_events = list(effects(s)) if effects is not None else []
            self.blobs.insert(s.connection(), [raw_row, receipt_row, *extra_rows])
            pk = self._insert_message(
                s, message_id=message_id, direction=IN, partner_id=partner_id, document_type=document_type,
                pmode_id=pmode_id, nsw_reference=nsw_reference, conversation_id=conversation_id,
                ref_to_message_id=ref_to_message_id, status=status, created_at=now, updated_at=now, attempts=1,
                content_type=content_type, raw_digest=raw_digest, last_error=error, nsw_delivery=nsw_delivery)
            self._insert_payloads(s, pk, staged)
            if receipt_digest is not None:
                s.connection().execute(_INSERT_RECEIPT, {
                    "message_pk": pk, "receipt_message_id": receipt_message_id, "time": now,
                    "digest": receipt_digest, "content_type": receipt_content_type})
            self._events(s, pk, [*events, *effect_events])
            for other, more in (linked_events or {}).items():
                self._events(s, other, more)
            witness_inbound(s, message_id, partner_id, raw_digest, receipt_digest)
            return pk
        return self._write(work)

    def mark_nsw_delivered(self, pk: int, events: Sequence[StepEvent]) -> None:
        """The inbox files of a ``received`` message are written (and durable): ``delivered``."""
        def work(s: Session) -> None:
            s.connection().execute(_NSW_DELIVERED, {"b_pk": pk, "b_now": utcnow()})
            self._events(s, pk, events)
        self._write(work)

    def owed_to_nsw(self, pk: int | None = None) -> list[NswDelivery]:
        """Inbound messages committed but not yet in the NSW inbox (a crash or a failed inbox
        write came between); all of them, or the one with primary key ``pk``."""
        m = _MESSAGES.c
        query = select(m.id, m.message_id, m.partner_id, m.nsw_reference, m.document_type, m.conversation_id,
                       m.ref_to_message_id, m.nsw_delivery).where(m.direction == IN, m.status == RECEIVED)
        if pk is not None:
            query = query.where(m.id == pk)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(m.id)).all()
        return [NswDelivery(r.id, r.message_id, r.partner_id, r.nsw_reference, r.document_type,
                            r.conversation_id, r.ref_to_message_id, r.nsw_delivery or {}) for r in rows]

    def blob(self, digest: str) -> bytes:
        return self.blobs.get(digest)

    def blob_content(self, digest: str) -> Octets:
        """A stored blob to stream (a large one stays in its file, see ``BlobStore.content``)."""
        return self.blobs.content(digest)

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
