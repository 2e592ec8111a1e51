"""Signed chain-head checkpoints outside the database: deleting the newest evidence entries
together with their message rows (which leaves a consistent, shorter chain) is reported by
`swgw evidence verify` without any TSA, naming the missing range and the checkpoint file;
the checkpoint history itself is checked (deleted, altered, forged files); the daemon's
schedule is the real ``CheckpointService`` on ``twisted.internet.task.Clock``."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest
from twisted.application import service
from twisted.internet import defer
from twisted.internet.task import Clock

from crypto.devpki import ensure_party
from crypto.keys import load_certificate, load_private_key
from gateway.evidence.checkpoint import (
    INTERVAL,
    STOP,
    Signer,
    checkpoint_dir,
    checkpoint_files,
    load_checkpoints,
    our_certificates,
    write_checkpoint,
)
from gateway.evidence.checkpoint_verify import CheckpointPolicy, check_checkpoints
from gateway.evidence.scheduler import CheckpointService, with_checkpoints
from gateway.evidence.verify import verify_evidence
from gateway.store.models import EvidenceEntry
from partners.configfile import ConfigError
from tests.evidence_helpers import db_path, evidence_cli, make_pair, query_one, tamper
from tests.harness import Daemon, swgw, wait_for, write_pair


@pytest.fixture
def pair(tmp_path, pki):
    p = make_pair(tmp_path, pki)
    yield p
    p.close()


def _dir(node):
    return checkpoint_dir(node.config().state_dir)


def _writer(pair):
    gw = pair.gw_a
    signer, certs = Signer.from_identity(gw.identity), our_certificates(gw.identity)
    return lambda reason: write_checkpoint(gw.store, _dir(pair.a), signer, certs, reason)


def _synchronously(f, *args):
    """Run the checkpoint job in the test's thread, so the Clock alone decides when it runs."""
    return defer.maybeDeferred(f, *args)


def _delete_newest(node, keep_seq: int, message_id: str) -> None:
    """What an attacker with database access does: drop the newest entries *and* the rows they
    witness, so the shorter chain and the tables agree with each other."""
    (pk,) = query_one(node, "SELECT id FROM messages WHERE message_id = :m", m=message_id)
    for table in ("events", "payloads", "receipts"):
        tamper(node, f"DELETE FROM {table} WHERE message_pk = :pk", pk=pk)
    tamper(node, "DELETE FROM messages WHERE id = :pk", pk=pk)
    tamper(node, "DELETE FROM evidence_log WHERE seq > :seq", seq=keep_seq)


# -- the schedule, on a Clock --------------------------------------------------------------------
class _SlowToStop(service.Service):
    """A sibling whose stop finishes only when the test says (like the sender's in-flight sends)."""

    def __init__(self):
        self.stopping = defer.Deferred()

    def stopService(self):
        super().stopService()
        return self.stopping


def test_service_checkpoints_at_start_every_interval_when_advanced_and_after_children_stop(pair):
    pair.exchange(reference="ONE")                                       # seq 1-2
    clock, child = Clock(), _SlowToStop()
    root = CheckpointService(_writer(pair), 60, clock=clock, run_blocking=_synchronously)
    child.setServiceParent(root)
    root.startService()
    assert child.running

    def seqs():
        return [(cp.number, cp.seq, cp.reason) for cp in load_checkpoints(_dir(pair.a))]

    assert seqs() == [(1, 2, INTERVAL)]                                   # at start: covers what is there
    clock.advance(60)
    assert seqs() == [(1, 2, INTERVAL)]                                   # idle chain: nothing new to sign
    pair.exchange(reference="TWO")                                       # seq 3-4
    clock.advance(59)
    assert len(seqs()) == 1
    clock.advance(1)
    assert seqs() == [(1, 2, INTERVAL), (2, 4, INTERVAL)]

    pair.exchange(reference="THREE")                                     # seq 5-6
    stopped = root.stopService()
    assert not stopped.called and len(seqs()) == 2                       # waits for the children first
    pair.exchange(reference="LATE")                                      # recorded while stopping: seq 7-8
    child.stopping.callback(None)
    assert stopped.called
    assert seqs()[-1] == (3, 8, STOP)                                     # the final one covers it
    clock.advance(600)
    assert len(seqs()) == 3                                               # and the schedule is over
    done = evidence_cli("verify", node=pair.a)
    assert done.returncode == 0, done.stderr
    assert "checkpoint 3 at seq 8" in done.stdout and "0 entries after it" in done.stdout


def test_a_failing_checkpoint_is_logged_and_retried_at_the_next_tick(pair):
    pair.exchange()
    calls = []

    def write(reason):
        calls.append(reason)
        if len(calls) == 1:
            raise OSError("disk full")
        return _writer(pair)(reason)

    clock = Clock()
    root = CheckpointService(write, 30, clock=clock, run_blocking=_synchronously)
    root.startService()
    assert calls == [INTERVAL] and checkpoint_files(_dir(pair.a)) == []
    clock.advance(30)
    assert len(checkpoint_files(_dir(pair.a))) == 1
    root.stopService()


