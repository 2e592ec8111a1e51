"""Document-level signatures: enveloped XML-DSig and XAdES-BES, verdict valid / invalid / unsigned."""
import pytest
import xmlsec
from lxml import etree

from crypto.keys import load_certificate, load_private_key
from partners.docsig import DS_NS, INVALID, UNSIGNED, VALID, sign_document, verify_document
from partners.documents import sample, validate_document
from partners.mapping import load_mappings
from tests.test_mapping import PARTNERS


@pytest.fixture(scope="module")
def authority(pki):
    return load_private_key(pki / "aa-nsw" / "sign.key"), load_certificate(pki / "aa-nsw" / "sign.crt")


@pytest.mark.parametrize("xades", [False, True])
def test_sign_verify_tamper(authority, pki, xades):
    key, cert = authority
    other = load_certificate(pki / "bb-nsw" / "sign.crt")
    signed = sign_document(sample("eco-KE-SG.xml"), key, cert, xades=xades)
    validate_document("eco", signed)            # the canonical schema admits the enveloped signature
    check = verify_document(signed, [other, cert], xades=xades)
    assert check.status == VALID and "aa-nsw" in check.signer
    assert verify_document(signed, [other], xades=xades).status == INVALID
    tampered = signed.replace(b"Rift Valley", b"Rift Vallee")
    assert verify_document(tampered, [cert], xades=xades).status == INVALID
    assert verify_document(signed, [], xades=xades).status == INVALID


def test_unsigned(authority):
    assert verify_document(sample("eco-KE-SG.xml"), [authority[1]]).status == UNSIGNED


def test_signature_over_mapped_document_survives_transport(authority):
    # Signed after outbound mapping (as the partner receives it), verified before inbound mapping.
    key, cert = authority
    wire = load_mappings(PARTNERS / "my-nsw").outbound("eco", sample("eco-KE-SG.xml"))
    signed = sign_document(wire, key, cert)
    assert verify_document(signed, [cert]).status == VALID


def test_libxmlsec_verifies_our_document_signature(authority, pki):
    key, cert = authority
    signed = sign_document(sample("eco-KE-SG.xml"), key, cert)
    root = etree.fromstring(signed)
    node = root.find(f"{{{DS_NS}}}Signature")
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(str(pki / "aa-nsw" / "sign.crt"), xmlsec.constants.KeyDataFormatCertPem)
    ctx.verify(node)   # raises on failure
