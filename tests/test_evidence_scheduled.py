"""gateway.toml's ``[evidence]`` table: validated with file and key, read by `swgw evidence`,
and driving the daemon's scheduled work: a real daemon time-stamps the chain head against a
local RFC 3161 TSA (tests/tsa_server.py) and purges per retention, and `swgw evidence
verify` passes afterwards."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest
from twisted.internet import defer, task

from gateway.config import EvidenceConfig
from gateway.evidence.scheduler import ThreadedJob, run_timestamp, timestamp_if_new
from partners.configfile import ConfigError
from tests.evidence_helpers import make_pair
from tests.harness import Daemon, swgw, wait_for
from tests.tsa_server import start_tsa


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    server = start_tsa(tmp_path_factory.mktemp("tsa"))
    yield server
    server.close()


@pytest.fixture
def pair(tmp_path, pki):
    p = make_pair(tmp_path, pki)
    yield p
    p.close()


def _evidence(node, text: str) -> None:
    with node.config_path.open("a") as fh:
        fh.write("\n[evidence]\n" + text)


def _log(node) -> list[tuple[int, str, dict]]:
    with sqlite3.connect(node.config().state_dir / "gateway.db") as conn:
        rows = conn.execute("SELECT seq, kind, data FROM evidence_log ORDER BY seq").fetchall()
    return [(seq, kind, json.loads(data) if data else {}) for seq, kind, data in rows]


def test_evidence_table_is_read_with_defaults(pair, tsa):
    assert pair.a.config().evidence == EvidenceConfig()
    _evidence(pair.a, f'tsa_url = "{tsa.url}"\ntsa_certs = ["{tsa.ca_cert}"]\nretention_days = 3650\n')
    ev = pair.a.config().evidence
    assert (ev.tsa_url, ev.tsa_certs, ev.retention_days) == (tsa.url, (tsa.ca_cert,), 3650.0)
    assert (ev.timestamp_interval, ev.purge_interval, ev.tsa_timeout) == (3600.0, 86400.0, 30.0)
    assert ev.scheduled_timestamps and ev.scheduled_purge


@pytest.mark.parametrize("text, message", [
    ('tsa_url = "ftp://tsa.example"\n', "[evidence.tsa_url]: expected an http(s) URL"),
    ("timestamp_interval = 60\n", "[evidence.timestamp_interval]: scheduled time-stamps need tsa_url"),
    ("retention_days = 0\n", "[evidence.retention_days]: must be at least 1"),
    ('retention_days = "ten years"\n', "[evidence.retention_days]: expected a number"),
    ("purge_interval = 60\n", "[evidence.purge_interval]: a scheduled purge needs retention_days"),
    ('tsa_url = "http://t"\ntimestamp_interval = -1\n', "[evidence.timestamp_interval]: must be at least 0"),
    ('tsa_certs = ["missing.crt"]\n', "[evidence.tsa_certs]: file "),
    ("retention_day = 10\n", "[evidence.retention_day]: unknown key (typo?)"),
])
def test_bad_evidence_settings_name_file_and_key(pair, text, message):
    _evidence(pair.a, text)
    with pytest.raises(ConfigError) as info:
        pair.a.config()
    assert any(p.startswith(f"{pair.a.config_path} {message}") for p in info.value.problems), info.value.problems


def test_old_evidence_toml_is_refused_with_the_fix(pair, tsa):
    old = pair.a.home / "evidence.toml"
    old.write_text(f'[evidence]\ntsa_url = "{tsa.url}"\n')
    done = swgw("evidence", "verify", "-c", str(pair.a.config_path), check=False)
    assert done.returncode != 0
    assert f"{old}: no longer read: move its [evidence] table into {pair.a.config_path}" in done.stderr


def test_timestamp_if_new_skips_an_empty_or_already_covered_log(pair, tsa):
    _evidence(pair.a, f'tsa_url = "{tsa.url}"\ntsa_certs = ["{tsa.ca_cert}"]\n')
    settings = pair.a.config().evidence
    store = pair.gw_a.store
    assert timestamp_if_new(store, settings) is None                  # empty log: nothing to stamp
    pair.exchange(reference="ONE")
    assert timestamp_if_new(store, settings).covered.seq == 2
    assert timestamp_if_new(store, settings) is None                  # only the time-stamp since
    pair.exchange(reference="TWO")
    assert timestamp_if_new(store, settings).covered.seq == 5         # the head, which covers seq 4
    assert [k for _s, k, _d in _log(pair.a)] == ["message-sent", "receipt-received", "timestamp",
                                                  "message-sent", "receipt-received", "timestamp"]


def test_daemon_time_stamps_the_chain_head_on_schedule(pair, tsa):
    pair.exchange()
    pair.close()
    _evidence(pair.a, f'tsa_url = "{tsa.url}"\ntsa_certs = ["{tsa.ca_cert}"]\ntimestamp_interval = 0.2\n')
    requests_before = len(tsa.requests)
    daemon = Daemon(pair.a).start()
    try:
        stamped = wait_for(lambda: [e for e in _log(pair.a) if e[1] == "timestamp"],
                           what="a scheduled time-stamp entry")
        seq, _kind, data = stamped[0]
        assert seq == 3 and data["timestamped_seq"] == 2 and data["tsa"] == tsa.url
        wait_for(lambda: daemon.log.read_text().count("time-stamped evidence chain head") >= 1,
                 what="the time-stamp log line")
        assert len(tsa.requests) - requests_before >= 1
        # (that idle ticks ask the TSA nothing is shown tick by tick on a Clock, below)
    finally:
        daemon.stop()
    done = swgw("evidence", "verify", "-c", str(pair.a.config_path), check=False)
    assert done.returncode == 0, done.stderr
    assert "1 time-stamp(s), latest: seq 2 time-stamped at" in done.stdout
    assert "Traceback" not in daemon.log.read_text()


def test_daemon_purges_per_retention_and_the_chain_still_verifies(pair, tsa):
    old = pair.exchange(reference="OLD")
    recent = pair.exchange(reference="RECENT")
    (old_row,) = pair.gw_a.store.find(old)
    (recent_row,) = pair.gw_a.store.find(recent)
    blobs = pair.gw_a.store.blobs
    pair.close()
    forty_days_ago = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=40))
    with sqlite3.connect(pair.a.config().state_dir / "gateway.db") as conn:
        conn.execute("UPDATE messages SET created_at = ? WHERE message_id = ?",
                     (forty_days_ago.strftime("%Y-%m-%d %H:%M:%S.%f"), old))
    _evidence(pair.a, f'tsa_url = "{tsa.url}"\ntsa_certs = ["{tsa.ca_cert}"]\ntimestamp_interval = 0.2\n'
              "retention_days = 30\npurge_interval = 0.2\n")
    daemon = Daemon(pair.a).start()
    try:
        purges = wait_for(lambda: [e for e in _log(pair.a) if e[1] == "purge"],
                          what="a scheduled purge entry")
        (purge_seq, _kind, data), = purges
        assert data["messages"] == [["out", "bb-nsw", old]] and data["older_than_days"] == 30
        # the next time-stamp covers the purge entry (or a later one)
        wait_for(lambda: any(k == "timestamp" and d["timestamped_seq"] >= purge_seq for _s, k, d in _log(pair.a)), what="a time-stamp over the purge entry")
    finally:
        daemon.stop()
    assert not blobs.exists(old_row.raw_digest) and not blobs.exists(old_row.receipt.digest)
    assert blobs.exists(recent_row.raw_digest) and blobs.exists(recent_row.receipt.digest)
    assert len([e for e in _log(pair.a) if e[1] == "purge"]) == 1       # later ticks find nothing new
    done = swgw("evidence", "verify", "-c", str(pair.a.config_path), check=False)
    assert done.returncode == 0, done.stderr
    assert "purged as recorded" in done.stdout and "time-stamp(s)" in done.stdout
    assert "Traceback" not in daemon.log.read_text()


def test_idle_ticks_of_the_time_stamp_schedule_ask_the_tsa_nothing(pair, tsa):
    """The real scheduled job on a task.Clock: a token at start, none while nothing new is
    logged (a token over a token proves nothing), one at the first tick after new entries."""
    _evidence(pair.a, f'tsa_url = "{tsa.url}"\ntsa_certs = ["{tsa.ca_cert}"]\ntimestamp_interval = 60\n')
    settings = pair.a.config().evidence
    pair.exchange(reference="ONE")
    clock = task.Clock()
    job = ThreadedJob("evidence-timestamp", settings.timestamp_interval, run_timestamp, pair.gw_a.store, settings,
                      clock=clock, run_blocking=defer.maybeDeferred)
    before = len(tsa.requests)
    job.startService()
    try:
        assert [k for _s, k, _d in _log(pair.a)] == ["message-sent", "receipt-received", "timestamp"]
        for _ in range(5):
            clock.advance(60)
        assert len(tsa.requests) - before == 1
        pair.exchange(reference="TWO")
        clock.advance(59)
        assert len(tsa.requests) - before == 1
        clock.advance(1)
        assert len(tsa.requests) - before == 2
        assert [k for _s, k, _d in _log(pair.a)][-1] == "timestamp"
    finally:
        job.stopService()
