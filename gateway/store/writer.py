"""Group commit: the store's writes from every thread of the process, committed together.

Each write is a function of a session. Callers (the inbound pipeline's worker threads, the
sender, the outbox drain) hand theirs to one writer thread and wait; the writer takes every
write that is waiting, runs them in *one* transaction and commits once. On SQLite with
``synchronous=FULL`` a commit is an fsync of the WAL, so messages that arrive together share
one fsync and one lock hand-over instead of paying one each; a caller returns only once its
write is durable, so no receipt leaves before its message is stored.

If one write of a group raises (a duplicate MessageId, an AEO list that does not apply), the
group is rolled back and each of its writes is run again in a transaction of its own, so
the failure reaches only its own caller and the others commit as if alone. (SAVEPOINTs would
avoid the rerun, but pysqlite's transaction handling does not mix with them.)

This is PostgreSQL's ``commit_delay`` idea done in the application: no library offers it for
SQLAlchemy sessions, so it is written here.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

from sqlalchemy.orm import Session, sessionmaker
from twisted.logger import Logger

T = TypeVar("T")
log = Logger()

_STOP = object()


class GroupCommitWriter:
    def __init__(self, sessions: sessionmaker, *, max_group: int = 256, name: str = "store-writer"):
        self._sessions = sessions
        self._max_group = max_group
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        #: Groups committed and writes in them, for the benchmark's and the tests' eyes.
        self.groups = 0
        self.writes = 0

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in the next group's transaction; return its result once committed."""
        if threading.current_thread() is self._thread:
            # A write issued from inside a write (never done on purpose) would wait for itself.
            raise RuntimeError("a store write cannot wait for another write from the writer thread")
        return self.submit(work).result()

    def submit(self, work: Callable[[Session], T]) -> "Future[T]":
        if self._closed:
            raise RuntimeError("the store is closed")
        self._ensure_thread()
        future: Future = Future()
        self._queue.put((work, future))
        return future

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join()

    # -- the writer thread -------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            group = [item]
            stop = False
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                group.append(item)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list) -> None:
        group = [(work, fut) for work, fut in group if fut.set_running_or_notify_cancel()]
        if not group:
            return
        results = []
        try:
            with self._sessions.begin() as session:
                for work, _ in group:
                    results.append(work(session))
        except BaseException as exc:  # noqa: BLE001 (delivered to the callers, never lost)
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            for work, fut in group:     # one write failed: each again on its own
                self._commit_alone(work, fut)
            return
        self.groups += 1
        self.writes += len(group)
        for (_, fut), result in zip(group, results):
            fut.set_result(result)

    def _commit_alone(self, work, fut: Future) -> None:
        try:
            with self._sessions.begin() as session:
                result = work(session)
        except BaseException as exc:  # noqa: BLE001
            fut.set_exception(exc)
        else:
            self.groups += 1
            self.writes += 1
            fut.set_result(result)
