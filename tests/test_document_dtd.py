"""Documents with a DTD are refused by every parser of documents and at every entry point.

A DOCTYPE in a business document is never legitimate (the canonical formats are XSD-defined).
Left unexpanded, an entity reference made libxml2's schema validator fail with an internal
error (HTTP 500 to a partner, 500 on the NSW API, "internal error" from the folder); a DTD
whose entities were declared but not referenced passed validation and was delivered. Now every
variant gets one reason, :data:`partners.xmldoc.DTD_REFUSED`: a signed EBMS:0004 inbound, 422
on the NSW API, ``rejected/`` from the outbox folder.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from lxml import etree

from crypto.keys import load_certificate, load_private_key
from gateway.aeo.model import parse_list
from gateway.aeo.national import load_national
from gateway.connectors.folder_client import drop_document, inbox_entries, report_for
from partners import xmldoc
from partners.docsig import sign_document, verify_document
from partners.documents import DocumentInvalid, sample, validate_document
from partners.mapping import MappingError, collect_mappings, load_mappings
from tests.harness import ROOT, Daemon, reserve_port, swgw, wait_for, write_pair

PARTNERS = ROOT / "conf" / "partners"
MY_FIXTURES = PARTNERS / "my-nsw" / "mappings" / "fixtures"
TOKEN = "dtd-tests-bearer-token-0123456789"

# Every shape of DTD: each must be refused, whether or not its entities are used.
VARIANTS = {
    "internal entity referenced in the body": (' [<!ENTITY e "">]', True),
    "external entity declared, not referenced": (' [<!ENTITY ext SYSTEM "file:///etc/passwd">]', False),
    "external subset only": (' SYSTEM "http://dtd.invalid/document.dtd"', False),
    "bare DOCTYPE, no subset": ("", False),
}


def with_dtd(document: bytes, variant: str) -> bytes:
    """``document`` with a DOCTYPE after its XML declaration (and ``&e;`` right inside its root
    element for the variant that references an entity)."""
    subset, reference = VARIANTS[variant]
    start = re.search(rb"<(?![?!])[^>]*>", document)          # the root element's start tag
    root_name = start.group(0)[1:].split()[0].rstrip(b">/")
    head = document.index(b"?>") + 2 if document.startswith(b"<?xml") else 0
    return (document[:head] + b"\n<!DOCTYPE " + root_name + subset.encode() + b">" + document[head:start.end()]
            + (b"&e;" if reference else b"") + document[start.end():])


variants = pytest.mark.parametrize("variant", list(VARIANTS))


# -- every parser of documents ---------------------------------------------------------------
@variants
@pytest.mark.parametrize("doc_type,name", [("eco", "eco-KE-SG.xml"), ("ephyto", "sps-ephyto-AR.xml"),
                                           ("manifest", "manifest-CC315A-reduced.xml"), ("aeo", "aeo-full-KE.xml")])
def test_canonical_validation_refuses_any_dtd_naming_its_line(variant, doc_type, name):
    with pytest.raises(DocumentInvalid) as info:
        validate_document(doc_type, with_dtd(sample(name), variant))
    assert xmldoc.DTD_REFUSED in str(info.value) and info.value.line == 2


def test_a_dtd_the_prolog_scan_cannot_read_is_refused_after_parsing():
    # UTF-16: the byte scan for "<!DOCTYPE" cannot see it; the parsed tree's DTD still refuses it.
    text = with_dtd(sample("eco-KE-SG.xml"), "bare DOCTYPE, no subset").decode("utf-8")
    data = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    with pytest.raises(DocumentInvalid, match=re.escape(xmldoc.DTD_REFUSED)):
        validate_document("eco", data)


def test_mapping_input_with_a_dtd_is_refused():
    my = load_mappings(PARTNERS / "my-nsw")
    outbound = with_dtd(sample("eco-KE-SG.xml"), "internal entity referenced in the body")
    inbound = with_dtd((MY_FIXTURES / "eco-in.input.xml").read_bytes(), "external entity declared, not referenced")
    for direction, data in (("out", outbound), ("in", inbound)):
        with pytest.raises(MappingError) as info:
            my.transform("eco", direction, data)
        assert xmldoc.DTD_REFUSED in str(info.value) and info.value.direction == direction


def test_stylesheet_whose_output_carries_a_doctype_is_refused(tmp_path):
    folder = tmp_path / "my-nsw"
    (folder / "mappings").mkdir(parents=True)
    (folder / "mappings" / "eco.out.xsl").write_text(
        "<xsl:stylesheet version='1.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
        "<xsl:output doctype-system='http://dtd.invalid/eco.dtd'/>"
        "<xsl:template match='/'><xsl:copy-of select='.'/></xsl:template></xsl:stylesheet>")
    problems, mappings = collect_mappings(folder, "my-nsw")
    (problem,) = problems
    assert "eco.out.xsl" in problem and "doctype-system" in problem and xmldoc.DTD_REFUSED in problem
    assert not mappings.has_mapping("eco", "out")       # never used


def test_document_signing_and_verification_refuse_a_dtd(pki):
    key, cert = load_private_key(pki / "aa-nsw" / "sign.key"), load_certificate(pki / "aa-nsw" / "sign.crt")
    document = sample("eco-KE-SG.xml")
    for variant in VARIANTS:
        with pytest.raises(xmldoc.DocumentHasDtd, match=re.escape(xmldoc.DTD_REFUSED)):
            sign_document(with_dtd(document, variant), key, cert)
    # A validly signed document that gains a DTD on the way (the signature covers the root
    # element, not the prolog): refused, not judged "valid".
    signed = sign_document(document, key, cert)
    assert verify_document(signed, [cert]).status == "valid"
    for variant in ("external entity declared, not referenced", "bare DOCTYPE, no subset"):
        with pytest.raises(xmldoc.DocumentHasDtd):
            verify_document(with_dtd(signed, variant), [cert])


@variants
def test_aeo_list_parsing_refuses_a_dtd(variant, tmp_path):
    data = with_dtd(sample("aeo-full-KE.xml"), variant)
    with pytest.raises(DocumentInvalid, match=re.escape(xmldoc.DTD_REFUSED)):
        parse_list(data)
    national = tmp_path / "national.xml"
    national.write_bytes(data)
    with pytest.raises(DocumentInvalid, match=re.escape(xmldoc.DTD_REFUSED)):
        load_national(national)


# -- the three entry points, on real daemons -------------------------------------------------
RAW_PMODE = """
[[pmode]]
id = "aa-bb-raw-ephyto"
document_type = "raw-ephyto"
mime_type = "application/octet-stream"
agreement = "urn:test:agreement"
service = "urn:test:service:ephyto"
action = "DeliverPhytoCertificate"
retry = { max_attempts = 3, initial_interval = 0.3, multiplier = 1.5, max_interval = 1.0, max_age = 600.0 }
"""


@pytest.fixture(scope="module")
def daemons(tmp_path_factory, pki):
    """aa (with the NSW API) and bb. aa also has a PMode that carries ephytos as opaque bytes,
    so it can play a partner whose software sends documents with a DTD; bb receives them
    under its canonical ephyto PMode."""
    a, b = write_pair(tmp_path_factory.mktemp("dtd"), pki)
    tokens = a.home / "api-tokens"
    tokens.write_text(TOKEN + "\n")
    os.chmod(tokens, 0o600)
    api_port = reserve_port()
    with open(a.config_path, "a") as fh:
        fh.write(f'\n[nsw.api]\nhost = "127.0.0.1"\nport = {api_port}\ntoken_file = "{tokens}"\n')
    with open(a.home / "partners" / "bb-nsw" / "partner.toml", "a") as fh:
        fh.write(RAW_PMODE)
    running = [Daemon(a).start(), Daemon(b).start()]
    yield a, b, f"http://127.0.0.1:{api_port}"
    for daemon in running:
        daemon.stop()


def _post(base: str, document: bytes, reference: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/api/v1/documents?partner=bb-nsw&type=ephyto&reference={reference}",
                                     data=document, method="POST", headers={"Authorization": f"Bearer {TOKEN}",
                                                                            "Content-Type": "application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _api_up(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_nsw_api_answers_422_with_the_reason(daemons):
    a, _b, base = daemons
    wait_for(lambda: _api_up(base), what="the NSW API listener")
    for number, variant in enumerate(VARIANTS):
        status, body = _post(base, with_dtd(sample("sps-ephyto-AR.xml"), variant), f"API-DTD-{number}")
        assert status == 422, (variant, body)
        assert xmldoc.DTD_REFUSED in json.dumps(body), (variant, body)
    listing = json.loads(swgw("messages", "-c", str(a.config_path), "--json").stdout)
    assert not any((m.get("reference") or m.get("nsw_reference") or "").startswith("API-DTD") for m in listing)


def test_outbox_document_is_rejected_with_the_reason(daemons):
    a, _b, _ = daemons
    outbox = a.config().folder.outbox
    names = [f"dtd-{number}.xml" for number in range(len(VARIANTS))]
    for name, variant in zip(names, VARIANTS):
        drop_document(outbox, name, with_dtd(sample("sps-ephyto-AR.xml"), variant), partner="bb-nsw",
                      document_type="ephyto", reference=f"FOLDER-{name}")
    wait_for(lambda: all((outbox / "rejected" / f"{n}.error.txt").exists() for n in names),
             what="every DTD document in rejected/")
    for name, variant in zip(names, VARIANTS):
        error = (outbox / "rejected" / f"{name}.error.txt").read_text()
        assert xmldoc.DTD_REFUSED in error and "line 2" in error, (variant, error)
        assert (outbox / "rejected" / name).exists() and not (outbox / "sent" / name).exists()


def test_partner_document_with_a_dtd_gets_a_signed_ebms_0004_and_is_not_delivered(daemons):
    a, b, _ = daemons
    ca, cb = a.config(), b.config()
    references = [f"INBOUND-DTD-{number}" for number in range(len(VARIANTS))]
    for reference, variant in zip(references, VARIANTS):
        drop_document(ca.folder.outbox, f"{reference}.xml", with_dtd(sample("sps-ephyto-AR.xml"), variant),
                      partner="bb-nsw", document_type="raw-ephyto", reference=reference)
    reports = {r: wait_for(lambda r=r: (rep := report_for(ca.folder.reports, r)) and rep["status"] != "queued" and rep,
                           what=f"the sender's outcome for {r}") for r in references}
    for (reference, report), variant in zip(reports.items(), VARIANTS):
        # A signed permanent error (the sender stops at once), not HTTP 500 and retries.
        assert report["status"] == "failed" and report.get("error_code") == "EBMS:0004", (variant, report)
        assert xmldoc.DTD_REFUSED in report["detail"], (variant, report)
        sent = json.loads(swgw("trace", "-c", str(a.config_path), report["message_id"], "--json").stdout)
        steps = [e["step"] for e in sent["events"]]
        assert steps.count("send") == 1 and "retry" not in steps, sent["events"]
        received = json.loads(swgw("trace", "-c", str(b.config_path), report["message_id"], "--json").stdout)
        assert received["status"] == "rejected", received
        assert ("validate", "rejected") in [(e["step"], e["outcome"]) for e in received["events"]]
    assert inbox_entries(cb.folder.inbox) == []
