"""The TLS client certificate is bound to the partner (``[partner] tls_client_certs``).

Every partner's TLS certificate chains to the same listener ``client_ca``, so the handshake
alone does not tell partners apart. With ``tls_client_certs`` configured, a connection that
sends as a partner must present one of that partner's certificates: ke-nsw (a real daemon)
receives from aa-nsw (a real daemon with its own TLS certificate, delivered) and from a second
aa-nsw daemon that connects with another valid TLS certificate from the same CA (EBMS:0101,
the message ends failed). A PMode with ``allow_unsigned`` without ``tls_client_certs`` is a
configuration error naming the key.
"""
from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from crypto.devpki import ensure_party, issue_certificate
from crypto.keys import load_certificate
from gateway.connectors.folder_client import drop_document, inbox_entry, report_for
from partners.configfile import ConfigError
from partners.registry import load_partners
from tests.harness import Daemon, add_partner, reserve_port, swgw, wait_for, write_node


def doc(text: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<cert xmlns="urn:test:cert"><id>{text}</id></cert>\n'.encode()


@pytest.fixture(scope="module")
def bpki(tmp_path_factory):
    root = tmp_path_factory.mktemp("binding-pki")
    for party in ("ke-nsw", "aa-nsw"):
        ensure_party(root, party)
    # Valid, unrevoked, issued by the same CA as aa-nsw's configured TLS certificate.
    issue_certificate(root, "aa-nsw", "tls-other", kind="tls")
    return root


def binding_line(pki) -> str:
    return f'tls_client_certs = ["{pki / "aa-nsw" / "tls.crt"}"]\n'


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, bpki):
    tmp = tmp_path_factory.mktemp("binding-e2e")
    ports = {name: reserve_port() for name in ("ke-nsw", "aa-nsw", "aa-other")}
    ke = write_node(tmp, bpki, "ke-nsw", "aa-nsw", ports["ke-nsw"], ports["aa-nsw"])
    add_partner(ke, bpki, "aa-nsw", ports["aa-nsw"],
                partner_extra=binding_line(bpki) + f'signing_trust = ["{bpki / "ca" / "ca.crt"}"]\n')
    aa = write_node(tmp, bpki, "aa-nsw", "ke-nsw", ports["aa-nsw"], ports["ke-nsw"])
    # The same partner (same party id, same signing keys) connecting with its other TLS certificate.
    other = write_node(tmp / "other", bpki, "aa-nsw", "ke-nsw", ports["aa-other"], ports["ke-nsw"], attempts=1)
    other.config_path.write_text(other.config_path.read_text()
                                 .replace(str(bpki / "aa-nsw" / "tls.crt"), str(bpki / "aa-nsw" / "tls-other.crt"))
                                 .replace(str(bpki / "aa-nsw" / "tls.key"), str(bpki / "aa-nsw" / "tls-other.key")))
    assert "tls-other.crt" in other.config_path.read_text()
    daemons = [Daemon(ke).start(), Daemon(aa).start(), Daemon(other).start()]
    yield ke, aa, other
    for d in daemons:
        d.stop()


def _final_report(config, reference: str) -> dict:
    return wait_for(lambda: (r := report_for(config.folder.reports, reference)) and r["status"] != "queued" and r, what=f"report for {reference}")


def test_partner_connecting_with_its_configured_tls_certificate_is_delivered(nodes):
    ke, aa, _ = nodes
    caa = aa.config()
    drop_document(caa.folder.outbox, "aa.xml", doc("from aa"), partner="ke-nsw", document_type="test-cert",
                  reference="AA-KE")
    report = _final_report(caa, "AA-KE")
    assert report["status"] == "delivered", report
    cke = ke.config()
    entry = inbox_entry(cke.folder.inbox, report["message_id"])
    assert entry and (cke.folder.inbox / entry["document"]).read_bytes() == doc("from aa")


def test_same_partner_with_another_valid_tls_certificate_is_refused(nodes, bpki):
    ke, _, other = nodes
    cother = other.config()
    drop_document(cother.folder.outbox, "other.xml", doc("from other"), partner="ke-nsw",
                  document_type="test-cert", reference="OTHER-KE")
    report = _final_report(cother, "OTHER-KE")
    assert report["status"] == "failed", report
    detail = report["detail"]
    assert "EBMS:0101" in detail and "TLS client certificate" in detail, report
    # The answer names the expected certificate (subject and SHA-256 fingerprint) and the fix.
    expected = load_certificate(bpki / "aa-nsw" / "tls.crt")
    assert hashlib.sha256(expected.public_bytes(Encoding.DER)).hexdigest() in detail, report
    assert expected.subject.rfc4514_string() in detail, report
    assert "tls_client_certs" in detail, report
    assert inbox_entry(ke.config().folder.inbox, report["message_id"]) is None


def test_allow_unsigned_without_tls_client_certs_is_a_config_error(tmp_path, bpki):
    ke = write_node(tmp_path, bpki, "ke-nsw", "aa-nsw", reserve_port(), reserve_port())
    path = add_partner(ke, bpki, "aa-nsw", 1, encrypt=False)
    text = path.read_text()
    path.write_text(text.replace("sign = true, encrypt = false }",
                                 "sign = true, encrypt = false, allow_unsigned = true }", 1))
    assert "allow_unsigned = true" in path.read_text()
    with pytest.raises(ConfigError) as excinfo:
        load_partners(ke.home / "partners")
    message = str(excinfo.value)
    assert "tls_client_certs" in message and "allow_unsigned" in message and str(path) in message, message
    assert "authenticated only by the TLS client certificate" in message
    result = swgw("checkconfig", "-c", str(ke.config_path), check=False)
    assert result.returncode != 0 and "tls_client_certs" in result.stdout + result.stderr

    # With the key, the same configuration loads.
    path.write_text(path.read_text().replace("[partner]\n", "[partner]\n" + binding_line(bpki), 1))
    partner = load_partners(ke.home / "partners").get("aa-nsw")
    assert partner.tls_client_certs == (load_certificate(bpki / "aa-nsw" / "tls.crt"),)
