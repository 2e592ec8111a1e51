"""Polls the NSW outbox folder and feeds each document into the outbound pipeline."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import SQLAlchemyError
from twisted.application.internet import TimerService
from twisted.internet import defer, threads
from twisted.logger import Logger

from gateway import as4
from gateway.connectors.folder import FolderConnector, OutboxError
from gateway.outbound import DocumentRejected, OutboundPipeline, Submission, SubmissionRejected
from gateway.store.store import DuplicateMessage

log = Logger()


#: Documents prepared (signed, encrypted) before their records are committed together: one
#: commit for the batch, yet the first of a large drop is queued (and sent) without waiting
#: for the last to be signed.
BATCH = 32


def drain_outbox(connector: FolderConnector, pipeline: OutboundPipeline, party_domain: str,
                 batch: int = BATCH) -> int:
    """Submit every committed outbox document (blocking). Claims left by a crash are resumed
    with the MessageId derived from their claim, so a document is never queued twice."""
    names = connector.claimed() + connector.claim_new()
    return sum(_drain_batch(connector, pipeline, party_domain, names[i:i + batch])
               for i in range(0, len(names), batch))


def _drain_batch(connector: FolderConnector, pipeline: OutboundPipeline, party_domain: str,
                 names: list[str]) -> int:
    pending = []
    for name in names:
        item = None
        try:
            item = connector.read_claimed(name)
            prepared = pipeline.prepare(Submission(
                partner_id=item.partner, document_type=item.document_type, document=item.document,
                nsw_reference=item.reference, message_id=connector.message_id_for(item, party_domain)))
            pending.append((name, item, pipeline.record_later(prepared)))
        except Exception as exc:  # noqa: BLE001 (sorted out by _settle_failed)
            _settle_failed(connector, name, item, exc)
    count = 0
    for name, item, recorded in pending:
        try:
            recorded.result()
        except DuplicateMessage:
            pass  # queued before a crash interrupted the archiving
        except Exception as exc:  # noqa: BLE001
            _settle_failed(connector, name, item, exc)
            continue
        connector.archive(name)
        count += 1
    return count


def _settle_failed(connector: FolderConnector, name: str, item, exc: Exception) -> None:
    """What becomes of an outbox document that could not be queued."""
    if isinstance(exc, DuplicateMessage):
        connector.archive(name)                  # queued before a crash interrupted the archiving
    elif isinstance(exc, (OutboxError, SubmissionRejected)):
        log.warn("outbox document {name} rejected: {error}", name=name, error=str(exc))
        if isinstance(exc, DocumentRejected):
            # Recorded as a message: the NSW gets a report like for any other outcome.
            connector.report(message_id=exc.message_id, reference=item.reference, partner_id=item.partner,
                             status="rejected", detail=str(exc),
                             time=as4.format_timestamp(dt.datetime.now(dt.timezone.utc)))
        connector.archive(name, error=str(exc))
    elif isinstance(exc, (OSError, SQLAlchemyError)):
        # The store is full, read-only or unreachable: nothing was queued (large blobs are
        # written before the one DB transaction), the claim stays and is retried next poll.
        # (An outbox entry that cannot be read is an OutboxError above, never this.)
        log.error("cannot queue outbox document {name}: the store is not writable ({error}); "
                  "it stays in the outbox and is retried: free disk space or fix the store",
                  name=name, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    else:
        # Anything unforeseen (a library error on odd input, a bug): set this document aside
        # with the reason so the documents behind it still go out, and keep the traceback.
        log.failure("outbox document {name} could not be processed", name=name)
        connector.archive(name, error=f"could not be processed ({type(exc).__name__}: {exc}); nothing was "
                                      "sent. The gateway log has the details; fix the cause, then drop the "
                                      "document into the outbox again")


class OutboxPoller(TimerService):
    """Drains the outbox every ``interval`` seconds on a worker thread. ``clock`` and
    ``run_blocking`` are the reactor and ``deferToThread`` unless a test drives the polls on a
    ``task.Clock`` with a synchronous runner."""

    def __init__(self, connector: FolderConnector, pipeline: OutboundPipeline, party_domain: str,
                 interval: float, *, clock=None, run_blocking=None):
        super().__init__(interval, self._poll)
        self.connector, self.pipeline, self.party_domain = connector, pipeline, party_domain
        self._run_blocking = run_blocking or threads.deferToThread
        if clock is not None:
            self.clock = clock

    def _poll(self):
        d = defer.maybeDeferred(self._run_blocking, drain_outbox, self.connector, self.pipeline, self.party_domain)
        d.addErrback(lambda f: log.failure("outbox poll failed", f))
        return d
