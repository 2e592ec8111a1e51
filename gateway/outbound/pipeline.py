"""Outbound pipeline: NSW document -> validated, mapped, compressed, packed, signed, encrypted, queued.

Blocking work (XML, crypto, database); the daemon runs it off the reactor thread. The steps
are the handler chain in ``steps.py``; nothing is persisted until every step succeeded, so a
rejected submission leaves nothing half-written. One exception, on purpose: a valid document
whose partner mapping fails is recorded as a ``rejected`` message (never sent), because the
NSW must be able to ask for its outcome by reference like for any other document.
"""
from __future__ import annotations

from typing import Callable, Sequence

from gateway.documents import DocumentSigners
from gateway.identity import LocalIdentity
from gateway.outbound import steps
from gateway.outbound.context import OutboundContext
from gateway.outbound.submission import Submission
from gateway.store.store import DuplicateMessage, MessageStore, PayloadData, StepEvent
from gateway.store.writer import PendingWrite
from partners.registry import PartnerRegistry


class OutboundPipeline:
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry], store: MessageStore,
                 signers: DocumentSigners | None = None):
        self.identity = identity
        self.registry = registry
        self.store = store
        self.signers = signers
        self.chain: Sequence[steps.Step] = (
            steps.ResolvePartner(identity), steps.PrepareDocument(signers, self._record_rejected), steps.Compress(),
            steps.Pack(identity), steps.Sign(identity), steps.Encrypt(), steps.Serialize())

    def prepare(self, sub: Submission) -> OutboundContext:
        """Every step but the store's: the signed, encrypted message ready to record.
        Raises SubmissionRejected (or a subclass) naming what to fix."""
        ctx = OutboundContext(submission=sub, registry=self.registry())
        for step in self.chain:
            step(ctx)
        return ctx

    def record_later(self, ctx: OutboundContext) -> PendingWrite[int]:
        """Queue the prepared message; ``result()`` returns once it is durable (``queued``)."""
        sub = ctx.submission
        return self.store.record_outbound_later(
            message_id=ctx.message_id, partner_id=ctx.partner.id, document_type=sub.document_type,
            pmode_id=ctx.pmode.id, nsw_reference=sub.nsw_reference, conversation_id=ctx.conversation_id,
            ref_to_message_id=sub.ref_to_message_id, content_type=ctx.content_type, raw=ctx.body,
            signed_references=ctx.signed_references,
            payloads=[PayloadData(ctx.content_id, ctx.pmode.mime_type, ctx.document)], events=ctx.events)

    def submit(self, sub: Submission) -> str:
        """Run the whole pipeline and persist the message as ``queued``; return its MessageId."""
        ctx = self.prepare(sub)
        self.record_later(ctx).result()
        return ctx.message_id

    def _record_rejected(self, ctx: OutboundContext, error: str) -> None:
        sub = ctx.submission
        events = [steps.submit_event(ctx), StepEvent("validate", "ok", f"valid {sub.document_type}"),
                  StepEvent("map", "rejected", error)]
        try:
            self.store.record_rejected_outbound(
                message_id=ctx.message_id, partner_id=ctx.partner.id, document_type=sub.document_type,
                pmode_id=ctx.pmode.id, nsw_reference=sub.nsw_reference, error=error,
                document=PayloadData("canonical@" + ctx.message_id.split("@", 1)[-1], "application/xml",
                                     sub.document),
                events=events)
        except DuplicateMessage:
            pass    # a resumed claim after a crash: the rejection is already on record