def test_interval_comes_from_the_evidence_table(pair):
    assert pair.a.config().evidence.checkpoint_interval == 60.0
    root = with_checkpoints(service.MultiService(), pair.gw_a.store, pair.a.config(), pair.gw_a.identity)
    assert root.interval == 60.0
    with pair.a.config_path.open("a") as fh:
        fh.write("\n[evidence]\ncheckpoint_interval = 15\n")
    assert pair.a.config().evidence.checkpoint_interval == 15.0


def test_bad_checkpoint_interval_names_file_and_key(pair):
    with pair.a.config_path.open("a") as fh:
        fh.write("\n[evidence]\ncheckpoint_interval = 0\n")
    with pytest.raises(ConfigError) as info:
        pair.a.config()
    assert any(p.startswith(f"{pair.a.config_path} [evidence.checkpoint_interval]: must be at least 1")
               for p in info.value.problems), info.value.problems


# -- detection by `swgw evidence verify` --------------------------------------------------------
def test_deleting_the_newest_entries_with_their_rows_is_reported(pair):
    pair.exchange(reference="KEPT")                                      # seq 1-2
    gone = pair.exchange(reference="GONE")                               # seq 3-4
    done = evidence_cli("checkpoint", node=pair.a)
    assert done.returncode == 0, done.stderr
    (path,) = [p for _n, p in checkpoint_files(_dir(pair.a))]
    assert "wrote checkpoint 1 of chain head seq 4" in done.stdout and str(path) in done.stdout
    ok = evidence_cli("verify", node=pair.a)
    assert ok.returncode == 0, ok.stderr
    assert "checkpoint 1 at seq 4" in ok.stdout

    _delete_newest(pair.a, keep_seq=2, message_id=gone)
    assert verify_evidence(pair.gw_a.store).ok      # the chain and the tables alone cannot tell
    broken = evidence_cli("verify", node=pair.a)
    assert broken.returncode == 1, broken.stdout
    first = broken.stderr.splitlines()[0]
    assert "first broken link: evidence_log seq 3-4: missing" in first, broken.stderr
    assert str(path) in first and "chain now ends at seq 2" in first and "tail truncation" in first

    # and no new checkpoint launders the damage
    refused = evidence_cli("checkpoint", node=pair.a)
    assert refused.returncode == 2
    assert str(path) in refused.stderr and "records the chain at seq 4" in refused.stderr
    assert "swgw evidence verify" in refused.stderr
    assert len(checkpoint_files(_dir(pair.a))) == 1


def test_rewritten_history_after_a_checkpoint_is_reported(pair):
    pair.exchange(reference="ONE")
    assert evidence_cli("checkpoint", node=pair.a).returncode == 0
    # the attacker replaces everything with a new, self-consistent chain of the same length
    with sqlite3.connect(db_path(pair.a)) as conn:
        conn.execute("DELETE FROM evidence_log")
        conn.execute("DELETE FROM events")
        conn.execute("DELETE FROM payloads")
        conn.execute("DELETE FROM receipts")
        conn.execute("DELETE FROM messages")
    pair.exchange(reference="OTHER")
    done = evidence_cli("verify", node=pair.a)
    assert done.returncode == 1
    assert "evidence_log seq 2, field entry_hash" in done.stderr and "rewritten" in done.stderr


@pytest.mark.parametrize("damage, expected", [
    ("delete-middle", "checkpoint(s) 2 missing between 0000000001.json and 0000000003.json: files deleted"),
    ("alter-latest", "signature does not verify with our signing certificate"),
    ("alter-middle", "not the SHA-256 of 0000000002.json"),
    ("garbage-latest", "is not JSON"),
])
def test_damaged_checkpoint_history_is_reported(pair, damage, expected, capsys):
    for ref in ("ONE", "TWO", "THREE"):
        pair.exchange(reference=ref)
        assert evidence_cli("checkpoint", node=pair.a, capsys=capsys).returncode == 0
    files = [p for _n, p in checkpoint_files(_dir(pair.a))]
    assert len(files) == 3
    if damage == "delete-middle":
        files[1].unlink()
    elif damage == "garbage-latest":
        files[2].write_text("not a checkpoint")
    else:
        target = files[2] if damage == "alter-latest" else files[1]
        data = json.loads(target.read_text())
        data["time"] = "2020-01-01T00:00:00.000000Z"
        target.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    done = evidence_cli("verify", node=pair.a, capsys=capsys)
    assert done.returncode == 1, done.stdout
    assert expected in done.stderr, done.stderr


def test_a_checkpoint_signed_by_someone_else_is_reported(pair, pki, capsys):
    pair.exchange()
    other = Signer("BB-NSW", load_private_key(pki / "bb-nsw" / "sign.key"),
                   load_certificate(pki / "bb-nsw" / "sign.crt"))
    write_checkpoint(pair.gw_a.store, _dir(pair.a), other, [other.certificate])
    done = evidence_cli("verify", node=pair.a, capsys=capsys)
    assert done.returncode == 1
    assert "not one of this gateway's signing certificates" in done.stderr, done.stderr


