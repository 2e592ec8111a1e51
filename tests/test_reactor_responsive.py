"""The reactor never blocks: while a large message is signed, sent, decrypted and verified, the
daemon keeps answering /health promptly.

Both gateways run their real service trees (TLS listener, sender, outbox poller) in this
test's reactor; a probe measures reactor lag and /health latency over mutual TLS during
the whole transfer.
"""
from __future__ import annotations

import base64
import os
import time

import pytest_twisted
import treq
from twisted.internet import defer, reactor, task, threads

from gateway.daemon import Gateway, build_service
from gateway.outbound import Submission
from gateway.transport.tls import PartnerTLSPolicy, private_certificate
from tests.harness import write_pair
from twisted.web.client import Agent

DOCUMENT_MB = 40


def _large_document() -> bytes:
    # Random base64 compresses poorly, so gzip, AES-GCM and SHA-256 all do real work.
    noise = base64.encodebytes(os.urandom(DOCUMENT_MB * 1024 * 1024 * 3 // 4))
    return b"<manifest><blob>" + noise + b"</blob></manifest>"


@pytest_twisted.inlineCallbacks
def test_daemon_answers_health_while_processing_a_large_message(tmp_path, pki):
    a, b = write_pair(tmp_path, pki)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())

    windows = []                      # (start, end) of each inbound pipeline run on b
    real_process = gw_b.inbound.process

    def timed_process(content_type, body, **kwargs):     # kwargs: the listener's tls_chain
        start = time.monotonic()
        try:
            return real_process(content_type, body, **kwargs)
        finally:
            windows.append((start, time.monotonic()))

    gw_b.inbound.process = timed_process
    services = [build_service(gw_b, reactor), build_service(gw_a, reactor)]
    for s in services:
        s.startService()

    config_b = b.config()
    tls = PartnerTLSPolicy(gw_a.registry().get("bb-nsw").tls_trust,
                           private_certificate(config_b.listen.key, config_b.listen.cert))
    agent = Agent(reactor, contextFactory=tls)
    health_url = f"https://127.0.0.1:{b.port}/health".encode()
    probes = []                       # (sent, answered) monotonic times
    lags = []
    last = [time.monotonic()]

    def tick():
        now = time.monotonic()
        lags.append(now - last[0])
        last[0] = now

    document = _large_document()
    lag_loop = task.LoopingCall(tick)
    lag_loop.start(0.02)
    try:
        message_id = yield threads.deferToThread(
            gw_a.outbound.submit, Submission("bb-nsw", "test-manifest", document, nsw_reference="BIG"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sent = time.monotonic()
            response = yield treq.get(health_url, agent=agent, timeout=10)
            body = yield response.content()
            assert response.code == 200 and body == b"ok\n"
            probes.append((sent, time.monotonic()))
            status = yield threads.deferToThread(lambda: gw_a.store.find(message_id)[0].status)
            if status in ("delivered", "failed"):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        assert status == "delivered"
    finally:
        lag_loop.stop()
        for s in reversed(services):
            yield defer.maybeDeferred(s.stopService)

    assert windows, "b never processed the message"
    start, end = windows[0]
    during = [answered - sent for sent, answered in probes if sent >= start and answered <= end]
    assert end - start > 0.3, f"processing took only {end - start:.2f}s: the document is too small to tell"
    assert during, "no /health probe completed while the message was being processed"
    assert max(during) < 0.5, f"/health took {max(during):.2f}s while a message was processed"
    # Worker threads share the GIL with the reactor; lxml's c14n of a 40 MB XML attachment
    # holds it for a few hundred ms, so the bound on lag is looser than the one on /health.
    assert max(lags) < 1.0, f"the reactor stalled for {max(lags):.2f}s"
    print(f"inbound processing {end - start:.2f}s, {len(during)} probes during it, "
          f"max /health {max(during):.3f}s, max reactor lag {max(lags):.3f}s")
