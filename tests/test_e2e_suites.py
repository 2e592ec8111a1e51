"""Algorithm suites and trust, end to end.

A national gateway (ke-nsw) runs as a real daemon beside three partner daemons, over mutual
TLS: aa-nsw on eDelivery AS4 2.0 EdDSA/X25519, bb-nsw on 1.15 (RSA), cc-nsw on 2.0
ECDSA/ECDH-ES signed but not AS4-encrypted (TLS only). Documents flow both ways and every
message ends ``delivered`` on a verified receipt. Every partner folder on both sides names
trust anchors and a CRL, so each signature (messages and receipts) passes path validation.
A fourth partner, dd-nsw, connects with a revoked TLS client certificate and is refused.

Then, in process against the same kind of configuration: a revoked, an expired and another
party's (valid) signing certificate are each answered EBMS:0101; a certificate rollover
(two configured signing certificates) accepts both; a 2.0 partner falling back to 1.15 is
answered EBMS:0103. (Downgrades within 1.15 -- SHA-1, RSA-1.5, CBC -- are in the attack corpus.)
"""
from __future__ import annotations

import contextlib

import dataclasses
import gzip
import json
import uuid
import zipfile

import pytest
from lxml import etree

from crypto import EDELIVERY_AS4_2_0_EDDSA, verify_message
from crypto.devpki import ensure_party, issue_certificate, issue_expired, revoke
from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.connectors.folder_client import drop_document, inbox_entry, report_for
from gateway.outbound import OutboundPipeline, Submission
from tests.harness import Daemon, add_partner, reserve_port, swgw, wait_for, write_node

EDDSA, ECDSA, V115 = "edelivery-as4-2.0-eddsa", "edelivery-as4-2.0-ecdsa", "edelivery-as4-1.15"
PARTNERS = {"aa-nsw": (EDDSA, True), "bb-nsw": (V115, True), "cc-nsw": (ECDSA, False)}
XENC = "http://www.w3.org/2001/04/xmlenc#"