def test_a_deleted_checkpoint_directory_is_reported_once_the_chain_is_older_than_two_intervals(pair):
    with pair.a.config_path.open("a") as fh:
        fh.write("\n[evidence]\ncheckpoint_interval = 1\n")
    pair.exchange()
    assert evidence_cli("checkpoint", node=pair.a).returncode == 0
    for _n, path in checkpoint_files(_dir(pair.a)):
        path.unlink()
    def missed():
        done = evidence_cli("verify", node=pair.a)
        return done if done.returncode == 1 else None

    done = wait_for(missed, interval=0.5, what="verify to miss the checkpoints")
    assert f"checkpoint directory {_dir(pair.a)}: holds no checkpoint" in done.stderr
    assert "swgw evidence checkpoint" in done.stderr


def test_a_fresh_chain_without_checkpoint_yet_verifies(pair, capsys):
    pair.exchange()
    done = evidence_cli("verify", node=pair.a, capsys=capsys)
    assert done.returncode == 0, done.stderr
    assert "no checkpoint yet" in done.stdout


def test_purge_and_later_checkpoints_still_verify(pair, capsys):
    old = pair.exchange(reference="OLD")
    pair.exchange(reference="NEW")
    assert evidence_cli("checkpoint", node=pair.a, capsys=capsys).returncode == 0
    forty_days_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=40)
    with sqlite3.connect(db_path(pair.a)) as conn:
        conn.execute("UPDATE messages SET created_at = ? WHERE message_id = ?",
                     (forty_days_ago.strftime("%Y-%m-%d %H:%M:%S.%f"), old))
    purged = evidence_cli("purge", "--older-than", "30", node=pair.a, capsys=capsys)
    assert purged.returncode == 0 and "recorded as evidence entry seq 5" in purged.stdout, purged.stderr
    assert evidence_cli("checkpoint", node=pair.a, capsys=capsys).returncode == 0
    pair.exchange(reference="LATER")                                    # seq 6-7, after the last checkpoint
    done = evidence_cli("verify", node=pair.a, capsys=capsys)
    assert done.returncode == 0, done.stderr
    assert "purged as recorded" in done.stdout
    assert "checkpoint 2 at seq 5" in done.stdout and "2 entries after it" in done.stdout


@pytest.mark.parametrize("key_type", ["rsa", "ed25519", "ec-p256"])
def test_checkpoints_are_signed_with_the_algorithm_of_the_key(pair, pki, key_type):
    pair.exchange()
    files = ensure_party(pki, "aa-nsw", key_type=key_type)
    signer = Signer("AA-NSW", load_private_key(files.key("sign", key_type)),
                    load_certificate(files.cert("sign", key_type)))
    cp = write_checkpoint(pair.gw_a.store, _dir(pair.a), signer, [signer.certificate])
    assert cp.signature_algorithm.endswith({"rsa": "rsa-sha256", "ed25519": "eddsa-ed25519",
                                            "ec-p256": "ecdsa-sha256"}[key_type])
    with pair.gw_a.store.sessions() as s:
        chain = [(e.seq, e.entry_hash, e.time) for e in s.query(EvidenceEntry).order_by(EvidenceEntry.seq)]
    result = check_checkpoints(CheckpointPolicy(_dir(pair.a), (signer.certificate,), 60), chain)
    assert result.findings == [] and "checkpoint 1 at seq 2" in result.summary


# -- the real daemon ------------------------------------------------------------------------------
def _status(node, message_id: str) -> str | None:
    row = query_one(node, "SELECT status FROM messages WHERE message_id = :m", m=message_id)
    return row[0] if row else None


def test_daemons_checkpoint_while_running_and_at_stop_and_truncation_is_then_caught(tmp_path, pki, pair_databases):
    a, b = write_pair(tmp_path, pki, database_urls=pair_databases)
    document = tmp_path / "doc.xml"
    document.write_bytes(b"<doc>checkpointed</doc>")
    daemons = [Daemon(b).start(), Daemon(a).start()]
    try:
        sent = [swgw("submit", "-c", str(a.config_path), "--to", "bb-nsw", "--type", "test-cert", "--ref", ref,
                     str(document)).stdout.strip() for ref in ("D-1", "D-2")]
        for mid in sent:
            wait_for(lambda mid=mid: _status(a, mid) == "delivered", what=f"{mid} delivered")
    finally:
        codes = [d.stop() for d in reversed(daemons)]
    assert codes == [0, 0]
    for node, head in ((a, 4), (b, 2)):          # a: sent + receipt per message; b: one received each
        latest = load_checkpoints(_dir(node))[-1]
        assert (latest.seq, latest.reason) == (head, STOP), latest
        done = evidence_cli("verify", node=node)
        assert done.returncode == 0, done.stderr
        assert f"at seq {head} written" in done.stdout and "0 entries after it" in done.stdout
    assert "evidence checkpoint" in (a.home / "daemon.log").read_text()

    _delete_newest(a, keep_seq=2, message_id=sent[1])
    broken = evidence_cli("verify", node=a)
    assert broken.returncode == 1
    assert "evidence_log seq 3-4: missing" in broken.stderr and "tail truncation" in broken.stderr
