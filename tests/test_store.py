"""MessageStore on a real SQLite file: migrations, the outbound queue, inbound de-duplication, blobs."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import inspect, text

from gateway.store.store import (DELIVERED, FAILED, QUEUED, SENDING, DuplicateMessage, MessageStore,
                                 PayloadData, StepEvent, utcnow)
from tests.blob_helpers import alter_blob

RAW = b"--MIMEBoundary\r\nContent-Type: application/soap+xml\r\n\r\n<S12:Envelope/>\r\n\x00\xff binary \r\n"
CT = 'multipart/related; boundary="MIMEBoundary"; type="application/soap+xml"'


@pytest.fixture
def store(tmp_path, database_url):
    s = MessageStore(database_url, tmp_path / "state" / "blobs")
    yield s
    s.close()


def outbound(store: MessageStore, message_id="m1@aa", partner="bb-nsw", raw=RAW, **kw) -> int:
    args = dict(message_id=message_id, partner_id=partner, document_type="ephyto", pmode_id="aa-bb-ephyto",
                nsw_reference="REF-1", conversation_id=message_id, ref_to_message_id=None, content_type=CT,
                raw=raw, signed_references={"#body": ["sha256", "abc="]},
                payloads=[PayloadData("payload-1@aa", "application/xml", b"<doc/>")],
                events=[StepEvent("submit", "ok", "from test")])
    args.update(kw)
    return store.record_outbound(**args)


def inbound(store: MessageStore, message_id="in1@bb", partner="bb-nsw") -> int:
    return store.record_inbound(message_id=message_id, partner_id=partner, document_type="ephyto",
                                pmode_id="aa-bb-ephyto", nsw_reference="R", conversation_id="c",
                                ref_to_message_id=None, status=DELIVERED, content_type=CT, raw=RAW,
                                receipt=b"<receipt/>", receipt_content_type="application/soap+xml",
                                error=None, payloads=[PayloadData("p@bb", "application/xml", b"<in/>")],
                                events=[StepEvent("receive", "ok")])


def row(store: MessageStore, message_id: str):
    (msg,) = store.find(message_id)
    return msg


def steps(msg) -> list[tuple[str, str]]:
    return [(e.step, e.outcome) for e in msg.events]


# -- schema ---------------------------------------------------------------------------
def test_migrations_are_idempotent_and_data_survives_reopen(tmp_path, database_url):
    blobs = tmp_path / "state" / "blobs"
    first = MessageStore(database_url, blobs)
    outbound(first)
    first.close()
    second = MessageStore(database_url, blobs)      # runs the migrations again
    third = MessageStore(database_url, blobs)       # and again, while second is open
    try:
        assert row(third, "m1@aa").status == QUEUED
        assert [m.message_id for m in second.list_messages()] == ["m1@aa"]
        with third.engine.connect() as conn:
            versions = conn.execute(text("select version_num from alembic_version")).fetchall()
        tables = set(inspect(third.engine).get_table_names())
    finally:
        second.close()
        third.close()
    assert len(versions) == 1
    assert {"messages", "events", "payloads"} <= tables


# -- outbound queue -------------------------------------------------------------------
def test_record_outbound_then_claim_returns_identical_bytes(store):
    pk = outbound(store)
    msg = row(store, "m1@aa")
    assert msg.id == pk and msg.status == QUEUED and msg.attempts == 0
    assert msg.content_type == CT and msg.raw_digest == hashlib.sha256(RAW).hexdigest()
    assert steps(msg) == [("submit", "ok"), ("persist", "ok")]
    assert [(p.content_id, p.digest) for p in msg.payloads] == [
        ("payload-1@aa", hashlib.sha256(b"<doc/>").hexdigest())]
    assert store.blob(msg.payloads[0].digest) == b"<doc/>"

    (job,) = store.claim_due(10)
    assert job.body == RAW
    assert (job.pk, job.message_id, job.partner_id, job.pmode_id, job.content_type, job.attempts) == (
        pk, "m1@aa", "bb-nsw", "aa-bb-ephyto", CT, 1)
    assert job.signed_references == {"#body": ["sha256", "abc="]}
    assert row(store, "m1@aa").status == SENDING
    assert store.claim_due(10) == []


def test_claim_is_exclusive_across_store_instances(tmp_path, store, database_url):
    """Two gateway nodes on the same database never claim the same message."""
    other = MessageStore(database_url, tmp_path / "state" / "blobs")
    try:
        for i in range(3):
            outbound(store, f"m{i}@aa")
        first = store.claim_due(2)
        second = other.claim_due(10)
        assert len(first) == 2 and len(second) == 1
        assert {j.message_id for j in first} | {j.message_id for j in second} == {"m0@aa", "m1@aa", "m2@aa"}
        assert other.claim_due(10) == [] and store.claim_due(10) == []
    finally:
        other.close()


def test_recover_interrupted_requeues_sending(store):
    outbound(store, "a@aa")
    outbound(store, "b@aa")
    claimed = store.claim_due(1)
    assert [j.message_id for j in claimed] == ["a@aa"]
    assert store.recover_interrupted() == 1
    msg = row(store, "a@aa")
    assert msg.status == QUEUED
    assert steps(msg)[-1] == ("recover", "requeued")
    assert row(store, "b@aa").status == QUEUED and steps(row(store, "b@aa"))[-1] == ("persist", "ok")
    assert store.recover_interrupted() == 0
    # The resend carries the very same bytes, counted as a second attempt.
    jobs = {j.message_id: j for j in store.claim_due(10)}
    assert jobs["a@aa"].body == RAW and jobs["a@aa"].attempts == 2
    assert jobs["b@aa"].attempts == 1


def test_mark_retry_requeues_for_later(store):
    pk = outbound(store)
    (job,) = store.claim_due(10)
    later = utcnow() + dt.timedelta(hours=1)
    store.mark_retry(pk, "HTTP 503", later, [StepEvent("send", "retry", "HTTP 503 from partner")])
    msg = row(store, "m1@aa")
    assert msg.status == QUEUED and msg.last_error == "HTTP 503" and msg.attempts == 1
    assert abs((msg.next_attempt_at - later).total_seconds()) < 0.001
    assert steps(msg)[-1] == ("send", "retry")
    assert store.claim_due(10) == []                                   # not due yet
    (again,) = store.claim_due(10, now=later + dt.timedelta(seconds=1))
    assert again.attempts == 2 and again.body == job.body


def test_mark_failed(store):
    pk = outbound(store)
    store.claim_due(10)
    store.mark_failed(pk, "retry budget exhausted", [StepEvent("send", "failed", "5 attempts")])
    msg = row(store, "m1@aa")
    assert (msg.status, msg.last_error, msg.next_attempt_at) == (FAILED, "retry budget exhausted", None)
    assert steps(msg)[-1] == ("send", "failed")
    assert store.claim_due(10, now=utcnow() + dt.timedelta(days=30)) == []
    assert store.recover_interrupted() == 0


def test_mark_delivered_keeps_the_receipt(store):
    pk = outbound(store)
    store.claim_due(10)
    store.mark_retry(pk, "timeout", utcnow(), [StepEvent("send", "retry")])
    store.claim_due(10)
    receipt = b"<S12:Envelope>receipt</S12:Envelope>"
    store.mark_delivered(pk, receipt, "application/soap+xml", [StepEvent("send", "ok", "HTTP 200"),
                                                              StepEvent("receipt", "verified")])
    msg = row(store, "m1@aa")
    assert (msg.status, msg.last_error, msg.next_attempt_at, msg.attempts) == (DELIVERED, None, None, 2)
    assert msg.receipt.content_type == "application/soap+xml"
    assert store.blob(msg.receipt.digest) == receipt
    assert steps(msg)[-2:] == [("send", "ok"), ("receipt", "verified")]
    assert [m.status for m in store.list_messages(status=DELIVERED)] == [DELIVERED]
    assert store.claim_due(10, now=utcnow() + dt.timedelta(days=1)) == []


def test_add_event_and_find_by_reference(store):
    pk = outbound(store, nsw_reference="NSW-42")
    store.add_event(pk, "notify", "ok", "report written")
    (msg,) = store.find(reference="NSW-42")
    assert msg.message_id == "m1@aa" and steps(msg)[-1] == ("notify", "ok")
    assert store.find("nope@aa") == [] and store.find(reference="nope") == []


# -- duplicates -----------------------------------------------------------------------
def test_duplicate_outbound_message_id_is_refused(store):
    outbound(store)
    with pytest.raises(DuplicateMessage, match="m1@aa"):
        outbound(store, raw=b"other bytes", nsw_reference="REF-2")
    (msg,) = store.find("m1@aa")
    assert msg.nsw_reference == "REF-1" and msg.raw_digest == hashlib.sha256(RAW).hexdigest()
    assert len(store.claim_due(10)) == 1


def test_duplicate_inbound_is_refused_per_partner(store):
    pk = inbound(store)
    assert store.find_inbound("bb-nsw", "in1@bb").id == pk
    with pytest.raises(DuplicateMessage, match="in1@bb"):
        inbound(store)
    assert len(store.find("in1@bb")) == 1
    # The same MessageId from another partner, or in the other direction, is another message.
    inbound(store, partner="cc-nsw")
    outbound(store, message_id="in1@bb")
    assert len(store.find("in1@bb")) == 3
    assert store.find_inbound("bb-nsw", "other@bb") is None
    # Inbound rows are never picked up by the sender or requeued.
    (job,) = store.claim_due(10)
    assert job.message_id == "in1@bb" and job.partner_id == "bb-nsw"
    assert store.recover_interrupted() == 1


# -- blobs ----------------------------------------------------------------------------
def test_blob_store_detects_corruption(store):
    digest = store.blobs.put(b"evidence")
    assert store.blobs.put(b"evidence") == digest                 # idempotent, content-addressed
    assert store.blobs.where(digest) == f"blob {digest} (database)"   # small: in the database
    alter_blob(store, digest, lambda _: b"evidencE")
    with pytest.raises(IOError, match=digest):
        store.blob(digest)


def test_large_blobs_are_files_written_before_the_transaction(tmp_path, database_url):
    store = MessageStore(database_url, tmp_path / "blobs", inline_max=1024)
    try:
        big = b"x" * 2048
        digest = store.blobs.put(big)
        assert store.blobs.path(digest).read_bytes() == big and store.blobs.where(digest).startswith("file ")
        assert store.blob(digest) == big
        alter_blob(store, digest, lambda _: b"y" * 2048)
        with pytest.raises(IOError, match=digest):
            store.blob(digest)
    finally:
        store.close()


def test_corrupt_raw_message_is_reported_when_claimed(store):
    outbound(store)
    digest = row(store, "m1@aa").raw_digest
    alter_blob(store, digest, lambda old: old[:-1] + b"!")
    assert store.claim_due(10) == []
    failed = row(store, "m1@aa")
    assert failed.status == "failed" and digest in failed.last_error and "restore" in failed.last_error


def test_corrupt_blob_does_not_strand_other_messages(store):
    outbound(store, "bad@aa")
    outbound(store, "good@aa", raw=RAW + b"good")
    alter_blob(store, row(store, "bad@aa").raw_digest, lambda _: b"corrupted")
    try:
        claimed = store.claim_due(10)
    except IOError:
        claimed = []
    good = row(store, "good@aa")
    assert good.status == QUEUED or [j.message_id for j in claimed] == ["good@aa"]
