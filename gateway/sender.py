"""The sender: takes due messages from the store, POSTs them, and applies the partner's verdict.

State is in the database: a message is ``queued`` until claimed (``sending``), and goes
back to ``queued`` with a later ``next_attempt_at`` when an attempt fails. A crash while
``sending`` is healed at start-up by requeueing (at-least-once; the receiver de-duplicates).
"""
from __future__ import annotations

import datetime as dt
import random
from typing import Callable

import treq
from twisted.application.service import Service
from twisted.internet import defer, task, threads
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, ResponseNeverReceived

from crypto.content import FileContent
from gateway import as4
from gateway.config import GatewayConfig
from gateway.connectors.nsw import NswConnector
from gateway.receipts import DELIVERED, FAILED, RETRY, Verdict, judge_response
from gateway.retry_policy import JITTER, decide_retry
from gateway.store.store import MessageStore, OutboundJob, StepEvent, utcnow
from gateway.transport.producer import ContentProducer
from gateway.transport.tls import PartnerTLSPolicy, private_certificate
from partners.registry import Partner, PartnerRegistry

log = Logger()


class Sender(Service):
    name = "sender"

    def __init__(self, config: GatewayConfig, store: MessageStore, registry: Callable[[], PartnerRegistry],
                 connector: NswConnector, reactor=None, run_blocking=None, *, recover: bool = True):
        """``reactor`` also serves as the clock of the poll loop; ``run_blocking`` runs the store
        work off the reactor (``deferToThread``), or synchronously where a test drives the
        sender on a ``task.Clock``. ``recover``: requeue sends a crash interrupted at start
        (only the main process does: a worker started later must not requeue live sends)."""
        from twisted.internet import reactor as default_reactor
        self.config = config
        self.store = store
        self.registry = registry
        self.connector = connector
        self.reactor = reactor or default_reactor
        self._run_blocking = run_blocking or threads.deferToThread
        self.pool = HTTPConnectionPool(self.reactor, persistent=True)
        self.pool.maxPersistentPerHost = config.sender.concurrency
        self._client_cert = (private_certificate(config.tls_client.key_path, config.tls_client.cert_path)
                             if config.tls_client else None)
        self._agents: dict[str, tuple[Partner, Agent]] = {}
        self._inflight: set[defer.Deferred] = set()
        self._loop: task.LoopingCall | None = None
        self._ticking = False
        self._tick_again = False
        self._claim_done: defer.Deferred | None = None
        self._recover = recover

    def _now(self) -> dt.datetime:
        """The time by the sender's clock (the reactor's: the wall clock, or a test's task.Clock)."""
        return dt.datetime.fromtimestamp(self.reactor.seconds(), dt.timezone.utc)

    def _agent(self, partner: Partner) -> Agent:
        cached = self._agents.get(partner.id)
        if cached is None or cached[0] is not partner:   # partner config reloaded: new TLS policy
            policy = PartnerTLSPolicy(partner.tls_trust, self._client_cert)
            cached = (partner, Agent(self.reactor, contextFactory=policy, pool=self.pool,
                                     connectTimeout=self.config.sender.timeout))
            self._agents[partner.id] = cached
        return cached[1]

    # -- service -----------------------------------------------------------------
    def startService(self):
        super().startService()
        requeued = self.store.recover_interrupted() if self._recover else 0
        if requeued:
            log.info("requeued {n} message(s) interrupted by the last shutdown", n=requeued)
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = self.reactor
        self._loop.start(self.config.sender.poll_interval, now=True).addErrback(
            lambda f: log.failure("sender loop stopped", f))

    @defer.inlineCallbacks
    def stopService(self):
        if self._loop and self._loop.running:
            self._loop.stop()
        if self._claim_done is not None:
            yield self._claim_done
        # In-flight sends finish (or time out) so their outcome is recorded; anything cut off
        # stays 'sending' and is requeued at the next start.
        if self._inflight:
            yield defer.DeferredList(list(self._inflight), consumeErrors=True)
        yield self.pool.closeCachedConnections()
        yield super().stopService()

    @defer.inlineCallbacks
    def tick(self):
        # One claim at a time: two overlapping claims could together take more than the free
        # slots. A tick asked for while one runs is folded into a second pass.
        if self._ticking:
            self._tick_again = True
            return
        self._ticking = True
        try:
            while True:
                self._tick_again = False
                yield self._claim_and_send()
                if not self._tick_again:
                    break
        finally:
            self._ticking = False

    @defer.inlineCallbacks
    def _claim_and_send(self):
        free = self.config.sender.concurrency - len(self._inflight)
        if free <= 0 or (self._loop is not None and not self._loop.running):   # full, or stopping
            return
        # Claimed rows are 'sending' before their sends exist: stopService waits for this
        # (then for the sends), so a SIGTERM mid-claim never leaves rows 'sending'.
        self._claim_done = claim_done = defer.Deferred()
        try:
            jobs = yield self._run_blocking(self.store.claim_due, free, self._now())
        except Exception:
            log.failure("could not read the outbound queue")
            return
        else:
            for job in jobs:
                d = self.send(job)
                self._inflight.add(d)
                d.addBoth(self._finished, d)
        finally:
            self._claim_done = None
            claim_done.callback(None)

    def _finished(self, result, d: defer.Deferred):
        """A slot is free again: look for the next due message now rather than at the next
        poll, so a backlog drains at the partner's pace, not at concurrency per poll interval."""
        self._inflight.discard(d)
        if self._loop is not None and self._loop.running:
            self.reactor.callLater(0, self.tick)
        return result

    # -- one attempt -------------------------------------------------------------
    @defer.inlineCallbacks
    def send(self, job: OutboundJob):
        partner = self.registry().get(job.partner_id)
        if partner is None:
            yield self._run_blocking(self._apply, job, Verdict(FAILED, f"partner {job.partner_id!r} is no "
                                                                  "longer configured"), None, None)
            return
        started = self._now()
        try:
            body = ContentProducer(job.body) if isinstance(job.body, FileContent) else job.body
            response = yield treq.post(partner.endpoint.encode(), data=body,
                                       headers={b"Content-Type": [job.content_type.encode("latin-1")],
                                                b"SOAPAction": [b'""']},
                                       agent=self._agent(partner), timeout=self.config.sender.timeout)
            body = yield response.content()
        except Exception as exc:
            # Connection refused, TLS failure, timeout: all retryable. After a timeout the
            # partner may hold the message; its receipt then comes with a later resend.
            transmitted = isinstance(exc, (defer.CancelledError, ResponseNeverReceived))
            reason = getattr(exc, "reasons", None) or [exc]
            detail = "; ".join(f"{type(getattr(r, 'value', r)).__name__}: {getattr(r, 'value', r)}"
                               for r in reason)
            if any(isinstance(getattr(r, "value", r), defer.CancelledError) for r in reason):
                detail = f"no answer within {self.config.sender.timeout:g}s (timeout)"
            yield self._run_blocking(self._apply, job, Verdict(RETRY, f"POST {partner.endpoint} failed: "
                                                                  f"{detail}"), None, None, transmitted)
            return
        content_type = (response.headers.getRawHeaders(b"content-type") or [b""])[0].decode("latin-1")
        elapsed = (self._now() - started).total_seconds()
        try:
            yield self._run_blocking(self._judge_and_apply, job, partner, response.code, content_type,
                                        body, elapsed)
        except Exception:
            log.failure("could not record the outcome of {message_id}", message_id=job.message_id)

    def _judge_and_apply(self, job, partner, code, content_type, body, elapsed):
        verdict = judge_response(job, partner, code, content_type, body)
        self._apply(job, verdict, (code, elapsed), (content_type, body), True)

    def _apply(self, job: OutboundJob, verdict: Verdict, http, answer, transmitted: bool = False) -> None:
        """Record an attempt's outcome (blocking; runs on a worker thread)."""
        partner = self.registry().get(job.partner_id)
        attempt = StepEvent("send", "ok" if http and http[0] < 300 else "error",
                            f"attempt {job.attempts}: " + (f"HTTP {http[0]} in {http[1]:.2f}s" if http
                                                           else verdict.detail))
        if verdict.outcome == DELIVERED:
            self.store.mark_delivered(job.pk, answer[1], answer[0],
                                      [attempt, StepEvent("receipt", "verified", verdict.detail)],
                                      receipt_message_id=verdict.receipt_message_id)
            self._report(job, "delivered", verdict.detail)
            log.info("delivered {message_id} to {partner}", message_id=job.message_id, partner=job.partner_id)
            return
        pmode = next((p for p in partner.pmodes if p.id == job.pmode_id), None) if partner else None
        events = [attempt] if not http else [attempt, StepEvent("answer", "rejected" if verdict.outcome == FAILED
                                                                else "invalid", verdict.detail)]
        now = self._now()
        if verdict.outcome == FAILED or pmode is None:
            detail = verdict.detail if pmode or verdict.outcome == FAILED else \
                f"PMode {job.pmode_id} is no longer configured for {job.partner_id}; last error: {verdict.detail}"
            if self.store.mark_failed(job.pk, detail, [*events, StepEvent("failed", "final", detail)]):
                self._report(job, "failed", detail, verdict.error_code)
            return
        # Reception awareness: another attempt, or give up with EBMS:0301 MissingReceipt
        # (EBMS:0302 InvalidReceipt when the last answer was a bad receipt), AS4 §3.2.
        decision = decide_retry(policy=pmode.retry, pmode_id=pmode.id, attempts=job.attempts,
                                retry_base=job.retry_base, since=job.retry_since or job.created_at, now=now,
                                last_error=verdict.detail, last_error_code=verdict.error_code,
                                jitter=random.uniform(*JITTER))
        if decision.gives_up:
            if self.store.mark_failed(job.pk, decision.detail, [*events, StepEvent("failed", "final", decision.detail)]):
                self._report(job, "failed", decision.detail, decision.error_code)
            return
        when = decision.next_attempt_at
        self.store.mark_retry(job.pk, verdict.detail, when,
                              [*events, StepEvent("retry", "scheduled",
                                                  f"attempt {job.attempts + 1} at {as4.format_timestamp(when)}")],
                              transmitted=transmitted)

    def _report(self, job: OutboundJob, status: str, detail: str, error_code: str | None = None) -> None:
        self.connector.report(message_id=job.message_id, reference=job.nsw_reference, partner_id=job.partner_id,
                              status=status, detail=detail, time=as4.format_timestamp(utcnow()),
                              error_code=error_code)
