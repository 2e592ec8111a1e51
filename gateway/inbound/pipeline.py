"""Inbound pipeline: AS4 POST body -> parsed, matched to a PMode, decrypted, verified,
de-duplicated, committed as evidence, delivered to the NSW, answered with a signed receipt.

Blocking work; the HTTP resource runs it off the reactor thread. The steps are the handler
chain in ``steps.py``; this module runs them and turns what they raise into the answer.
Every failure becomes a signed ebMS error signal with the code the partner's software
understands (ebMS 3.0 Core sec 6.7, AS4 sec 5) and a description the partner's operator can
act on. A rejected message leaves nothing behind: no database row, no blob, no NSW inbox
file. The one exception is a verified message whose *document* fails (mapping to canonical,
schema, AEO list): it is recorded ``rejected`` (never delivered) and answered with EBMS:0004.
"""
from __future__ import annotations

import uuid
from typing import Callable, Sequence

from cryptography import x509
from twisted.logger import Logger

from gateway import as4
from gateway.connectors.nsw import NswConnector
from gateway.identity import LocalIdentity
from gateway.inbound import steps
from gateway.inbound.answers import Answerer
from gateway.inbound.context import InboundContext, InboundLimits, Response
from gateway.store.store import MessageStore
from partners.registry import PartnerRegistry

log = Logger()


class InboundPipeline:
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry],
                 store: MessageStore, connector: NswConnector, limits: InboundLimits | None = None):
        self.identity = identity
        self.registry = registry
        self.store = store
        self.connector = connector
        self.limits = limits = limits or InboundLimits()
        self.answers = answers = Answerer(identity)
        self.delivery = steps.DeliverToNsw(store, connector)
        dedupe = steps.Dedupe(store, connector)
        self.chain: Sequence[steps.Step] = (
            steps.Parse(limits), steps.IdentifySender(identity), steps.CheckTlsClient(), steps.MatchPMode(),
            steps.Decrypt(answers), steps.Verify(identity), steps.SignedView(), steps.ResolvePayloads(limits),
            steps.AnswerTestMessage(answers),
            dedupe, steps.DocumentStage(store), steps.LinkResponse(store), steps.BuildReceipt(answers),
            steps.Commit(store, dedupe), self.delivery, steps.Answer())

    def process(self, content_type: str, body: bytes, *,
                tls_chain: tuple[x509.Certificate, ...] | None = None) -> Response:
        """Handle one POSTed AS4 message; never raises for bad input, answers an ebMS error.

        Raises only once processing has reached the store (an outage there is the listener's
        HTTP 500, which the partner retries); see :meth:`_internal_error` for a failure before.

        ``tls_chain`` is the TLS client certificate chain the listener verified at the
        handshake (leaf first); it is checked again against the sending partner's CRLs."""
        if len(body) > self.limits.max_message_bytes:
            return Response(413, "text/plain; charset=utf-8",
                            f"message of {len(body)} bytes exceeds this gateway's limit of "
                            f"{self.limits.max_message_bytes} bytes\n".encode())
        ctx = InboundContext(content_type=content_type, body=body, tls_chain=tls_chain, registry=self.registry())
        try:
            for step in self.chain:
                step(ctx)
                if ctx.response is not None:
                    return ctx.response
            raise AssertionError("the inbound chain ended without an answer")
        except as4.EbmsException as exc:
            log.warn("inbound message rejected: {code} {detail}", code=exc.error.error_code,
                     detail=exc.error.description, message_id=exc.error.ref_to_message_id)
            return self.answers.error(exc.error, ctx.answer_suite)
        except Exception:
            if ctx.reached_store:
                # Database, disk, NSW inbox: the listener answers HTTP 500 and the partner's
                # retries carry the message past the outage (delivery is idempotent).
                raise
            return self._internal_error(ctx)

    def redeliver_owed(self) -> int:
        """Hand the NSW what a crash kept from it (messages committed ``received``)."""
        return self.delivery.redeliver_owed()

    def _internal_error(self, ctx: InboundContext) -> Response:
        """The last line of defence while the message is only being checked: a bug of ours on
        this input. A 500 would make the partner resend the same bytes into the same bug until
        its retries run out; a signed EBMS:0004 is a definitive answer, and the incident id
        ties the partner's report to the traceback in our log. Nothing was stored."""
        incident = uuid.uuid4().hex[:12]
        log.failure("inbound pipeline failed while checking message {message_id} (incident {incident}); "
                    "answered EBMS:0004", message_id=ctx.message_id, incident=incident)
        me = self.identity.party_id
        error = as4.make_error(
            "EBMS:0004", f"the message could not be checked because of an internal error of {me} (incident "
            f"{incident}); it was not accepted, and resending it unchanged will fail the same way: ask the "
            f"operator of {me} about incident {incident}", ctx.message_id, severity="failure")
        return self.answers.error(error, ctx.answer_suite)
