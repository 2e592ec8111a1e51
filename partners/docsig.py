"""Document-level signatures: the issuing authority's enveloped XML signature on an e-certificate.

Why separate from WS-Security: the AS4 signature proves which *gateway* carried a message;
an e-CO or e-permit must prove which *authority issued it*, and that proof has to survive
mapping, storage and re-delivery. So the signature is enveloped in the document itself,
applied to the document as the partner receives it (after outbound mapping), and verified on
reception before inbound mapping.

Profile: XML-DSig enveloped signature, RSA-SHA256 (or ECDSA-SHA256 by key type), SHA-256
digests, exclusive c14n, X.509 certificate in KeyInfo (signxml); optionally XAdES-BES
(signxml.xades: SigningCertificateV2 and SigningTime as signed properties, inclusive c14n 1.1).
Verification only trusts the certificates configured for the issuing authorities, never the
certificate the document carries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import DigestAlgorithm, InvalidInput, InvalidSignature, SignatureMethod, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
VALID, INVALID, UNSIGNED = "valid", "invalid", "unsigned"


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict delivered with the document (and recorded in its trace)."""
    status: str                        # valid | invalid | unsigned
    signer: str | None = None          # subject of the trusted certificate that verified it
    detail: str = ""

    def summary(self) -> str:
        if self.status == VALID:
            return f"document signature valid, issued by {self.signer}"
        if self.status == UNSIGNED:
            return "document carries no signature"
        return f"document signature INVALID: {self.detail}"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def _method(key) -> SignatureMethod:
    from cryptography.hazmat.primitives.asymmetric import ec
    return SignatureMethod.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256


def sign_document(xml_bytes: bytes, key, cert: x509.Certificate, *, xades: bool = False) -> bytes:
    """Return the document with an enveloped ds:Signature as the last child of its root."""
    root = etree.fromstring(xml_bytes, _parser())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    options = dict(signature_algorithm=_method(key), digest_algorithm=DigestAlgorithm.SHA256,
                   c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    if xades:
        from signxml.xades import XAdESSigner
        # signxml's XAdES signed properties only verify with its default c14n (1.1).
        options.pop("c14n_algorithm")
        signer = XAdESSigner(**options)
    else:
        signer = XMLSigner(**options)
        signer.namespaces = {"ds": DS_NS}
    signed = signer.sign(root, key=key, cert=[cert_pem], always_add_key_value=False)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_document(xml_bytes: bytes, trusted: Sequence[x509.Certificate], *, xades: bool = False) -> SignatureCheck:
    """Check the enveloped signature against the trusted issuing-authority certificates."""
    try:
        root = etree.fromstring(xml_bytes, _parser())
    except etree.XMLSyntaxError as exc:
        return SignatureCheck(INVALID, detail=f"not well-formed XML: {exc}")
    signatures = root.findall(f"{{{DS_NS}}}Signature")
    if not signatures:
        return SignatureCheck(UNSIGNED)
    if len(signatures) > 1:
        return SignatureCheck(INVALID, detail=f"{len(signatures)} enveloped signatures; expected one")
    if not trusted:
        return SignatureCheck(INVALID, detail="signed, but no issuing-authority certificate is configured to verify it")
    last_error = "no trusted certificate verifies it"
    for cert in trusted:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        try:
            if xades:
                from signxml.xades import XAdESVerifier
                XAdESVerifier().verify(xml_bytes, x509_cert=pem, expect_references=3)
            else:
                XMLVerifier().verify(xml_bytes, x509_cert=pem, expect_references=1,
                                     parser=_parser())
            return SignatureCheck(VALID, signer=cert.subject.rfc4514_string())
        except (InvalidSignature, InvalidInput) as exc:
            last_error = str(exc) or type(exc).__name__
    return SignatureCheck(INVALID, detail=last_error)
