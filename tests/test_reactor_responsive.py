"""The reactor never blocks: the inbound pipeline runs off the reactor thread, so the daemon
keeps answering while a message is being processed.

Shown structurally, not by timing: both gateways run their real service trees (TLS listener,
sender, outbox poller) in this test's reactor, and b's inbound pipeline is wrapped in a
stand-in that records which thread it runs on and then *blocks* until the test lets it go.
While it is blocked, /health must answer over mutual TLS; a pipeline running on the reactor
thread would hang the reactor and no probe could ever complete. How long the reactor stalls
under real load is a measurement (bin/benchmark), never an assertion here.
"""
from __future__ import annotations

import threading

import pytest_twisted
import treq
from twisted.internet import defer, reactor, task, threads
from twisted.web.client import Agent

from gateway.daemon import Gateway, build_service
from gateway.outbound import Submission
from gateway.transport.tls import PartnerTLSPolicy, private_certificate
from tests.harness import inherited_sockets, write_pair

PROBES_WHILE_BLOCKED = 3
DEADLINE = 120.0          # seconds of reactor time before the test calls it a failure


@pytest_twisted.inlineCallbacks
def test_health_answers_while_the_inbound_pipeline_is_blocked_off_the_reactor(tmp_path, pki):
    a, b = write_pair(tmp_path, pki)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())

    reactor_thread = threading.current_thread()
    entered = defer.Deferred()            # fired (on the reactor) when b's pipeline has started
    release = threading.Event()           # set by the test once /health answered meanwhile
    threads_seen = []
    real_process = gw_b.inbound.process

    def blocking_process(content_type, body, **kwargs):
        threads_seen.append(threading.current_thread())
        reactor.callFromThread(lambda: entered.called or entered.callback(None))
        if not release.wait(DEADLINE):
            raise AssertionError("the test never released the pipeline")
        return real_process(content_type, body, **kwargs)

    gw_b.inbound.process = blocking_process
    services = [build_service(gw_b, reactor, inherited_sockets(b)),
                build_service(gw_a, reactor, inherited_sockets(a))]
    for s in services:
        s.startService()

    config_b = b.config()
    tls = PartnerTLSPolicy(gw_a.registry().get("bb-nsw").tls_trust,
                           private_certificate(config_b.listen.key, config_b.listen.cert))
    agent = Agent(reactor, contextFactory=tls)
    health_url = f"https://127.0.0.1:{b.port}/health".encode()
    try:
        message_id = yield threads.deferToThread(
            gw_a.outbound.submit, Submission("bb-nsw", "test-manifest", b"<manifest>held</manifest>",
                                             nsw_reference="HELD"))
        yield entered.addTimeout(DEADLINE, reactor)
        answered = 0
        for _ in range(PROBES_WHILE_BLOCKED):
            response = yield treq.get(health_url, agent=agent, timeout=DEADLINE)
            assert response.code == 200 and (yield response.content()) == b"ok\n"
            answered += 1
        assert not release.is_set() and answered == PROBES_WHILE_BLOCKED
        release.set()
        status = None
        for _ in range(int(DEADLINE / 0.1)):
            status = yield threads.deferToThread(lambda: gw_a.store.find(message_id)[0].status)
            if status in ("delivered", "failed"):
                break
            yield task.deferLater(reactor, 0.1, lambda: None)
        assert status == "delivered"
    finally:
        release.set()
        for s in reversed(services):
            yield defer.maybeDeferred(s.stopService)

    assert threads_seen and all(t is not reactor_thread for t in threads_seen), \
        "the inbound pipeline ran on the reactor thread"