def doc(text: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<cert xmlns="urn:test:cert"><id>{text}</id></cert>\n'.encode()


@pytest.fixture(scope="module")
def spki(tmp_path_factory):
    """A PKI of its own (its CRL revokes certificates; the session PKI must stay clean)."""
    root = tmp_path_factory.mktemp("suites-pki")
    for party in ("ke-nsw", "aa-nsw", "bb-nsw", "cc-nsw", "dd-nsw"):
        ensure_party(root, party)
    for key_type in ("ed25519", "ec-p256"):
        ensure_party(root, "ke-nsw", key_type=key_type)
    ensure_party(root, "aa-nsw", key_type="ed25519")
    ensure_party(root, "cc-nsw", key_type="ec-p256")
    ensure_party(root, "cc-nsw", key_type="ed25519")
    issue_certificate(root, "dd-nsw", "tls-revoked", kind="tls")
    issue_certificate(root, "aa-nsw", "sign-ed25519-revoked", key_type="ed25519")
    issue_certificate(root, "aa-nsw", "sign-ed25519-next", key_type="ed25519")     # rollover
    issue_expired(root, "aa-nsw", kind="sign", key_type="ed25519")
    revoke(root, "dd-nsw", "tls-revoked")
    revoke(root, "aa-nsw", "sign-ed25519-revoked")
    return root


def trust_lines(pki) -> str:
    """Anchors and CRL for a partner folder: every signature gets path validation."""
    return f'signing_trust = ["{pki / "ca" / "ca.crt"}"]\ncrls = ["{pki / "ca" / "ca.crl"}"]\n'


@pytest.fixture(scope="module")
def national(tmp_path_factory, spki):
    tmp = tmp_path_factory.mktemp("suites-e2e")
    ports = {name: reserve_port() for name in ("ke-nsw", *PARTNERS, "dd-nsw")}
    ke = write_node(tmp, spki, "ke-nsw", "bb-nsw", ports["ke-nsw"], ports["bb-nsw"])
    nodes = {}
    for name, (suite, encrypt) in PARTNERS.items():
        add_partner(ke, spki, name, ports[name], suite=suite, encrypt=encrypt, partner_extra=trust_lines(spki))
        node = write_node(tmp, spki, name, "ke-nsw", ports[name], ports["ke-nsw"])
        add_partner(node, spki, "ke-nsw", ports["ke-nsw"], suite=suite, encrypt=encrypt,
                    partner_extra=trust_lines(spki))
        nodes[name] = node
    # dd-nsw presents a revoked TLS client certificate (its listener's, which it also sends with).
    add_partner(ke, spki, "dd-nsw", ports["dd-nsw"], partner_extra=trust_lines(spki))
    dd = write_node(tmp, spki, "dd-nsw", "ke-nsw", ports["dd-nsw"], ports["ke-nsw"], attempts=1)
    dd.config_path.write_text(dd.config_path.read_text()
                              .replace(str(spki / "dd-nsw" / "tls.crt"), str(spki / "dd-nsw" / "tls-revoked.crt"))
                              .replace(str(spki / "dd-nsw" / "tls.key"), str(spki / "dd-nsw" / "tls-revoked.key")))
    nodes["dd-nsw"] = dd
    daemons = [Daemon(ke).start()] + [Daemon(n).start() for n in nodes.values()]
    yield ke, nodes
    for d in daemons:
        d.stop()


def _delivered(config, reference: str) -> dict:
    report = wait_for(lambda: (r := report_for(config.folder.reports, reference)) and r["status"] != "queued" and r, what=f"report for {reference}")
    assert report["status"] == "delivered", report
    return report


def test_national_gateway_exchanges_with_2_0_and_1_15_partners_both_ways(national):
    ke, nodes = national
    cke = ke.config()
    for name in PARTNERS:
        drop_document(cke.folder.outbox, f"out-{name}.xml", doc(f"to {name}"), partner=name,
                      document_type="test-cert", reference=f"KE-{name}")
        drop_document(nodes[name].config().folder.outbox, f"in-{name}.xml", doc(f"from {name}"),
                      partner="ke-nsw", document_type="test-cert", reference=f"{name}-KE")
    for name, (suite, encrypt) in PARTNERS.items():
        cpartner = nodes[name].config()
        out = _delivered(cke, f"KE-{name}")
        back = _delivered(cpartner, f"{name}-KE")
        entry = inbox_entry(cpartner.folder.inbox, out["message_id"])
        assert entry and (cpartner.folder.inbox / entry["document"]).read_bytes() == doc(f"to {name}")
        entry = inbox_entry(cke.folder.inbox, back["message_id"])
        assert entry and (cke.folder.inbox / entry["document"]).read_bytes() == doc(f"from {name}")

        trace = json.loads(swgw("trace", "-c", str(ke.config_path), out["message_id"], "--json").stdout)
        steps = {(e["step"], e["outcome"]): e["detail"] for e in trace["events"]}
        policy_name = {EDDSA: "EdDSA/X25519", ECDSA: "ECDSA/ECDH-ES", V115: "1.15"}[suite]
        assert policy_name in steps[("sign", "ok")], steps
        assert ("receipt", "verified") in steps
        assert (("encrypt", "ok") in steps) is encrypt and (("encrypt", "skipped") in steps) is (not encrypt)

        # What went over the wire: the suite's signature method; encrypted or not as agreed.
        (row,) = [m for m in _store_rows(ke, out["message_id"])]
        raw = _raw(ke, row)
        method = {EDDSA: b"eddsa-ed25519", ECDSA: b"ecdsa-sha256", V115: b"rsa-sha256"}[suite]
        assert b'SignatureMethod Algorithm="http://www.w3.org/20' in raw and method in raw
        assert (b"EncryptedKey" in raw) is encrypt

        # The evidence bundle of what ke-nsw received reproduces the signed attachment by
        # decrypting the raw message with our key for the suite it came under: the stored
        # plaintext payload is moved away first, so it cannot be rebuilt from that instead.
        # (cc-nsw is TLS-only: its attachment is in the clear on the wire.)
        bundle = ke.home / f"evidence-{name}.zip"
        with _inbound_payload_aside(ke, back["message_id"], name):
            swgw("evidence", "export", "-c", str(ke.config_path), back["message_id"], "-o", str(bundle),
                 "--direction", "in")
        with zipfile.ZipFile(bundle) as z:
            attachments = [z.read(n) for n in z.namelist() if n.startswith("attachments/")]
        # The signed octets: the gzip'ed payload when the PMode compresses, as on the wire.
        assert [gzip.decompress(a) if a[:2] == b"\x1f\x8b" else a for a in attachments] == [doc(f"from {name}")]


@contextlib.contextmanager
def _inbound_payload_aside(node, message_id: str, partner_id: str):
    """The stored plaintext payload of an inbound message is gone from the store meanwhile."""
    from gateway.store.store import MessageStore
    from tests.blob_helpers import moved_aside
    cfg = node.config()
    store = MessageStore(cfg.database_url, cfg.blob_dir)
    try:
        (payload,) = store.find_inbound(partner_id, message_id).payloads
        with moved_aside(store, payload.digest):
            yield
    finally:
        store.close()


def test_revoked_tls_client_certificate_is_refused(national):
    ke, nodes = national
    cdd = nodes["dd-nsw"].config()
    drop_document(cdd.folder.outbox, "dd.xml", doc("from dd"), partner="ke-nsw", document_type="test-cert",
                  reference="DD-KE")
    report = wait_for(lambda: (r := report_for(cdd.folder.reports, "DD-KE")) and r["status"] == "failed" and r, what="dd's failure report")
    assert "EBMS:0101" in report["detail"] and "TLS client certificate" in report["detail"], report
    assert "revoked" in report["detail"], report
    assert inbox_entry(ke.config().folder.inbox, report["message_id"]) is None


def _store_rows(node, message_id):
    from gateway.store.store import MessageStore
    cfg = node.config()
    store = MessageStore(cfg.database_url, cfg.blob_dir)
    try:
        return [m for m in store.find(message_id) if m.direction == "out"]
    finally:
        store.close()


def _raw(node, row) -> bytes:
    from gateway.store.store import MessageStore
    cfg = node.config()
    store = MessageStore(cfg.database_url, cfg.blob_dir)
    try:
        return store.blob(row.raw_digest)
    finally:
        store.close()


# -- in process: the trust decisions, one message each ---------------------------------------------

@pytest.fixture(scope="module")
def pair_2_0(tmp_path_factory, spki):
    """ke-nsw and aa-nsw as in-process gateways on the EdDSA suite; ke accepts aa's current,
    next (rollover), revoked and expired certificates as configured signers, so only trust
    validation can refuse the last two."""
    from gateway.daemon import Gateway
    tmp = tmp_path_factory.mktemp("suites-inproc")
    ke = write_node(tmp, spki, "ke-nsw", "aa-nsw", 1, 2)
    aa = write_node(tmp, spki, "aa-nsw", "ke-nsw", 2, 1)
    path = add_partner(ke, spki, "aa-nsw", 2, suite=EDDSA, partner_extra=trust_lines(spki))
    signers = [spki / "aa-nsw" / f"{n}.crt" for n in ("sign-ed25519", "sign-ed25519-next",
                                                       "sign-ed25519-revoked", "sign-ed25519-expired")]
    text = path.read_text()
    old = f'signing_certs = ["{signers[0]}"]'
    assert old in text
    path.write_text(text.replace(old, "signing_certs = [" + ", ".join(f'"{s}"' for s in signers) + "]"))
    add_partner(aa, spki, "ke-nsw", 1, suite=EDDSA, partner_extra=trust_lines(spki))
    gw_ke, gw_aa = Gateway(ke.config()), Gateway(aa.config())
    yield gw_ke, gw_aa, aa
    gw_ke.store.close()
    gw_aa.store.close()


def _send(gw_ke, gw_aa, signer: str | None = None, sender_gateway=None):
    """aa's real outbound pipeline (optionally signing with another of its Ed25519 keys)
    produces the message; ke's inbound pipeline answers it."""
    sender = sender_gateway or gw_aa
    identity = sender.identity
    if signer is not None:
        pki_dir = gw_aa.config.signing.cert_path.parent.parent
        key = load_private_key(pki_dir / signer.split("/")[0] / f"{signer.split('/')[1]}.key")
        cert = load_certificate(pki_dir / signer.split("/")[0] / f"{signer.split('/')[1]}.crt")
        suites = dict(identity.suites)
        suites[EDDSA] = dataclasses.replace(suites[EDDSA], signing_key=key, signing_cert=cert)
        identity = dataclasses.replace(identity, suites=suites)
    pipeline = OutboundPipeline(identity, sender.registry, sender.store)
    mid = pipeline.submit(Submission(partner_id="ke-nsw", document_type="test-cert",
                                     document=doc(uuid.uuid4().hex), nsw_reference="IN-PROCESS"))
    (row,) = [m for m in sender.store.find(mid) if m.direction == "out"]
    response = gw_ke.inbound.process(row.content_type, sender.store.blob(row.raw_digest))
    assert response.code == 200
    envelope = as4.parse_xml(response.body)
    # Answers to a 2.0 partner are signed with our key of that suite.
    ke_cert = gw_ke.identity.for_suite(EDDSA).signing_cert
    verify_message(envelope, [], [ke_cert], EDELIVERY_AS4_2_0_EDDSA)
    return mid, as4.parse_envelope(envelope)


def _error(parsed) -> as4.EbmsError:
    assert parsed.error_signal is not None, "expected an ebMS error, got a receipt"
    (error,) = parsed.error_signal.errors
    return error


def test_rollover_both_configured_signing_certificates_are_accepted(pair_2_0):
    gw_ke, gw_aa, _ = pair_2_0
    for signer in ("aa-nsw/sign-ed25519", "aa-nsw/sign-ed25519-next"):
        mid, parsed = _send(gw_ke, gw_aa, signer)
        assert parsed.receipt is not None and parsed.receipt.ref_to_message_id == mid, signer
        assert gw_ke.store.find_inbound("aa-nsw", mid) is not None


@pytest.mark.parametrize("signer, words", [
    ("aa-nsw/sign-ed25519-revoked", "revoked on"),
    ("aa-nsw/sign-ed25519-expired", "expired on"),
])
def test_revoked_or_expired_signer_is_failed_authentication(pair_2_0, signer, words):
    gw_ke, gw_aa, _ = pair_2_0
    mid, parsed = _send(gw_ke, gw_aa, signer)
    error = _error(parsed)
    assert error.error_code == "EBMS:0101" and error.ref_to_message_id == mid
    assert words in error.description and "Sign with a current, unrevoked certificate" in error.description
    assert gw_ke.store.find_inbound("aa-nsw", mid) is None


def test_valid_certificate_of_another_party_is_failed_authentication(pair_2_0):
    """cc-nsw's Ed25519 certificate is valid under the same CA, but not aa-nsw's."""
    gw_ke, gw_aa, _ = pair_2_0
    mid, parsed = _send(gw_ke, gw_aa, "cc-nsw/sign-ed25519")
    error = _error(parsed)
    assert error.error_code == "EBMS:0101", error
    assert "not a trusted signer" in error.description and "configured signing certificate" in error.description
    assert gw_ke.store.find_inbound("aa-nsw", mid) is None


def test_2_0_partner_sending_1_15_is_refused_as_downgrade(pair_2_0, tmp_path, spki):
    """aa-nsw configured (wrongly) for 1.15 towards ke, which agreed EdDSA with it: RSA-OAEP and
    RSA-SHA256 are not what the PMode allows, so EBMS:0103, signed with ke's EdDSA key."""
    from gateway.daemon import Gateway
    gw_ke, gw_aa, _ = pair_2_0
    aa_old = write_node(tmp_path, spki, "aa-nsw", "ke-nsw", 2, 1)
    gw_old = Gateway(aa_old.config())
    try:
        mid, parsed = _send(gw_ke, gw_aa, sender_gateway=gw_old)
    finally:
        gw_old.store.close()
    error = _error(parsed)
    assert error.error_code == "EBMS:0103", error
    assert "not permitted by the security policy" in error.description
    assert gw_ke.store.find_inbound("aa-nsw", mid) is None


def test_clear_payload_is_refused_when_the_pmode_requires_encryption(pair_2_0, tmp_path, spki):
    """aa-nsw sends signed only (encrypt = false, as the TLS-only option does), but ke's
    PMode for aa requires AS4 encryption: EBMS:0103, not a silent acceptance."""
    from gateway.daemon import Gateway
    gw_ke, gw_aa, _ = pair_2_0
    aa = write_node(tmp_path, spki, "aa-nsw", "ke-nsw", 2, 1)
    add_partner(aa, spki, "ke-nsw", 1, suite=EDDSA, encrypt=False)
    gw = Gateway(aa.config())
    try:
        mid, parsed = _send(gw_ke, gw_aa, sender_gateway=gw)
        (row,) = [m for m in gw.store.find(mid) if m.direction == "out"]
        assert b"EncryptedKey" not in gw.store.blob(row.raw_digest)
    finally:
        gw.store.close()
    # ke's PMode requires encryption for aa (encrypt = true): a clear payload is a policy breach.
    error = _error(parsed)
    assert error.error_code == "EBMS:0103" and "requires encrypted payloads" in error.description
