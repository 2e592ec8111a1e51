"""One unit of work per message, committed in groups: the store's writer thread and the
inbound hand-off to the NSW after the commit, on a real SQLite file."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from gateway.connectors.folder_client import inbox_entry
from gateway.outbound import Submission
from gateway.store.store import DuplicateMessage, MessageStore, PayloadData, StepEvent
from gateway.store.writer import GroupCommitWriter
from tests.harness import ROOT, write_pair

SAMPLE = (ROOT / "conf" / "samples" / "ephyto-AR-sample.xml").read_bytes()


@pytest.fixture
def store(tmp_path):
    s = MessageStore(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path / "blobs")
    yield s
    s.close()


def _held_writer(store: MessageStore):
    """A writer whose first write (run by a thread of its own) waits inside its transaction
    until released, so the writes submitted meanwhile are all pending when the next group is
    taken."""
    started, release = threading.Event(), threading.Event()
    writer = GroupCommitWriter(store.sessions)
    result = []

    def hold(_session):
        started.set()
        return release.wait(60)
    leader = threading.Thread(target=lambda: result.append(writer.run(hold)))
    leader.start()
    assert started.wait(60)
    return writer, release, (leader, result)


def _waiting(writer: GroupCommitWriter, threads: list[threading.Thread], count: int) -> None:
    """Run ``threads`` (each waits for its write) until ``count`` writes are pending."""
    for t in threads:
        t.start()
    while len(writer._pending) < count:
        threading.Event().wait(0.01)


def _insert(value: int):
    def work(session):
        session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        return value
    return work


def test_writes_that_arrive_together_share_one_commit(store):
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    writer, release, (leader, held) = _held_writer(store)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, writer.run(_insert(i)))) for i in range(10)]
    _waiting(writer, threads, 10)
    release.set()
    for t in [leader, *threads]:
        t.join(60)
    assert held == [True] and results == {i: i for i in range(10)}
    assert (writer.groups, writer.writes) == (2, 11)       # the held one, then the ten in one
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 10


def test_a_write_alone_is_committed_by_its_own_thread(store):
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    writer = GroupCommitWriter(store.sessions)
    seen = []

    def work(session):
        seen.append(threading.current_thread())
        return _insert(7)(session)
    assert writer.run(work) == 7 and seen == [threading.current_thread()]


def test_a_failing_write_fails_alone_and_the_rest_of_its_group_commits(store):
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    writer, release, (leader, _) = _held_writer(store)
    pending = [writer.submit(_insert(1)), writer.submit(_insert(1)), writer.submit(_insert(3))]
    release.set()
    leader.join(60)
    first, dup, third = pending
    assert first.result() == 1 and third.result() == 3
    with pytest.raises(Exception, match="UNIQUE"):
        dup.result()
    assert writer.groups == 1 + 2                           # the held one; then the rerun: 1 and 3 alone
    with store.engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT v FROM t")).scalars()) == [1, 3]


def test_two_copies_of_one_message_in_one_group_record_it_once(store):
    writer, release, (leader, _) = _held_writer(store)
    store.writer = writer          # the store's writes queue behind the held one

    def record(results):
        try:
            results.append(store.record_inbound(
                message_id="m@bb", partner_id="bb-nsw", document_type="test", pmode_id="p", nsw_reference=None,
                conversation_id="c", ref_to_message_id=None, status="delivered", content_type="x", raw=b"raw",
                receipt=b"receipt", receipt_content_type="y", error=None,
                payloads=[PayloadData("cid", "application/xml", b"<doc/>")], events=[StepEvent("receive", "ok")]))
        except DuplicateMessage as exc:
            results.append(exc)

    results: list = []
    threads = [threading.Thread(target=record, args=(results,)) for _ in range(2)]
    _waiting(writer, threads, 2)   # both writes pending behind the held one
    release.set()
    for t in [leader, *threads]:
        t.join(60)
    assert sorted(type(r).__name__ for r in results) == ["DuplicateMessage", "int"]
    (msg,) = store.find("m@bb")
    assert len(msg.payloads) == 1 and len(msg.receipts) == 1


# -- the inbound hand-off to the NSW comes after the commit -------------------------------------
class BrokenInbox:
    """A connector whose inbox fails (a full disk): what the pipeline does with the commit."""

    def __init__(self, real):
        self.real = real

    def deliver(self, **kw):
        raise OSError(28, "No space left on device")

    def report(self, **kw):
        self.real.report(**kw)


@pytest.fixture
def nodes(tmp_path, pki):
    from gateway.daemon import Gateway
    a, b = write_pair(tmp_path, pki)
    gw_a, gw_b = Gateway(a.config()), Gateway(b.config())
    yield gw_a, gw_b
    gw_a.store.close()
    gw_b.store.close()


def _queued(gw_a, reference: str):
    mid = gw_a.outbound.submit(Submission(partner_id="bb-nsw", document_type="ephyto", document=SAMPLE,
                                          nsw_reference=reference))
    (row,) = gw_a.store.find(mid)
    return mid, row.content_type, gw_a.store.blob(row.raw_digest)


def test_a_failed_hand_off_keeps_the_message_received_and_a_restart_delivers_it(nodes):
    from gateway.inbound import InboundPipeline
    gw_a, gw_b = nodes
    mid, content_type, raw = _queued(gw_a, "HANDOFF-1")
    broken = InboundPipeline(gw_b.identity, gw_b.registry, gw_b.store, BrokenInbox(gw_b.connector))
    with pytest.raises(OSError):
        broken.process(content_type, raw)        # the listener's HTTP 500: the partner resends
    (row,) = gw_b.store.find(mid)
    assert row.status == "received" and row.receipt is not None      # committed, evidence complete
    assert inbox_entry(gw_b.config.folder.inbox, mid) is None
    # At the next start, the hand-off is finished from the store.
    assert gw_b.inbound.redeliver_owed() == 1
    entry = inbox_entry(gw_b.config.folder.inbox, mid)
    assert entry["reference"] == "HANDOFF-1" and entry["document_type"] == "ephyto"
    assert (gw_b.config.folder.inbox / entry["document"]).read_bytes() == SAMPLE
    (row,) = gw_b.store.find(mid)
    assert row.status == "delivered" and [e.step for e in row.events].count("deliver") == 1
    assert gw_b.inbound.redeliver_owed() == 0


def test_a_resend_after_a_failed_hand_off_delivers_and_gets_the_same_receipt(nodes):
    from gateway.inbound import InboundPipeline
    gw_a, gw_b = nodes
    mid, content_type, raw = _queued(gw_a, "HANDOFF-2")
    broken = InboundPipeline(gw_b.identity, gw_b.registry, gw_b.store, BrokenInbox(gw_b.connector))
    with pytest.raises(OSError):
        broken.process(content_type, raw)
    (row,) = gw_b.store.find(mid)
    stored_receipt = gw_b.store.blob(row.receipt.digest)
    again = gw_b.inbound.process(content_type, raw)
    assert again.code == 200 and again.body == stored_receipt
    assert inbox_entry(gw_b.config.folder.inbox, mid)["reference"] == "HANDOFF-2"
    (row,) = gw_b.store.find(mid)
    assert row.status == "delivered" and len(row.receipts) == 1
