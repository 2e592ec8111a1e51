"""The evidence chain: appended by the real pipelines, checked by `swgw evidence verify`, which
names the first broken link when one stored file or one database row is tampered with."""
from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest

from gateway.cli import main
from gateway.evidence.canonical import GENESIS_HASH, entry_hash
from gateway.evidence.chain import entry_fields
from gateway.evidence.verify import verify_evidence
from gateway.outbound import Submission
from gateway.store.models import EvidenceEntry
from gateway.store.store import MessageStore, PayloadData, StepEvent
from tests.blob_helpers import alter_blob, blob_present, flip_a_bit, remove_blob
from tests.evidence_helpers import evidence_cli, make_pair, tamper
from tests.harness import swgw


@pytest.fixture
def pair(tmp_path, pki, pair_databases):
    p = make_pair(tmp_path, pki, pair_databases)
    yield p
    p.close()


def entries(store: MessageStore) -> list[EvidenceEntry]:
    with store.sessions() as s:
        return list(s.query(EvidenceEntry).order_by(EvidenceEntry.seq))


def verify(node, capsys=None):
    return evidence_cli("verify", node=node, capsys=capsys)


def test_pipelines_append_a_linked_chain_that_verifies(pair):
    mid = pair.exchange()
    (msg_a,) = pair.gw_a.store.find(mid)
    (msg_b,) = pair.gw_b.store.find(mid)
    sent, receipt = entries(pair.gw_a.store)
    assert (sent.seq, sent.kind, sent.direction, sent.message_id, sent.partner_id) == (
        1, "message-sent", "out", mid, "bb-nsw")
    assert sent.message_digest == msg_a.raw_digest and sent.receipt_digest is None
    assert (receipt.seq, receipt.kind, receipt.receipt_digest) == (2, "receipt-received", msg_a.receipt.digest)
    assert sent.prev_hash == GENESIS_HASH and receipt.prev_hash == sent.entry_hash
    assert all(entry_hash(entry_fields(e)) == e.entry_hash for e in (sent, receipt))
    (received,) = entries(pair.gw_b.store)
    assert (received.kind, received.direction, received.partner_id) == ("message-received", "in", "aa-nsw")
    assert received.message_digest == msg_b.raw_digest == msg_a.raw_digest   # the very same bytes
    assert received.receipt_digest == msg_b.receipt.digest == msg_a.receipt.digest
    assert hashlib.sha256(pair.gw_b.store.blob(received.receipt_digest)).hexdigest() == received.receipt_digest

    for node in (pair.a, pair.b):
        done = verify(node)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("evidence OK:")
    assert "2 entries" in verify(pair.a).stdout


def test_tampered_blob_file_is_named(pair):
    mid = pair.exchange()
    (msg,) = pair.gw_a.store.find(mid)
    where = alter_blob(pair.gw_a.store, msg.raw_digest, flip_a_bit)
    done = verify(pair.a)
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert "first broken link" in first and where in first and "altered" in first
    assert "entry seq 1" in first


def test_deleted_receipt_file_is_named(pair, capsys):
    mid = pair.exchange()
    (msg,) = pair.gw_a.store.find(mid)
    remove_blob(pair.gw_a.store, msg.receipt.digest)
    done = verify(pair.a, capsys)
    assert done.returncode == 1
    assert f"blob {msg.receipt.digest} (neither in the database nor at" in done.stderr
    assert "missing" in done.stderr and "receipt_digest of entry seq 2" in done.stderr


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE evidence_log SET message_digest = '{other}' WHERE seq = 1",
     "evidence_log seq 1, field message_digest"),
    ("UPDATE evidence_log SET time = '2020-01-01 00:00:00.000000' WHERE seq = 2",
     "evidence_log seq 2, field time, kind or data"),
    ("UPDATE evidence_log SET entry_hash = '{zeros}' WHERE seq = 1", "evidence_log seq 1, field entry_hash"),
    ("UPDATE evidence_log SET prev_hash = '{zeros}' WHERE seq = 2", "evidence_log seq 2, field prev_hash"),
    ("DELETE FROM evidence_log WHERE seq = 1", "evidence_log seq 1: entry missing"),
    ("UPDATE messages SET raw_digest = '{other}' WHERE id = 1", "messages row id=1"),
    ("UPDATE receipts SET digest = '{other}' WHERE id = 1", "receipt"),
    ("DELETE FROM evidence_log WHERE seq = 2", "receipts row id=1"),
])
def test_tampered_row_is_named(pair, sql, expected, capsys):
    mid = pair.exchange()
    (msg,) = pair.gw_a.store.find(mid)
    other = msg.payloads[0].digest            # an existing blob: the swap is not caught by a missing file
    assert tamper(pair.a, sql.format(other=other, zeros="f" * 64)) == 1
    done = verify(pair.a, capsys)
    assert done.returncode == 1, done.stdout
    assert expected in done.stderr.splitlines()[0], done.stderr


