"""Worker processes ([gateway] workers): real daemons on 127.0.0.1 with mutual TLS.

A worker is proven to carry traffic by stopping the main process (SIGSTOP): messages sent
meanwhile are still received, answered and delivered, so another process must be taking the
connections on the shared socket. Then: a partner reload reaches the workers, SIGTERM stops
them with the main process, and a worker whose main process was SIGKILLed stops itself.
"""
from __future__ import annotations

import os
import signal

import pytest

from gateway.connectors.folder_client import drop_document, inbox_entries, report_for
from tests.harness import Daemon, swgw, wait_for, write_pair

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads worker processes from /proc")


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (its workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


@pytest.fixture
def nodes(tmp_path, pki):
    a, b = write_pair(tmp_path, pki, workers=2, attempts=100, interval=0.2, max_interval=0.5)
    return a, b


def test_a_worker_takes_connections_while_the_main_process_cannot(nodes):
    a, b = nodes
    da, db = Daemon(a).start(), Daemon(b).start()
    ca, cb = a.config(), b.config()
    try:
        (worker,) = wait_for(lambda: children(db.process.pid), what="b's worker process")
        wait_for(lambda: b"takes AS4 connections" in db.log.read_bytes(), what="b's worker serving")
        drop_document(ca.folder.outbox, "first.xml", b"<doc>first</doc>", partner="bb-nsw",
                      document_type="test-cert", reference="W-FIRST")
        wait_for(lambda: (report_for(ca.folder.reports, "W-FIRST") or {}).get("status") == "delivered",
                 what="the first delivery")
        os.kill(db.process.pid, signal.SIGSTOP)        # b's main process takes no connection now
        try:
            refs = [f"W-{i}" for i in range(6)]
            for ref in refs:
                drop_document(ca.folder.outbox, f"{ref}.xml", f"<doc>{ref}</doc>".encode(), partner="bb-nsw",
                              document_type="test-cert", reference=ref)
            wait_for(lambda: all((report_for(ca.folder.reports, r) or {}).get("status") == "delivered"
                                 for r in refs), what="deliveries by b's worker alone")
            assert {e["reference"] for e in inbox_entries(cb.folder.inbox)} >= set(refs)
        finally:
            os.kill(db.process.pid, signal.SIGCONT)
        assert alive(worker)
    finally:
        da.stop()
        db.stop()
    assert not alive(worker), "SIGTERM to the main process stops its workers"
    done = swgw("evidence", "verify", "-c", str(b.config_path), check=False)
    assert done.returncode == 0, done.stderr


def test_a_reload_reaches_the_workers(nodes):
    a, b = nodes
    db = Daemon(b).start()
    try:
        (worker,) = wait_for(lambda: children(db.process.pid), what="b's worker process")
        wait_for(lambda: b"takes AS4 connections" in db.log.read_bytes(), what="b's worker serving")
        done = swgw("partners", "reload", "-c", str(b.config_path))
        assert "aa-nsw" in done.stdout
        wait_for(lambda: db.log.read_text().count("partners reloaded") >= 2, what="the worker's reload too")
    finally:
        db.stop()


def test_a_worker_stops_when_its_main_process_is_killed(nodes):
    _, b = nodes
    db = Daemon(b).start()
    (worker,) = wait_for(lambda: children(db.process.pid), what="b's worker process")
    db.kill()
    wait_for(lambda: not alive(worker), what="the orphaned worker to stop")
