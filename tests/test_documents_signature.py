"""Document-level signatures: enveloped XML-DSig and XAdES-BES, verdict valid / invalid / unsigned."""
import pytest
import xmlsec
from lxml import etree

from crypto.keys import load_certificate, load_private_key
from partners.docsig import DS_NS, INVALID, UNSIGNED, VALID, sign_document, verify_document
from partners.documents import sample, validate_document
from partners.mapping import load_mappings
from tests.harness import SAMPLE_PARTNERS as PARTNERS


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


# -- what the signature covers: the whole document, nothing less ------------------------------------------
def _reference_uris(signed: bytes) -> list[str]:
    return [r.get("URI") for r in etree.fromstring(signed).iterfind(f"{{{DS_NS}}}Signature/{{{DS_NS}}}SignedInfo/"
                                                                     f"{{{DS_NS}}}Reference")]


def _sign_sub_element(key, cert) -> bytes:
    """An enveloped signature (child of the root) whose only reference is #g1, the consignment."""
    from cryptography.hazmat.primitives import serialization
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner
    data = sample("eco-KE-SG.xml").replace(b"<eco:SpecifiedConsignment>", b'<eco:SpecifiedConsignment Id="g1">', 1)
    root = etree.fromstring(data)
    signer = XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256)
    signed = signer.sign(root, key=key, cert=[cert.public_bytes(serialization.Encoding.PEM)], reference_uri="#g1")
    out = etree.tostring(signed)
    assert _reference_uris(out) == ["#g1"]
    return out


def _crypto_ok(signed: bytes, cert) -> bool:
    """signxml alone (no coverage check) accepts the signature: the rejection must come from coverage."""
    from signxml import XMLVerifier
    XMLVerifier().verify(signed, x509_cert=cert)
    return True


def test_our_signatures_cover_the_whole_document(authority):
    key, cert = authority
    plain = sign_document(sample("eco-KE-SG.xml"), key, cert)
    assert _reference_uris(plain) == [""]
    assert verify_document(plain, [cert]).status == VALID
    xades = sign_document(sample("eco-KE-SG.xml"), key, cert, xades=True)
    uris = _reference_uris(xades)
    assert uris.count("") == 1 and len(uris) == 3
    assert verify_document(xades, [cert], xades=True).status == VALID


def test_signature_over_a_sub_element_is_invalid(authority):
    key, cert = authority
    signed = _sign_sub_element(key, cert)
    assert _crypto_ok(signed, cert)
    check = verify_document(signed, [cert])
    assert check.status == INVALID
    assert "does not cover the whole document" in check.summary()
    # ... and so an alteration outside the referenced element is not "covered" either.
    altered = signed.replace(b"Kenya National Chamber", b"Kenia National Chamber")
    assert altered != signed and _crypto_ok(altered, cert)
    assert verify_document(altered, [cert]).status == INVALID


def test_wrapped_document_is_invalid(authority):
    key, cert = authority
    # Classic wrapping: the signed element is moved elsewhere, a forged one takes its place.
    root = etree.fromstring(_sign_sub_element(key, cert))
    ns = "urn:swgw:canonical:eco:1"
    original = root.find(f"{{{ns}}}SpecifiedConsignment")
    forged = etree.fromstring(etree.tostring(original).replace(b"Rift Valley", b"Forged Ltd "))
    del forged.attrib["Id"]
    original.addprevious(forged)
    root.find(f"{{{DS_NS}}}Signature").addprevious(original)     # moved to the end of the document
    wrapped = etree.tostring(root)
    assert b"Forged Ltd" in wrapped and _crypto_ok(wrapped, cert)
    check = verify_document(wrapped, [cert])
    assert check.status == INVALID and "does not cover the whole document" in check.summary()

    # Wrapping our whole-document signature: the signed root moves inside a forged root carrying the signature.
    for xades in (False, True):
        signed = etree.fromstring(sign_document(sample("eco-KE-SG.xml"), key, cert, xades=xades))
        signature = signed.find(f"{{{DS_NS}}}Signature")
        forged_root = etree.fromstring(sample("eco-KE-SG.xml").replace(b"Rift Valley", b"Forged Ltd "))
        forged_root.append(signed)          # original (signature inside it) kept as a child
        forged_root.append(signature)       # signature moved to the forged root
        assert verify_document(etree.tostring(forged_root), [cert], xades=xades).status == INVALID


@pytest.mark.parametrize("xades", [False, True])
def test_one_character_change_is_invalid(authority, xades):
    key, cert = authority
    signed = sign_document(sample("eco-KE-SG.xml"), key, cert, xades=xades)
    assert verify_document(signed, [cert], xades=xades).status == VALID
    for old, new in ((b"KE-CO-2024-0001187", b"KE-CO-2024-0001188"), (b'schemeID="KE-PIN"', b'schemeID="KE-PIM"')):
        assert signed.count(old) == 1
        assert verify_document(signed.replace(old, new), [cert], xades=xades).status == INVALID
