"""The daemon's periodic evidence work: time-stamp the chain head, purge per retention.

Both jobs are the CLI's (``swgw evidence timestamp|purge``) run from ``TimerService``s, on a
worker thread (TSA round trips, database and file work never block the reactor). A failing
job is logged and tried again at the next tick: a TSA that is down for an hour must not
stop time-stamping for good (``LoopingCall`` stops at the first unhandled failure).
"""
from __future__ import annotations


from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from twisted.application.internet import TimerService
from twisted.internet import threads
from twisted.logger import Logger

from gateway.config import EvidenceConfig
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


class _ThreadedJob(TimerService):
    """Runs a blocking job on the reactor's thread pool every ``interval`` seconds (first at start)."""

    def __init__(self, name: str, interval: float, job, *args):
        super().__init__(interval, self._tick)
        self.setName(name)
        self._job, self._args = job, args

    def _tick(self):
        d = threads.deferToThread(self._job, *self._args)
        d.addErrback(lambda f: log.failure("{name} crashed; tried again at the next tick", f, name=self.name))
        return d


def evidence_services(store: MessageStore, settings: EvidenceConfig) -> list[TimerService]:
    """The timer services ``[evidence]`` asks for (none, one or both)."""
    services: list[TimerService] = []
    if settings.scheduled_timestamps:
        services.append(_ThreadedJob("evidence-timestamp", settings.timestamp_interval,
                                     run_timestamp, store, settings))
    if settings.scheduled_purge:
        services.append(_ThreadedJob("evidence-purge", settings.purge_interval, run_purge, store, settings))
    return services
