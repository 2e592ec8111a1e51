"""The daemon's periodic evidence work: time-stamp the chain head, purge per retention, and
checkpoint the chain head outside the database.

The jobs are the CLI's (``swgw evidence timestamp|purge|checkpoint``) run on a schedule, on a
worker thread (TSA round trips, database and file work never block the reactor). A failing
job is logged and tried again at the next tick: a TSA that is down for an hour must not
stop time-stamping for good (``LoopingCall`` stops at the first unhandled failure).
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from twisted.application import service
from twisted.application.internet import TimerService
from twisted.internet import defer, task, threads
from twisted.logger import Logger

from gateway.config import EvidenceConfig, GatewayConfig
from gateway.evidence.checkpoint import (INTERVAL, STOP, Checkpoint, CheckpointError, Signer, checkpoint_dir,
                                         our_certificates, write_checkpoint)
from gateway.evidence.chain import TIMESTAMP, entry_data
from gateway.evidence.errors import EvidenceError
from gateway.evidence.purge import PurgeResult, purge
from gateway.evidence.timestamp import Timestamped, timestamp_head
from gateway.store.models import EvidenceEntry
from gateway.store.store import MessageStore

log = Logger()


def timestamp_if_new(store: MessageStore, settings: EvidenceConfig) -> Timestamped | None:
    """Time-stamp the head unless every entry other than a time-stamp is covered already
    (or the log is empty): a token over a token proves nothing new. Coverage, not "is the head
    a time-stamp": an entry appended while a TSA request was in flight sits *under* the new
    time-stamp entry and still needs the next one. Blocking."""
    with store.sessions() as s:
        latest = s.scalar(select(func.max(EvidenceEntry.seq)).where(EvidenceEntry.kind != TIMESTAMP))
        covered = max((entry_data(e).get("timestamped_seq", 0)
                       for e in s.scalars(select(EvidenceEntry).where(EvidenceEntry.kind == TIMESTAMP))),
                      default=0)
    if latest is None or latest <= covered:
        return None
    return timestamp_head(store, settings.tsa_url, settings.tsa_trust(), timeout=settings.tsa_timeout)


def run_timestamp(store: MessageStore, settings: EvidenceConfig) -> None:
    try:
        done = timestamp_if_new(store, settings)
    except (EvidenceError, OSError, SQLAlchemyError) as exc:
        log.error("scheduled evidence time-stamp failed, retried in {interval:g} s: {error}",
                  interval=settings.timestamp_interval, error=str(exc).splitlines()[0])
        return
    if done is not None:
        log.info("time-stamped evidence chain head seq {seq} at {time} (entry seq {entry})",
                 seq=done.covered.seq, time=done.token.gen_time.isoformat(), entry=done.entry.seq)


def run_purge(store: MessageStore, settings: EvidenceConfig) -> PurgeResult | None:
    try:
        result = purge(store, settings.retention_days)
    except (OSError, SQLAlchemyError) as exc:
        log.error("scheduled evidence purge failed, retried in {interval:g} s: {error}",
                  interval=settings.purge_interval, error=str(exc).splitlines()[0])
        return None
    if result.entry is not None:
        log.info("retention: purged {n} message(s) older than {days:g} days, {files} file(s) deleted "
                 "(evidence entry seq {seq})", n=len(result.messages), days=settings.retention_days,
                 files=result.deleted_files, seq=result.entry.seq)
    return result


class ThreadedJob(TimerService):
    """Runs a blocking job on the reactor's thread pool every ``interval`` seconds (first at start).

    ``clock`` and ``run_blocking`` are the reactor and ``deferToThread`` unless a test hands in
    a ``task.Clock`` and a synchronous runner, to drive the schedule tick by tick."""

    def __init__(self, name: str, interval: float, job, *args, clock=None, run_blocking=None):
        super().__init__(interval, self._tick)
        self.setName(name)
        self._job, self._args = job, args
        self._run_blocking = run_blocking or threads.deferToThread
        if clock is not None:
            self.clock = clock

    def _tick(self):
        d = defer.maybeDeferred(self._run_blocking, self._job, *self._args)
        d.addErrback(lambda f: log.failure("{name} crashed; tried again at the next tick", f, name=self.name))
        return d


def evidence_services(store: MessageStore, settings: EvidenceConfig) -> list[TimerService]:
    """The timer services ``[evidence]`` asks for (none, one or both)."""
    services: list[TimerService] = []
    if settings.scheduled_timestamps:
        services.append(ThreadedJob("evidence-timestamp", settings.timestamp_interval,
                                     run_timestamp, store, settings))
    if settings.scheduled_purge:
        services.append(ThreadedJob("evidence-purge", settings.purge_interval, run_purge, store, settings))
    return services


def run_checkpoint(write: Callable[[str], Checkpoint | None], reason: str) -> Checkpoint | None:
    """One checkpoint attempt (blocking); a refusal or failure is logged, never raised: the
    next tick tries again, and a refusal (damaged chain) repeats in the log until resolved."""
    try:
        done = write(reason)
    except (CheckpointError, OSError, SQLAlchemyError) as exc:
        log.error("evidence checkpoint not written: {error}", error=str(exc).splitlines()[0])
        return None
    if done is not None:
        log.info("evidence checkpoint {number} at chain seq {seq} {hash} written to {path} ({reason})",
                 number=done.number, seq=done.seq, hash=done.entry_hash, path=str(done.path), reason=reason)
    return done


class CheckpointService(service.MultiService):
    """The root of the daemon's tree: holds the working services, checkpoints the chain head
    every ``interval`` seconds (first at start, so a restart after a crash covers what the
    crash left), and once more after every child has stopped, so the final checkpoint covers
    the last receipt an in-flight send recorded. ``MultiService`` stops children side by
    side, so being their parent is the one place that sees them all finished.

    ``clock`` and ``run_blocking`` (default: the reactor and its thread pool) let the
    schedule be driven by ``twisted.internet.task.Clock`` in tests; ``on_stopped`` runs
    after the final checkpoint (the daemon closes the store there)."""

    name = "evidence-checkpoint"

    def __init__(self, write: Callable[[str], Checkpoint | None], interval: float, *, clock=None,
                 run_blocking: Callable[..., defer.Deferred] | None = None,
                 on_stopped: Callable[[], None] | None = None):
        super().__init__()
        self._write, self.interval = write, interval
        self.clock = clock
        self._run = run_blocking or threads.deferToThread
        self._on_stopped = on_stopped
        self._loop: task.LoopingCall | None = None
        self._loop_done: defer.Deferred | None = None

    def _tick(self, reason: str = INTERVAL) -> defer.Deferred:
        d = self._run(run_checkpoint, self._write, reason)
        d.addErrback(lambda f: log.failure("evidence checkpoint crashed; tried again at the next tick", f))
        return d

    def startService(self):
        super().startService()
        from twisted.internet import reactor
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.clock or reactor
        self._loop_done = self._loop.start(self.interval, now=True)
        self._loop_done.addErrback(lambda f: log.failure("evidence checkpoint schedule stopped", f))

    @defer.inlineCallbacks
    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()               # fires _loop_done once a running tick has finished
        if self._loop_done is not None:
            yield self._loop_done
        yield super().stopService()
        yield self._tick(STOP)
        if self._on_stopped is not None:
            self._on_stopped()


def with_checkpoints(working: service.IService, store: MessageStore, config: GatewayConfig, identity,
                     clock=None) -> CheckpointService:
    """``working`` (the daemon's service tree) under a CheckpointService signing with our
    [security] key into ``<state_dir>/evidence-checkpoints``."""
    directory = checkpoint_dir(config.state_dir)
    signer, certs = Signer.from_identity(identity), our_certificates(identity)
    root = CheckpointService(lambda reason: write_checkpoint(store, directory, signer, certs, reason),
                             config.evidence.checkpoint_interval, clock=clock, on_stopped=store.close)
    working.setServiceParent(root)
    return root
