"""``swgw`` as an operator runs it: a real subprocess, exit codes, stdout and stderr."""
from __future__ import annotations

import json
import stat

import pytest

from gateway.store.store import MessageStore
from tests.harness import ROOT, swgw, write_pair

SAMPLE = ROOT / "conf" / "samples" / "ephyto-AR-sample.xml"


@pytest.fixture
def node(tmp_path, pki):
    a, _ = write_pair(tmp_path, pki)
    return a


def stored_messages(node):
    config = node.config()
    store = MessageStore(config.database_url, config.blob_dir)
    try:
        return store.list_messages()
    finally:
        store.close()


def test_trace_of_unknown_message_id_exits_1(node):
    result = swgw("trace", "-c", str(node.config_path), "no-such-id@nowhere", check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "swgw trace: no message with message id no-such-id@nowhere in this gateway's store"


def test_submit_to_unknown_partner_exits_2_and_stores_nothing(node, tmp_path):
    result = swgw("submit", "-c", str(node.config_path), "--to", "zz-nsw", "--type", "ephyto",
                  "--ref", "R-1", str(SAMPLE), check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "unknown partner 'zz-nsw'" in result.stderr
    assert "configured partners: bb-nsw" in result.stderr
    assert stored_messages(node) == []

    # Same for a document type the partner has no PMode for, and for a file that is not XML.
    result = swgw("submit", "-c", str(node.config_path), "--to", "bb-nsw", "--type", "cites", str(SAMPLE),
                  check=False)
    assert result.returncode == 2 and "it takes: ephyto, manifest" in result.stderr
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<SPSCertificate><unclosed></SPSCertificate>")
    result = swgw("submit", "-c", str(node.config_path), "--to", "bb-nsw", "--type", "ephyto", str(broken),
                  check=False)
    assert result.returncode == 2 and "not well-formed XML" in result.stderr
    result = swgw("submit", "-c", str(node.config_path), "--to", "bb-nsw", "--type", "ephyto",
                  str(tmp_path / "missing.xml"), check=False)
    assert result.returncode == 2 and "cannot read" in result.stderr and "missing.xml" in result.stderr
    assert stored_messages(node) == []


def test_submit_then_trace_and_messages(node):
    result = swgw("submit", "-c", str(node.config_path), "--to", "bb-nsw", "--type", "ephyto",
                  "--ref", "NSW-7", str(SAMPLE), check=False)
    assert result.returncode == 0, result.stderr
    message_id = result.stdout.strip()
    assert message_id.endswith("@aa-nsw.swgw")

    trace = swgw("trace", "-c", str(node.config_path), "--json", message_id)
    data = json.loads(trace.stdout)
    assert (data["message_id"], data["status"], data["partner"], data["reference"]) == (
        message_id, "queued", "bb-nsw", "NSW-7")
    assert [e["step"] for e in data["events"]][:1] == ["submit"]
    assert {"validate", "compress", "pack", "sign", "encrypt", "persist"} <= {e["step"] for e in data["events"]}

    by_ref = swgw("trace", "-c", str(node.config_path), "--ref", "NSW-7")
    assert by_ref.stdout.startswith(message_id) and "status: queued" in by_ref.stdout

    listing = json.loads(swgw("messages", "-c", str(node.config_path), "--json").stdout)
    assert isinstance(listing, list) and [m["message_id"] for m in listing] == [message_id]
    assert listing[0]["direction"] == "out" and listing[0]["status"] == "queued"


def test_messages_json_prints_a_json_list(node):
    result = swgw("messages", "-c", str(node.config_path), "--json")
    assert json.loads(result.stdout) == []
    result = swgw("messages", "-c", str(node.config_path))
    assert result.stdout.strip() == "no messages"


def test_pki_init_creates_party_keys_with_mode_600(tmp_path):
    target = tmp_path / "certs"
    result = swgw("pki", "init", "--dir", str(target), "--party", "zz-nsw", check=False)
    assert result.returncode == 0, result.stderr
    party = target / "zz-nsw"
    # RSA (1.15) pairs plus the eDelivery AS4 2.0 pairs (Ed25519/X25519 and EC P-256)
    stems = ("tls", "sign", "enc", "sign-ed25519", "enc-x25519", "sign-ec-p256", "enc-ec-p256")
    assert sorted(p.name for p in party.iterdir()) == sorted(
        f"{kind}.{ext}" for kind in stems for ext in ("crt", "key"))
    for kind in stems:
        assert stat.S_IMODE((party / f"{kind}.key").stat().st_mode) == 0o600, kind
        assert (party / f"{kind}.crt").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE((target / "ca" / "ca.key").stat().st_mode) == 0o600
    assert str(party) in result.stdout

    # Running it again keeps the existing material (no silent key rotation).
    before = {p.name: p.read_bytes() for p in party.iterdir()}
    assert swgw("pki", "init", "--dir", str(target), "--party", "zz-nsw").returncode == 0
    assert {p.name: p.read_bytes() for p in party.iterdir()} == before
