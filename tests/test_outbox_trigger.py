"""The outbox drains as soon as a document is committed (inotify), without waiting for a poll,
and the sender is told after each batch that queued messages. Real reactor, real files."""
from __future__ import annotations

import sys
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from gateway.connectors.folder_client import drop_document
from gateway.daemon import Gateway
from gateway.outbox import OutboxPoller, _watch_outbox, drain_outbox
from tests.harness import write_pair

DEADLINE = 120.0      # how long a busy machine may take; the timer below would need an hour


@pytest.fixture
def gateway(tmp_path, pki):
    a, _b = write_pair(tmp_path, pki)
    gw = Gateway(a.config())
    yield gw
    gw.store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
@pytest_twisted.inlineCallbacks
def test_a_committed_document_is_drained_without_waiting_for_the_poll(gateway):
    assert _watch_outbox(gateway.config.folder.outbox, lambda: None) is not None
    told = []
    poller = OutboxPoller(gateway.connector, gateway.outbound, gateway.party_domain, 3600.0,
                          queued=lambda: told.append(threading.current_thread().name))
    poller.startService()                  # polls once at start (empty), next timer poll in an hour
    try:
        yield task.deferLater(reactor, 0, lambda: None)
        drop_document(gateway.config.folder.outbox, "now.xml", b"<doc>now</doc>", partner="bb-nsw",
                      document_type="test-cert", reference="NOW")
        waited = 0.0
        while not gateway.store.find(None, "NOW") and waited < DEADLINE:
            yield task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
        assert [m.status for m in gateway.store.find(None, "NOW")] == ["queued"]
        assert len(told) == 1
    finally:
        yield defer.maybeDeferred(poller.stopService)


def test_the_sender_is_told_once_per_batch_that_queued(gateway):
    outbox = gateway.config.folder.outbox
    for i in range(5):
        drop_document(outbox, f"d{i}.xml", b"<doc/>", partner="bb-nsw", document_type="test-cert", reference=f"B{i}")
    drop_document(outbox, "bad.xml", b"<doc/>", partner="zz-nsw", document_type="test-cert", reference="BAD")
    told = []
    assert drain_outbox(gateway.connector, gateway.outbound, gateway.party_domain, batch=2,
                        queued=lambda: told.append(1)) == 5
    # 6 documents in batches of 2: three batches queued something (one of them only one document)
    assert len(told) == 3
