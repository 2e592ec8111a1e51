"""Reliability: crashes, a partner that is down, failing, slow or hanging, and operator actions.

Real daemons on 127.0.0.1; misbehaving partners are small HTTP servers in this process.
"""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.connectors.folder_client import drop_document, inbox_entries, report_for
from gateway.store.store import MessageStore
from tests.harness import Daemon, reserve_port, server_socket, swgw, wait_for, write_node, write_pair


def _store(node) -> MessageStore:
    config = node.config()
    return MessageStore(config.database_url, config.blob_dir)


def _trace(node, ref: str) -> dict:
    out = swgw("trace", "-c", str(node.config_path), "--ref", ref, "--json", check=False).stdout
    return json.loads(out) if out.strip() else {}


@pytest.mark.parametrize("workers, backend", [(1, "sqlite"), (2, "sqlite"), (2, "postgresql")],
                         ids=["one-process", "two-workers", "two-workers-postgresql"])
def test_crash_test_200_messages_sigkill_both_sides(request, tmp_path, pki, workers, backend):
    """SIGKILL sender and receiver at random moments: nothing lost, nothing duplicated. With two
    workers the SIGKILL hits the main process only; its worker, still sending and receiving
    beside the restarted main process for up to a second, must not break that either."""
    n = 200
    urls = None
    if backend == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        urls = cluster.new_database(), cluster.new_database()
    a, b = write_pair(tmp_path, pki, attempts=100, interval=0.2, max_interval=1.0, workers=workers,
                      database_urls=urls)
    da, db = Daemon(a).start(), Daemon(b).start()
    ca, cb = a.config(), b.config()
    try:
        for i in range(n):
            drop_document(ca.folder.outbox, f"doc-{i:03}.xml", f"<manifest n='{i}'/>".encode(),
                          partner="bb-nsw", document_type="test-manifest", reference=f"R{i:03}")
        rng = random.Random(20261123)
        store = _store(a)
        in_flight_at_kill = []

        def delivered() -> int:
            return len(store.list_messages(status="delivered", limit=1000))

        # Kill points by progress, not by time: whatever the machine's speed, every kill falls
        # while messages are on their way (a restart delivers nothing until it is up again).
        for target in (5, 20, 40, 60, 80, 100, 120, 140):
            wait_for(lambda: delivered() >= target, interval=0.02, what=f"{target} deliveries")
            victim = rng.choice([da, db])
            in_flight_at_kill.append(n - delivered())
            victim.kill()
            victim.start()
        # the kills hit while messages were still on their way, not after the fact
        assert sum(1 for pending in in_flight_at_kill if pending > 0) >= 4, in_flight_at_kill
        wait_for(lambda: delivered() == n, interval=0.5, what=f"all {n} messages delivered")
    finally:
        da.stop()
        db.stop()
    outbound = store.list_messages(limit=1000)
    assert len(outbound) == n and {m.status for m in outbound} == {"delivered"}
    assert len({m.message_id for m in outbound}) == n
    entries = inbox_entries(cb.folder.inbox)
    assert sorted(e["reference"] for e in entries) == [f"R{i:03}" for i in range(n)]   # each exactly once
    for e in entries:
        n_attr = int(e["reference"][1:])
        assert (cb.folder.inbox / e["document"]).read_bytes() == f"<manifest n='{n_attr}'/>".encode()
    inbound = _store(b).list_messages(limit=1000)
    assert len(inbound) == n and {m.direction for m in inbound} == {"in"}
    assert not list((ca.folder.outbox / ".processing").iterdir())
    assert len(list((ca.folder.outbox / "sent").glob("*.meta.json"))) == n


