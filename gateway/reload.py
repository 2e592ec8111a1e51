"""Partner hot reload: ``swgw partners reload`` (or SIGHUP) makes a running daemon re-read
``conf/partners/`` without a restart.

Why a pid file and a status file: the operator's command and the daemon are different
processes. The daemon writes its pid to ``<state_dir>/swgw.pid`` at start; the command sends
SIGHUP to it and waits for ``<state_dir>/partners-reload.json``, which the daemon rewrites
after every reload attempt, so the operator sees whether the new partners are live or why not.
The daemon loads the whole partners tree first and swaps it in only if it is valid; on any
problem the old registry stays in use and the problems are logged and reported.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from twisted.internet import threads
from twisted.logger import Logger

from gateway.connectors.folder import atomic_write

PID_FILE = "swgw.pid"
STATUS_FILE = "partners-reload.json"
log = Logger()


@dataclass(frozen=True)
class ReloadStatus:
    ok: bool
    time: float
    partners: list[str]
    errors: list[str] = field(default_factory=list)
    pid: int = field(default_factory=os.getpid)


def write_pid(state_dir: Path) -> Path:
    path = Path(state_dir) / PID_FILE
    atomic_write(path, f"{os.getpid()}\n".encode())
    return path


def remove_pid(state_dir: Path) -> None:
    path = Path(state_dir) / PID_FILE
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def write_status(state_dir: Path, status: ReloadStatus) -> None:
    atomic_write(Path(state_dir) / STATUS_FILE, json.dumps(asdict(status), indent=2).encode("utf-8"))


def read_status(state_dir: Path) -> dict | None:
    try:
        return json.loads((Path(state_dir) / STATUS_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def install_sighup(reload: Callable[[], ReloadStatus], reactor) -> None:
    """SIGHUP -> ``reload`` in a worker thread (loading compiles stylesheets and reads
    certificates; the reactor must keep serving meanwhile). Call from the main thread."""
    def run():
        d = threads.deferToThread(reload)
        d.addErrback(lambda f: log.failure("partner reload failed", f))

    signal.signal(signal.SIGHUP, lambda _signum, _frame: reactor.callFromThread(run))


class ReloadRequestError(RuntimeError):
    """The reload could not be requested (no running daemon); the message says what to do."""


def _is_swgw(pid: int) -> bool:
    """Whether ``pid`` runs swgw, so a pid reused after a crash is never sent SIGHUP (which
    would end an unrelated process). Where /proc is missing we cannot tell and trust the file."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"swgw" in cmdline or b"gateway.cli" in cmdline


def request_reload(state_dir: Path, timeout: float = 30.0) -> dict:
    """Signal the daemon owning ``state_dir`` and wait for its reload status."""
    state_dir = Path(state_dir)
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        raise ReloadRequestError(f"no running daemon: {state_dir / PID_FILE} is missing or unreadable; "
                                 "start it with `swgw serve -c <config>`") from None
    if not _is_swgw(pid):
        raise ReloadRequestError(f"process {pid} named in {state_dir / PID_FILE} is not a swgw daemon (stale pid "
                                 "file after a crash?); start the daemon with `swgw serve -c <config>`")
    before = read_status(state_dir)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ReloadRequestError(f"no daemon with pid {pid} (stale {state_dir / PID_FILE}); "
                                 "start it with `swgw serve -c <config>`") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(state_dir)
        if status is not None and status != before and status.get("pid") == pid:
            return status
        time.sleep(0.05)
    raise ReloadRequestError(f"daemon {pid} did not report a reload within {timeout:.0f}s; see its log")
