"""RFC 3161 time-stamps of the chain head, against a local TSA run by `openssl ts -reply`."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.request
import zipfile

import pytest
from cryptography import x509

from gateway.cli import main
from gateway.evidence.canonical import entry_hash
from gateway.evidence.chain import entry_fields
from gateway.evidence.tsp import TimestampError, make_request, parse_response, verify_token
from gateway.store.models import EvidenceEntry
from tests.blob_helpers import alter_blob
from tests.evidence_helpers import make_pair
from tests.harness import reserve_port, swgw
from tests.tsa_server import start_tsa


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    server = start_tsa(tmp_path_factory.mktemp("tsa"))
    yield server
    server.close()


@pytest.fixture
def pair(tmp_path, pki, tsa):
    p = make_pair(tmp_path, pki)
    with p.a.config_path.open("a") as fh:
        fh.write(f'\n[evidence]\ntsa_url = "{tsa.url}"\ntsa_certs = ["{tsa.ca_cert}"]\n')
    yield p
    p.close()


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_chain_head_is_time_stamped_and_the_token_checks_out(pair, tsa, capsys, tmp_path):
    mid = pair.exchange()
    store = pair.gw_a.store
    with store.sessions() as s:
        head = s.query(EvidenceEntry).order_by(EvidenceEntry.seq.desc()).first()
    code, out, err = run(capsys, "evidence", "timestamp", "-c", str(pair.a.config_path))
    assert code == 0, err
    assert f"chain head seq {head.seq} {head.entry_hash}" in out and "recorded as entry seq 3" in out
    with store.sessions() as s:
        entry = s.get(EvidenceEntry, 3)
    data = json.loads(entry.data)
    assert entry.kind == "timestamp" and entry.prev_hash == head.entry_hash
    assert (data["timestamped_seq"], data["timestamped_hash"], data["tsa"]) == (2, head.entry_hash, tsa.url)
    token = store.blob(data["token_digest"])
    # the TSA (OpenSSL) agrees: the imprint is the head hash and the signature verifies
    (tmp_path / "t.tst").write_bytes(token)
    done = subprocess.run(["openssl", "ts", "-verify", "-token_in", "-in", str(tmp_path / "t.tst"),
                           "-digest", head.entry_hash, "-CAfile", str(tsa.ca_cert)], capture_output=True, text=True)
    assert "Verification: OK" in done.stdout, done.stderr
    info = verify_token(token, [x509.load_pem_x509_certificate(tsa.ca_cert.read_bytes())])
    assert info.hashed_message.hex() == head.entry_hash and info.signer.subject.rfc4514_string() == "CN=Test TSA"

    code, out, _ = run(capsys, "evidence", "verify", "-c", str(pair.a.config_path))
    assert code == 0 and "1 time-stamp(s), latest: seq 2 time-stamped at" in out

    # the exported bundle carries the token and its README's openssl ts command works
    bundle = tmp_path / "b.zip"
    swgw("evidence", "export", mid, "-c", str(pair.a.config_path), "-o", str(bundle))
    d = tmp_path / "b"
    zipfile.ZipFile(bundle).extractall(d)
    (command,) = [line.strip() for line in (d / "README.txt").read_text().splitlines()
                  if line.strip().startswith("openssl ts -verify")]
    assert "timestamps/seq-3.tst" in command and head.entry_hash in command
    done = subprocess.run(command, shell=True, cwd=d, capture_output=True, text=True)
    assert "Verification: OK" in done.stdout, done.stderr

    # a tampered token file is named
    where = alter_blob(store, data["token_digest"], lambda _: token[:-1] + bytes([token[-1] ^ 1]))
    code, _, err = run(capsys, "evidence", "verify", "-c", str(pair.a.config_path))
    assert code == 1 and where in err.splitlines()[0]


def test_rewriting_history_under_a_time_stamp_is_detected(pair, capsys):
    pair.exchange()
    assert run(capsys, "evidence", "timestamp", "-c", str(pair.a.config_path))[0] == 0
    # An insider rewrites entry 1 and recomputes every hash after it: the chain is consistent
    # again, but the token over the old seq 2 no longer matches.
    db = str(pair.a.config().state_dir / "gateway.db")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evidence_log SET partner_id = 'zz-nsw' WHERE seq = 1")
        conn.execute("UPDATE messages SET partner_id = 'zz-nsw'")
    with pair.gw_a.store.sessions.begin() as s:
        prev = "0" * 64
        for e in s.query(EvidenceEntry).order_by(EvidenceEntry.seq):
            e.prev_hash = prev
            e.entry_hash = entry_hash(entry_fields(e))
            s.flush()
            prev = e.entry_hash
    code, _, err = run(capsys, "evidence", "verify", "-c", str(pair.a.config_path))
    assert code == 1
    assert "evidence_log seq 3 (timestamp)" in err and "not that entry's entry_hash" in err


def test_token_checks_refuse_forgeries(tsa):
    request = make_request(bytes(range(32)))
    answer = urllib.request.urlopen(urllib.request.Request(
        tsa.url, data=request.der, headers={"Content-Type": "application/timestamp-query"})).read()
    token = parse_response(answer)
    assert verify_token(token).hashed_message == bytes(range(32))
    broken = bytearray(token)
    broken[-10] ^= 0xFF                                  # inside the signature value
    with pytest.raises(TimestampError, match="signature"):
        verify_token(bytes(broken))
    other_ca = x509.load_pem_x509_certificate(tsa.tsa_cert.read_bytes())   # not the issuer of itself
    with pytest.raises(TimestampError, match="not issued by"):
        verify_token(token, [x509.load_pem_x509_certificate(
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/dev/null",
                            "-subj", "/CN=Other", "-days", "1"], capture_output=True, check=True).stdout)])
    assert verify_token(token, [other_ca]).signer == other_ca   # the TSA certificate itself may be the anchor
    with pytest.raises(TimestampError, match="refused"):
        parse_response(bytes.fromhex("30053003020102"))   # status 2 (rejection), no token


def test_unreachable_tsa_is_a_clear_error(pair, capsys):
    pair.exchange()
    code, _, err = run(capsys, "evidence", "timestamp", "-c", str(pair.a.config_path), "--tsa",
                       f"http://127.0.0.1:{reserve_port()}/tsr", "--timeout", "2")
    assert code == 2 and "cannot be reached" in err