class _Misbehaving(BaseHTTPRequestHandler):
    """Answers each POST with the next behaviour in ``script``: an HTTP status, garbage, or a hang."""
    script: list = []
    seen: list = []
    release = threading.Event()       # a "hang" lasts until the test sets it

    bodies: list = []

    def do_POST(self):
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        behaviour = self.script.pop(0) if self.script else 503
        self.seen.append(behaviour)
        if behaviour == "hang":
            self.release.wait(120)     # far past the sender's timeout, however slow the machine
            return
        if behaviour == "garbage":
            body = b"<html><body>Service temporarily unavailable</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
        else:
            body = b""
            self.send_response(behaviour)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_failing_partner_retries_then_fails_then_operator_retry_delivers(tmp_path, pki):
    fake_port = reserve_port()
    a = write_node(tmp_path, pki, "aa-nsw", "bb-nsw", reserve_port(), fake_port, scheme="http",
                   attempts=4, interval=0.2, timeout=5.0)
    _Misbehaving.script, _Misbehaving.seen, _Misbehaving.bodies = [500, "garbage", 502, "hang"], [], []
    _Misbehaving.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", fake_port), _Misbehaving, bind_and_activate=False)
    server.socket.close()
    server.socket = server_socket(fake_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    da = Daemon(a).start()
    ca = a.config()
    try:
        drop_document(ca.folder.outbox, "x.xml", b"<doc>retry me</doc>", partner="bb-nsw",
                      document_type="test-cert", reference="FLAKY")
        report = wait_for(lambda: report_for(ca.folder.reports, "FLAKY"), what="failure report")
        assert report["status"] == "failed"
        assert "gave up after 4 attempt(s)" in report["detail"]
        assert report["error_code"] == "EBMS:0301"     # AS4 §3.2: MissingReceipt to the producer
        assert _Misbehaving.seen == [500, "garbage", 502, "hang"]
        trace = _trace(a, "FLAKY")
        assert trace["status"] == "failed"
        sends = [e["detail"] for e in trace["events"] if e["step"] == "send"]
        assert len(sends) == 4 and "HTTP 500" in sends[0] and "timeout" in sends[3]
        assert [e["step"] for e in trace["events"]].count("retry") == 3     # each with its next time
        text = swgw("trace", "-c", str(a.config_path), "--ref", "FLAKY").stdout
        assert "retry       scheduled  attempt 2 at" in text

        # the identical signed bytes (same MessageId, same signature) were resent every time
        assert len(_Misbehaving.bodies) == 4 and len(set(_Misbehaving.bodies)) == 1
        assert trace["message_id"].encode() in _Misbehaving.bodies[0]
        _Misbehaving.release.set()
        server.shutdown()
        server.server_close()
        b = write_node(tmp_path, pki, "bb-nsw", "aa-nsw", fake_port, a.port, tls=False, scheme="http")
        db = Daemon(b).start()
        try:
            out = swgw("messages", "-c", str(a.config_path), "retry", trace["message_id"]).stdout
            assert "queued" in out
            wait_for(lambda: _trace(a, "FLAKY")["status"] == "delivered", what="delivery after retry")
            assert [e["reference"] for e in inbox_entries(b.config().folder.inbox)] == ["FLAKY"]

            # cancel: a message cancelled while it waits is never sent
            db.stop()
            drop_document(ca.folder.outbox, "y.xml", b"<doc>cancel me</doc>", partner="bb-nsw",
                          document_type="test-cert", reference="CANCEL")
            wait_for(lambda: any(e["step"] == "retry" for e in _trace(a, "CANCEL").get("events", [])),
                     what="a retry of the message to cancel")
            mid = _trace(a, "CANCEL")["message_id"]
            swgw("messages", "-c", str(a.config_path), "cancel", mid)
            db.start()
            # A message queued after the cancel, delivered: the sender has run since, and the
            # cancelled one (due earlier) would have gone first had the cancel not held.
            drop_document(ca.folder.outbox, "z.xml", b"<doc>after the cancel</doc>", partner="bb-nsw",
                          document_type="test-cert", reference="BARRIER")
            wait_for(lambda: _trace(a, "BARRIER").get("status") == "delivered", what="a later message delivered")
            assert _trace(a, "CANCEL")["status"] == "cancelled"
            assert sorted(e["reference"] for e in inbox_entries(b.config().folder.inbox)) == ["BARRIER", "FLAKY"]
            bad = swgw("messages", "-c", str(a.config_path), "cancel", "no-such-id", check=False)
            assert bad.returncode == 1 and "no outbound message with id no-such-id" in bad.stderr
        finally:
            db.stop()
    finally:
        da.stop()


class _SlowProxy:
    """Forwards to the real partner but holds back the first answer until the sender has given
    up on it and sent again (the second request arriving is the proof), whatever the timing."""

    def __init__(self, listen_port: int, target_port: int):
        self.target_port, self.count = target_port, 0
        self.second_request = threading.Event()
        self.sock = server_socket(listen_port)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            self.count += 1
            first = self.count == 1
            if not first:
                self.second_request.set()
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
            while len(body) < length:
                body += conn.recv(65536)
            head = b"\r\n".join(l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection"))
            with socket.create_connection(("127.0.0.1", self.target_port)) as up:
                up.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
                answer = b""
                while chunk := up.recv(65536):
                    answer += chunk
            if first:
                self.second_request.wait(120)
            try:
                conn.sendall(answer)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def test_late_receipt_after_timeout_still_delivers_once(tmp_path, pki):
    proxy_port, b_port, a_port = reserve_port(), reserve_port(), reserve_port()
    a = write_node(tmp_path, pki, "aa-nsw", "bb-nsw", a_port, proxy_port, scheme="http",
                   attempts=20, interval=0.3, timeout=5.0)
    b = write_node(tmp_path, pki, "bb-nsw", "aa-nsw", b_port, a_port, tls=False, scheme="http")
    proxy = _SlowProxy(proxy_port, b_port)
    da, db = Daemon(a).start(), Daemon(b).start()
    try:
        drop_document(a.config().folder.outbox, "z.xml", b"<doc>slow</doc>", partner="bb-nsw",
                      document_type="test-cert", reference="SLOW")
        wait_for(lambda: _trace(a, "SLOW").get("status") == "delivered", what="delivery")
        trace = _trace(a, "SLOW")
        sends = [e for e in trace["events"] if e["step"] == "send"]
        assert "timeout" in sends[0]["detail"] and len(sends) >= 2
        assert ("receipt", "verified") in [(e["step"], e["outcome"]) for e in trace["events"]]
        assert [e["reference"] for e in inbox_entries(b.config().folder.inbox)] == ["SLOW"]
        b_trace = _trace(b, "SLOW")
        assert [e["step"] for e in b_trace["events"]].count("deliver") == 1
        assert "duplicate" in [e["step"] for e in b_trace["events"]]
    finally:
        da.stop()
        db.stop()
        proxy.close()


def _mount_tmpfs(path, size: str):
    import subprocess
    import pytest
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up here: {done.stderr.strip()}")


def _remount(path, options: str) -> None:
    import subprocess
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def test_full_disk_then_read_only_store_recover_without_loss(tmp_path, pki):
    """The receiver's disk fills up, the sender's store turns read-only: clear errors, no
    corruption, and everything flows once the space is back."""
    import os
    import sqlite3
    import subprocess
    a, b = write_pair(tmp_path, pki, attempts=100, interval=0.2, max_interval=0.5)
    b_state = b.home / "state"
    _mount_tmpfs(b_state, "1m")
    try:
        da, db = Daemon(a).start(), Daemon(b).start()
        ca, cb = a.config(), b.config()
        try:
            docs = {f"FULL{i}": b"<doc>" + os.urandom(150_000).hex().encode() + b"</doc>" for i in range(6)}
            for ref, doc in docs.items():
                drop_document(ca.folder.outbox, f"{ref}.xml", doc, partner="bb-nsw", document_type="test-manifest",
                              reference=ref)
            wait_for(lambda: "No space left on device" in db.log.read_text()
                     or "database or disk is full" in db.log.read_text(), what="disk full on b")
            time.sleep(1)
            pending = [r for r in docs if (report_for(ca.folder.reports, r) or {}).get("status") != "delivered"]
            assert pending, "the disk never filled up"
            _remount(b_state, "size=64m")           # the operator frees space
            wait_for(lambda: all((report_for(ca.folder.reports, r) or {}).get("status") == "delivered"
                                 for r in docs), what="delivery after space was freed")
            entries = inbox_entries(cb.folder.inbox)
            assert sorted(e["reference"] for e in entries) == sorted(docs)
            for e in entries:
                assert (cb.folder.inbox / e["document"]).read_bytes() == docs[e["reference"]]
            assert not [p for p in cb.folder.inbox.iterdir() if p.name.endswith(".tmp")]
            assert not [p for p in (b_state / "blobs").rglob("*.tmp")]

            # the sender's store becomes read-only: submissions wait in the outbox, then flow.
            # Blobs above the store's inline limit (1 MiB) are files in state/blobs, written
            # before the transaction: a document that large meets the read-only directory.
            a_state = a.home / "state" / "blobs"
            subprocess.run(["mount", "--bind", str(a_state), str(a_state)], check=True)
            try:
                _remount(a_state, "bind,ro")
                drop_document(ca.folder.outbox, "RO.xml", b"<doc>" + os.urandom(700_000).hex().encode() + b"</doc>",
                              partner="bb-nsw",
                              document_type="test-manifest", reference="RO")
                wait_for(lambda: "cannot queue outbox document RO.xml: the store is not writable"
                         in da.log.read_text(), what="a clear error about the read-only store")
                assert report_for(ca.folder.reports, "RO") is None
                _remount(a_state, "bind,rw")
            finally:
                subprocess.run(["umount", str(a_state)], check=False)
            wait_for(lambda: (report_for(ca.folder.reports, "RO") or {}).get("status") == "delivered", what="delivery after the store became writable")
        finally:
            da.stop()
            db.stop()
        for node in (a, b):
            path = node.config().database_url.split("///", 1)[1]
            assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        subprocess.run(["umount", "-l", str(b_state)], check=False)


def test_sigterm_lets_in_flight_sends_finish_or_stay_retryable(tmp_path, pki, pair_databases):
    a, b = write_pair(tmp_path, pki, attempts=50, interval=0.2, max_interval=0.5, database_urls=pair_databases)
    da, db = Daemon(a).start(), Daemon(b).start()
    ca = a.config()
    try:
        for i in range(40):
            drop_document(ca.folder.outbox, f"t{i}.xml", f"<doc n='{i}'/>".encode(), partner="bb-nsw",
                          document_type="test-manifest", reference=f"T{i:02}")
        store = _store(a)
        wait_for(lambda: len(store.list_messages(status="delivered")) >= 5, what="some deliveries")
        assert da.stop() == 0                     # graceful: exits cleanly mid-stream
        assert not store.list_messages(status="sending"), "SIGTERM left messages stuck in 'sending'"
        da.start()
        wait_for(lambda: len(store.list_messages(status="delivered")) == 40, what="all delivered")
    finally:
        da.stop()
        db.stop()
    assert sorted(e["reference"] for e in inbox_entries(b.config().folder.inbox)) == [f"T{i:02}" for i in range(40)]


def test_concurrent_copies_and_repeats_are_delivered_once(tmp_path, pki, pair_databases):
    from concurrent.futures import ThreadPoolExecutor

    from gateway import as4
    from gateway.daemon import Gateway
    from gateway.outbound import Submission
    a, b = write_pair(tmp_path, pki, database_urls=pair_databases)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())
    mid = gw_a.outbound.submit(Submission("bb-nsw", "test-cert", b"<doc>once</doc>", nsw_reference="ONCE"))
    row = gw_a.store.find(mid)[0]
    raw = gw_a.store.blob(row.raw_digest)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: gw_b.inbound.process(row.content_type, raw), range(8)))
    receipts = set()
    for answer in answers:
        parsed = as4.parse_envelope(as4.parse_xml(as4.decode_message(answer.content_type, answer.body)[0]))
        assert parsed.receipt is not None and parsed.receipt.ref_to_message_id == mid
        receipts.add(parsed.receipt.message_id)
    assert len(receipts) == 1, "every copy must get the same receipt"
    assert [e["message_id"] for e in inbox_entries(b.config().folder.inbox)] == [mid]
    # a restart does not forget it
    gw_b.store.close()
    again = Gateway(b.config()).inbound.process(row.content_type, raw)
    parsed = as4.parse_envelope(as4.parse_xml(as4.decode_message(again.content_type, again.body)[0]))
    assert parsed.receipt.message_id in receipts
    assert len(inbox_entries(b.config().folder.inbox)) == 1

    # a repeat of a rejected message gets the same error again, never a receipt
    bad = raw.replace(b"<doc>", b"<dOc>") if b"<doc>" in raw else raw[:-200]
    codes = set()
    for _ in range(2):
        answer = gw_b.inbound.process(row.content_type, bad[:len(bad) // 2])
        parsed = as4.parse_envelope(as4.parse_xml(as4.decode_message(answer.content_type, answer.body)[0]))
        assert parsed.receipt is None and parsed.error_signal is not None
        codes.add(parsed.error_signal.errors[0].error_code)
    assert len(codes) == 1
