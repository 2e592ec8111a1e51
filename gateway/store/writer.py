"""Group commit: the store's writes from every thread of the process, committed together.

Each write is a function of a session. A thread with a write appends it to the pending list
and then waits for the *commit lock*. Whoever holds that lock (the leader) takes every write
pending at that moment, runs them in one transaction and commits once; the threads that
queued up meanwhile find their writes done when they get the lock, or lead the next group.
On SQLite with ``synchronous=FULL`` a commit is an fsync of the WAL, so messages that arrive
together share one fsync instead of paying one each, and a caller returns only once its write
is durable, so no receipt leaves before its message is stored. Alone, a thread just commits
its own write: no hand-over to another thread (each costs a GIL switch and a wake-up).

If one write of a group raises (a duplicate MessageId, an AEO list that does not apply), the
group is rolled back and each of its writes is run again in a transaction of its own, so the
failure reaches only its own caller and the others commit as if alone. (SAVEPOINTs would
avoid the rerun, but pysqlite's transaction handling does not mix with them.)

This is the leader/follower group commit of PostgreSQL's WAL writer and MySQL's binlog done in
the application: SQLAlchemy has nothing like it, so it is written here.
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

_UNSET = object()


class PendingWrite(Generic[T]):
    """A write handed to the writer; ``result()`` waits for (or leads) the commit that holds it."""

    def __init__(self, writer: "GroupCommitWriter", work: Callable[[Session], T]):
        self.writer, self.work = writer, work
        self._value: object = _UNSET
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._value is not _UNSET or self._error is not None

    def result(self) -> T:
        if not self.done():
            self.writer._lead_until_done(self)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def _settle(self, value: object = _UNSET, error: BaseException | None = None) -> None:
        self._value, self._error = value, error


class GroupCommitWriter:
    def __init__(self, sessions: sessionmaker, *, max_group: int = 256):
        self._sessions = sessions
        self._max_group = max_group
        self._pending: list[PendingWrite] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._leading = threading.local()
        self._closed = False
        #: Groups committed and writes in them, for the benchmark's and the tests' eyes.
        self.groups = 0
        self.writes = 0

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in the next group's transaction; return its result once committed."""
        return self.submit(work).result()

    def submit(self, work: Callable[[Session], T]) -> PendingWrite[T]:
        """Queue a write without waiting; its ``result()`` commits it (with whatever else is
        pending), so a caller with many writes submits them all and then waits for each."""
        if self._closed:
            raise RuntimeError("the store is closed")
        if getattr(self._leading, "active", False):
            # A write issued from inside a write (never done on purpose) would wait for itself.
            raise RuntimeError("a store write cannot be issued from inside another write")
        pending = PendingWrite(self, work)
        with self._pending_lock:
            self._pending.append(pending)
        return pending

    def close(self) -> None:
        """Commit what is pending; later writes are refused."""
        self._closed = True
        with self._commit_lock:
            self._commit_pending()

    # -- the leader ----------------------------------------------------------------------
    def _lead_until_done(self, mine: PendingWrite) -> None:
        while not mine.done():
            with self._commit_lock:     # while another thread commits, this one queues up behind it
                if not mine.done():
                    self._commit_pending()

    def _commit_pending(self) -> None:
        with self._pending_lock:
            group, self._pending = self._pending[:self._max_group], self._pending[self._max_group:]
        if group:
            self._leading.active = True
            try:
                self._commit(group)
            finally:
                self._leading.active = False

    def _commit(self, group: list[PendingWrite]) -> None:
        results = []
        try:
            with self._sessions.begin() as session:
                for pending in group:
                    results.append(pending.work(session))
        except BaseException as exc:  # noqa: BLE001 (delivered to the callers, never lost)
            if len(group) == 1:
                group[0]._settle(error=exc)
                return
            for pending in group:       # one write failed: each again on its own
                self._commit_alone(pending)
            return
        self.groups += 1
        self.writes += len(group)
        for pending, result in zip(group, results):
            pending._settle(result)

    def _commit_alone(self, pending: PendingWrite) -> None:
        try:
            with self._sessions.begin() as session:
                result = pending.work(session)
        except BaseException as exc:  # noqa: BLE001
            pending._settle(error=exc)
        else:
            self.groups += 1
            self.writes += 1
            pending._settle(result)
