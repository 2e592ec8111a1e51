"""Two real gateway daemons on 127.0.0.1 exchange signed, encrypted AS4 messages over mutual TLS."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from crypto import content
from gateway.connectors.folder_client import drop_document, inbox_entry, report_for
from tests.harness import Daemon, swgw, wait_for, write_pair

SAMPLES = Path(__file__).resolve().parent.parent / "conf" / "samples"


@pytest.fixture
def pair(tmp_path, pki, pair_databases):
    a, b = write_pair(tmp_path, pki, database_urls=pair_databases)
    daemons = [Daemon(a).start(), Daemon(b).start()]
    yield a, b
    for d in daemons:
        d.stop()


def test_documents_flow_both_ways_with_verified_receipts(pair):
    a, b = pair
    ca, cb = a.config(), b.config()
    ephyto = (SAMPLES / "ephyto-AR-sample.xml").read_bytes()
    manifest = (SAMPLES / "ens-CC315A-reduced.xml").read_bytes()

    # a -> b through the folder connector
    drop_document(ca.folder.outbox, "phyto-1.xml", ephyto, partner="bb-nsw", document_type="ephyto",
                  reference="REF-PHYTO-1")
    # b -> a through `swgw submit`
    submitted = swgw("submit", "-c", str(b.config_path), "--to", "aa-nsw", "--type", "manifest",
                     "--ref", "REF-ENS-1", str(SAMPLES / "ens-CC315A-reduced.xml"))
    mid_b = submitted.stdout.strip()

    report_a = wait_for(lambda: (r := report_for(ca.folder.reports, "REF-PHYTO-1")) and r["status"] != "queued" and r,
                        what="a's delivery report")
    report_b = wait_for(lambda: report_for(cb.folder.reports, "REF-ENS-1"), what="b's delivery report")
    assert report_a["status"] == "delivered", report_a
    assert report_b["status"] == "delivered", report_b
    assert report_b["message_id"] == mid_b

    entry = inbox_entry(cb.folder.inbox, report_a["message_id"])
    assert entry and entry["reference"] == "REF-PHYTO-1" and entry["sender"] == "AA-NSW"
    assert (cb.folder.inbox / entry["document"]).read_bytes() == ephyto
    entry = inbox_entry(ca.folder.inbox, mid_b)
    assert entry and (ca.folder.inbox / entry["document"]).read_bytes() == manifest
    # the outbox document was archived, not left for a second pickup
    assert (ca.folder.outbox / "sent" / "phyto-1.xml").exists()
    assert not list(ca.folder.outbox.glob("*.meta.json"))

    trace = json.loads(swgw("trace", "-c", str(a.config_path), report_a["message_id"], "--json").stdout)
    assert trace["message_id"] == report_a["message_id"] and trace["status"] == "delivered"
    steps = [(e["step"], e["outcome"]) for e in trace["events"]]
    for step in [("sign", "ok"), ("encrypt", "ok"), ("persist", "ok"), ("receipt", "verified")]:
        assert step in steps
    assert all(set(e) == {"time", "step", "outcome", "detail"} for e in trace["events"])
    trace_b = json.loads(swgw("trace", "-c", str(b.config_path), report_a["message_id"], "--json").stdout)
    assert ("verify", "ok") in [(e["step"], e["outcome"]) for e in trace_b["events"]]
    by_ref = json.loads(swgw("trace", "-c", str(a.config_path), "--ref", "REF-PHYTO-1", "--json").stdout)
    assert by_ref["message_id"] == report_a["message_id"]
    listing = json.loads(swgw("messages", "-c", str(a.config_path), "--status", "delivered", "--json").stdout)
    assert {(m["message_id"], m["direction"]) for m in listing} == {(report_a["message_id"], "out"),
                                                                    (mid_b, "in")}


def test_rejected_outbox_document_is_explained(pair):
    a, _b = pair
    ca = a.config()
    drop_document(ca.folder.outbox, "bad.xml", b"<not-closed>", partner="bb-nsw", document_type="ephyto")
    drop_document(ca.folder.outbox, "nobody.xml", b"<a/>", partner="zz-nsw", document_type="test-cert")
    wait_for(lambda: (ca.folder.outbox / "rejected" / "nobody.xml.error.txt").exists()
             and (ca.folder.outbox / "rejected" / "bad.xml.error.txt").exists(), what="rejections")
    assert "well-formed" in (ca.folder.outbox / "rejected" / "bad.xml.error.txt").read_text()
    assert "unknown partner 'zz-nsw'" in (ca.folder.outbox / "rejected" / "nobody.xml.error.txt").read_text()


def test_partner_down_then_up_message_waits_and_flows(tmp_path, pki, pair_databases):
    a, b = write_pair(tmp_path, pki, database_urls=pair_databases)
    da = Daemon(a).start()
    try:
        ca = a.config()
        drop_document(ca.folder.outbox, "later.xml", b"<doc>later</doc>", partner="bb-nsw",
                      document_type="test-cert", reference="LATER")
        wait_for(lambda: any(e["step"] == "retry" for e in json.loads(
            swgw("trace", "-c", str(a.config_path), "--ref", "LATER", "--json", check=False).stdout or "{}"
        ).get("events", [])), what="a retry to be scheduled")
        db = Daemon(b).start()
        try:
            report = wait_for(lambda: report_for(ca.folder.reports, "LATER"), what="delivery after partner start")
            assert report["status"] == "delivered"
        finally:
            db.stop()
    finally:
        da.stop()


def test_plain_http_behind_a_proxy_is_allowed_and_loudly_logged(tmp_path, pki):
    a, b = write_pair(tmp_path, pki, tls=False, scheme="http")
    daemons = [Daemon(a).start(), Daemon(b).start()]
    try:
        ca = a.config()
        drop_document(ca.folder.outbox, "p.xml", b"<doc>plain</doc>", partner="bb-nsw", document_type="test-cert",
                      reference="PLAIN")
        report = wait_for(lambda: report_for(ca.folder.reports, "PLAIN"), what="delivery over plain HTTP")
        assert report["status"] == "delivered"
    finally:
        for d in daemons:
            d.stop()
    assert "PLAIN HTTP" in daemons[0].log.read_text()


def _large_document(size: int, seed: bytes) -> bytes:
    """An XML document of ``size`` bytes around base64 of pseudo-random bytes: it stays larger
    than the spool threshold after gzip, so every step takes the file path."""
    head, tail = b"<certificate><data>", b"</data></certificate>"
    body, block = bytearray(), hashlib.sha256(seed).digest()
    while len(body) < size - len(head) - len(tail):
        block = hashlib.sha256(block).digest()
        body += base64.b64encode(block * 24)
    return head + bytes(body[:size - len(head) - len(tail)]) + tail


def test_payloads_past_the_spool_threshold_flow_through_files(pair):
    """Documents above crypto.content.SPOOL_THRESHOLD go outbox file -> gzip/encrypt spool ->
    streamed request body -> spooled body at the receiver -> decrypt/gunzip spool -> blob file
    -> inbox, compressed (test-cert) and not (test-manifest), and the evidence stays verifiable."""
    a, b = pair
    ca, cb = a.config(), b.config()
    size = content.SPOOL_THRESHOLD + (2 << 20)
    docs = {"BIG-GZ": ("test-cert", _large_document(size, b"gz")),
            "BIG-RAW": ("test-manifest", _large_document(size + 12345, b"raw"))}
    for ref, (doc_type, doc) in docs.items():
        drop_document(ca.folder.outbox, f"{ref}.xml", doc, partner="bb-nsw", document_type=doc_type, reference=ref)
    for ref, (_doc_type, doc) in docs.items():
        report = wait_for(lambda: (r := report_for(ca.folder.reports, ref)) and r["status"] != "queued" and r,
                          what=f"the delivery report of {ref}")
        assert report["status"] == "delivered", report
        entry = inbox_entry(cb.folder.inbox, report["message_id"])
        assert entry and entry["reference"] == ref
        assert hashlib.sha256((cb.folder.inbox / entry["document"]).read_bytes()).digest() == \
            hashlib.sha256(doc).digest()
    for node in (a, b):
        done = swgw("evidence", "verify", "-c", str(node.config_path), check=False)
        assert done.returncode == 0, done.stdout + done.stderr
