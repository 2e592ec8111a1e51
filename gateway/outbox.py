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


def drain_outbox(connector: FolderConnector, pipeline: OutboundPipeline, party_domain: str) -> int:
    """Submit every committed outbox document (blocking). Claims left by a crash are resumed
    with the MessageId fixed at their first claim, so a document is never queued twice."""
    count = 0
    for name in connector.claimed() + connector.claim_new():
        try:
            item = connector.read_claimed(name)
            message_id = connector.message_id_for(item, lambda: as4.new_message_id(party_domain))
            pipeline.submit(Submission(partner_id=item.partner, document_type=item.document_type,
                                       document=item.document, nsw_reference=item.reference,
                                       message_id=message_id))
        except DuplicateMessage:
            pass  # queued before a crash interrupted the archiving
        except (OutboxError, SubmissionRejected) as exc:
            log.warn("outbox document {name} rejected: {error}", name=name, error=str(exc))
            if isinstance(exc, DocumentRejected):
                # Recorded as a message: the NSW gets a report like for any other outcome.
                connector.report(message_id=exc.message_id, reference=item.reference, partner_id=item.partner,
                                 status="rejected", detail=str(exc),
                                 time=as4.format_timestamp(dt.datetime.now(dt.timezone.utc)))
            connector.archive(name, error=str(exc))
            continue
        except (OSError, SQLAlchemyError) as exc:
            # The store is full, read-only or unreachable: nothing was queued (files are
            # written before the one DB transaction), the claim stays and is retried next poll.
            # (An outbox entry that cannot be read is an OutboxError above, never this.)
            log.error("cannot queue outbox document {name}: the store is not writable ({error}); "
                      "it stays in the outbox and is retried: free disk space or fix the store",
                      name=name, error=str(exc).splitlines()[0])
            continue
        except Exception as exc:  # noqa: BLE001
            # Anything unforeseen (a library error on odd input, a bug): set this document aside
            # with the reason so the documents behind it still go out, and keep the traceback.
            log.failure("outbox document {name} could not be processed", name=name)
            connector.archive(name, error=f"could not be processed ({type(exc).__name__}: {exc}); nothing was "
                                          "sent. The gateway log has the details; fix the cause, then drop the "
                                          "document into the outbox again")
            continue
        connector.archive(name)
        count += 1
    return count


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
