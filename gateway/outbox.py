"""Polls the NSW outbox folder and feeds each document into the outbound pipeline."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError
from twisted.application.internet import TimerService
from twisted.internet import defer, threads
from twisted.logger import Logger

from gateway import as4
from gateway.connectors.folder import META_SUFFIX, FolderConnector, OutboxError
from gateway.outbound import DocumentRejected, OutboundPipeline, Submission, SubmissionRejected
from gateway.store.store import DuplicateMessage

log = Logger()


#: Documents prepared (signed, encrypted) before their records are committed together: one
#: commit for the batch, yet the first of a large drop is queued (and sent) without waiting
#: for the last to be signed.
BATCH = 32


def drain_outbox(connector: FolderConnector, pipeline: OutboundPipeline, party_domain: str,
                 batch: int = BATCH, queued: Callable[[], None] | None = None) -> int:
    """Submit every committed outbox document (blocking). Claims left by a crash are resumed
    with the MessageId derived from their claim, so a document is never queued twice.
    ``queued`` is called after each batch that queued at least one message."""
    names = connector.claimed() + connector.claim_new()
    total = 0
    for i in range(0, len(names), batch):
        count = _drain_batch(connector, pipeline, party_domain, names[i:i + batch])
        total += count
        if count and queued is not None:
            queued()
    return total


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
    """Drains the outbox every ``interval`` seconds on a worker thread, and at once when a
    metadata file (the NSW's commit marker) arrives, where the platform tells us (Linux
    inotify): a document then waits for no poll. One drain runs at a time; a trigger during
    a drain makes it run once more. ``queued`` is called (from the drain's thread) after each
    batch that queued messages, so the sender need not wait for its own poll either.
    ``clock`` and ``run_blocking`` are the reactor and ``deferToThread`` unless a test drives
    the polls on a ``task.Clock`` with a synchronous runner."""

    def __init__(self, connector: FolderConnector, pipeline: OutboundPipeline, party_domain: str,
                 interval: float, *, clock=None, run_blocking=None, queued: Callable[[], None] | None = None,
                 watch: bool = True):
        super().__init__(interval, self._poll)
        self.connector, self.pipeline, self.party_domain = connector, pipeline, party_domain
        self._run_blocking = run_blocking or threads.deferToThread
        self._queued = queued
        self._watch = watch
        self._notifier = None
        self._busy = self._again = False
        if clock is not None:
            self.clock = clock

    def startService(self):
        super().startService()
        if self._watch:
            self._notifier = _watch_outbox(self.connector.config.outbox, self._poll)

    def stopService(self):
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None
        return super().stopService()

    def _poll(self):
        if self._busy:
            self._again = True
            return None
        self._busy = True
        return self._drain()

    @defer.inlineCallbacks
    def _drain(self):
        try:
            while True:
                self._again = False
                try:
                    yield defer.maybeDeferred(self._run_blocking, drain_outbox, self.connector, self.pipeline,
                                              self.party_domain, queued=self._queued)
                except Exception:  # noqa: BLE001 (logged; the next poll tries again)
                    log.failure("outbox poll failed")
                if not self._again or not self.running:
                    break
        finally:
            self._busy = False


def _watch_outbox(outbox: Path, poll: Callable[[], object]):
    """An inotify watch that calls ``poll`` when a metadata file is renamed into (or written
    in) the outbox; None where inotify is not available (the timer still polls)."""
    try:
        from twisted.internet import inotify
        from twisted.python.filepath import FilePath
        notifier = inotify.INotify()
        notifier.startReading()
    except Exception:  # noqa: BLE001 (not Linux, or no inotify instances left: polling only)
        return None

    def changed(_watch, path, _mask):
        if path.basename().endswith(META_SUFFIX.encode() if isinstance(path.basename(), bytes) else META_SUFFIX):
            poll()
    try:
        notifier.watch(FilePath(str(outbox)), mask=inotify.IN_MOVED_TO | inotify.IN_CLOSE_WRITE, callbacks=[changed])
    except Exception:  # noqa: BLE001
        notifier.loseConnection()
        return None
    return notifier
