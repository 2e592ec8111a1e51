"""Worker processes: one daemon's AS4 traffic on every core.

CPython runs one thread of Python at a time, so one process uses one core for the XML and
crypto work however many threads it has. ``[gateway] workers = N`` makes ``swgw serve`` (the
*main* process) start N-1 workers: each is ``swgw serve --worker`` on the same config, accepts
AS4 connections on the main process's listening socket (inherited: the kernel hands each new
connection to one of the processes waiting on it) and sends due messages. They share the
store: the database arbitrates (claims are conditional updates, duplicates are refused by
the unique key), as it does between nodes. What must run once stays in the main process:
the outbox poller, the NSW API, the NSW redelivery at start, recovery of interrupted sends,
the evidence jobs and checkpoints, the pid file.

The main process forwards SIGHUP (partner reload) to the workers and, on SIGTERM, stops them
and waits for them before it closes its own store; a worker that dies is started again after
``RESPAWN_DELAY`` seconds, and a worker whose main process is gone (SIGKILL) stops itself.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from twisted.application import service
from twisted.internet import defer, protocol, task
from twisted.logger import Logger

log = Logger()

RESPAWN_DELAY = 1.0
WORKER_FD_ENV = "SWGW_WORKER_AS4_FD"
MAIN_PID_ENV = "SWGW_MAIN_PID"


class _WorkerProtocol(protocol.ProcessProtocol):
    def __init__(self, pool: "WorkerPool", index: int):
        self.pool, self.index = pool, index
        self.ended = defer.Deferred()

    def processEnded(self, reason):
        self.pool._ended(self, reason.value.exitCode, reason.value.signal)
        self.ended.callback(None)


class WorkerPool(service.Service):
    """In the main process: starts, watches, reloads and stops the N-1 workers."""
    name = "workers"

    def __init__(self, config_path: Path, count: int, as4_fd: int, reactor):
        self.config_path, self.count, self.as4_fd, self.reactor = Path(config_path), count, as4_fd, reactor
        self._workers: dict[int, tuple[_WorkerProtocol, object]] = {}
        self._stopping = False

    def startService(self):
        super().startService()
        for index in range(1, self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        env = dict(os.environ, **{WORKER_FD_ENV: str(self.as4_fd), MAIN_PID_ENV: str(os.getpid())})
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            env.pop(name, None)     # the socket is passed by number; systemd's variables are ours
        proto = _WorkerProtocol(self, index)
        args = [sys.executable, "-m", "gateway.cli", "serve", "-c", str(self.config_path), "--worker", str(index)]
        transport = self.reactor.spawnProcess(proto, sys.executable, args, env=env,
                                              childFDs={0: 0, 1: 1, 2: 2, self.as4_fd: self.as4_fd})
        self._workers[index] = (proto, transport)
        log.info("started worker {index} (pid {pid})", index=index, pid=transport.pid)

    def _ended(self, proto: _WorkerProtocol, code, sig) -> None:
        self._workers.pop(proto.index, None)
        if self._stopping:
            return
        log.error("worker {index} ended (exit code {code}, signal {sig}); starting it again in {delay:g}s",
                  index=proto.index, code=code, sig=sig, delay=RESPAWN_DELAY)
        self.reactor.callLater(RESPAWN_DELAY, self._respawn, proto.index)

    def _respawn(self, index: int) -> None:
        if not self._stopping and index not in self._workers:
            self._spawn(index)

    def signal_all(self, signum: int) -> None:
        for _proto, transport in list(self._workers.values()):
            try:
                transport.signalProcess(signum)
            except Exception:  # noqa: BLE001 (already gone: its processEnded follows)
                pass

    def reload(self) -> None:
        """A partner reload reaches every worker (each reloads its own registry)."""
        self.signal_all(signal.SIGHUP)

    @defer.inlineCallbacks
    def stopService(self):
        self._stopping = True
        ended = [proto.ended for proto, _ in self._workers.values()]
        self.signal_all(signal.SIGTERM)
        if ended:
            yield defer.DeferredList(ended)
        yield defer.maybeDeferred(super().stopService)


class MainWatch(service.Service):
    """In a worker: stop when the main process is gone (it was SIGKILLed), so no orphan keeps
    serving or sending beside the main process that is started next."""
    name = "main-watch"

    def __init__(self, main_pid: int, reactor, interval: float = 1.0):
        self.main_pid, self.reactor = main_pid, reactor
        self._loop = task.LoopingCall(self._check)
        self._loop.clock = reactor
        self.interval = interval

    def startService(self):
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self):
        if self._loop.running:
            self._loop.stop()
        return super().stopService()

    def _check(self) -> None:
        if os.getppid() != self.main_pid:
            log.error("the main swgw process {pid} is gone; this worker stops", pid=self.main_pid)
            self._loop.stop()
            self.reactor.stop()