def test_inbound_row_tampering_is_named(pair, capsys):
    mid = pair.exchange()
    tamper(pair.b, "UPDATE evidence_log SET receipt_digest = :d WHERE seq = 1", d="0" * 64)
    done = verify(pair.b, capsys)
    assert done.returncode == 1
    assert "evidence_log seq 1, field receipt_digest" in done.stderr.splitlines()[0]
    assert mid  # the message itself is untouched


def test_concurrent_writers_keep_the_sequence_gap_free(tmp_path, database_url):
    url, blobs = database_url, tmp_path / "blobs"
    MessageStore(url, blobs).close()
    stores = [MessageStore(url, blobs, run_migrations=False) for _ in range(4)]
    errors = []

    def work(n: int, store: MessageStore) -> None:
        try:
            for i in range(10):
                store.record_outbound(
                    message_id=f"m{n}-{i}@aa", partner_id="bb-nsw", document_type="ephyto", pmode_id="p",
                    nsw_reference=None, conversation_id="c", ref_to_message_id=None, content_type="x",
                    raw=f"raw {n} {i}".encode(), signed_references={}, events=[StepEvent("submit", "ok")],
                    payloads=[PayloadData("p@aa", "application/xml", b"<d/>")])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = entries(stores[0])
    assert [e.seq for e in log] == list(range(1, 41))
    assert all(e.prev_hash == p.entry_hash for p, e in zip(log, log[1:]))
    assert verify_evidence(stores[0]).ok
    for s in stores:
        s.close()


def test_purge_removes_old_bytes_and_keeps_the_chain_verifiable(pair, capsys):
    old = pair.exchange(reference="OLD")
    queued = pair.gw_a.outbound.submit(Submission(
        partner_id="bb-nsw", document_type="test-cert", document=b"<doc>waiting</doc>", nsw_reference="Q"))
    (msg,) = pair.gw_a.store.find(old)
    forty_days_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=40)
    for mid in (old, queued):                        # make them 40 days old
        tamper(pair.a, "UPDATE messages SET created_at = :t WHERE message_id = :m", t=forty_days_ago, m=mid)
    capsys.readouterr()
    assert main(["evidence", "purge", "-c", str(pair.a.config_path), "--older-than", "60", "--dry-run"]) == 0
    assert "nothing to purge" in capsys.readouterr().out
    done = swgw("evidence", "purge", "-c", str(pair.a.config_path), "--older-than", "30")
    assert "purged 1 message(s)" in done.stdout and "entry seq 4" in done.stdout
    store = pair.gw_a.store
    for digest in (msg.raw_digest, msg.receipt.digest, msg.payloads[0].digest):
        assert not blob_present(store, digest)
    (still,) = store.find(queued)
    assert blob_present(store, still.raw_digest)                # a queued message keeps its bytes
    purge_entry = entries(store)[-1]
    assert purge_entry.kind == "purge" and msg.raw_digest in purge_entry.data
    ok = verify(pair.a)
    assert ok.returncode == 0, ok.stderr
    assert "3 purged as recorded" in ok.stdout
    capsys.readouterr()
    assert main(["evidence", "purge", "-c", str(pair.a.config_path), "--older-than", "30"]) == 0
    assert "nothing to purge" in capsys.readouterr().out
    remove_blob(store, still.raw_digest)                        # a blob no purge removed
    broken = verify(pair.a, capsys)
    assert broken.returncode == 1 and "no purge entry removed it" in broken.stderr


def test_migration_backfills_messages_stored_before_the_log(tmp_path):
    from alembic import command
    from alembic.config import Config
    from gateway.store.store import MIGRATIONS, make_engine
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO messages (id, message_id, direction, partner_id, status, created_at, updated_at, attempts,"
            " raw_digest) VALUES (1, 'old@aa', 'out', 'bb-nsw', 'delivered', '2024-01-01 00:00:00',"
            " '2024-01-01 00:00:00', 1, 'ab')")
        conn.exec_driver_sql("INSERT INTO receipts (id, message_pk, time, digest, content_type) VALUES "
                             "(1, 1, '2024-01-01 00:00:00', 'cd', 'application/soap+xml')")
    engine.dispose()
    store = MessageStore(f"sqlite:///{db}", tmp_path / "blobs")
    try:
        log = entries(store)
        assert [(e.seq, e.kind, e.message_digest, e.receipt_digest) for e in log] == [
            (1, "message-sent", "ab", None), (2, "receipt-received", "ab", "cd")]
        assert all(entry_hash(entry_fields(e)) == e.entry_hash for e in log)
        report = verify_evidence(store)
        assert {p.where.split(" ")[0] for p in report.problems} == {"blob"}   # only the blobs were never there
    finally:
        store.close()
