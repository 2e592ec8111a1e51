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
from signxml import (DigestAlgorithm, InvalidInput, InvalidSignature, SignatureConfiguration, SignatureMethod,
                     XMLSigner, XMLVerifier)
from signxml.algorithms import CanonicalizationMethod

from partners import xmldoc

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
VALID, INVALID, UNSIGNED = "valid", "invalid", "unsigned"
ENVELOPED_TRANSFORM = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XADES_SIGNED_PROPERTIES = "http://uri.etsi.org/01903#SignedProperties"
NOT_WHOLE_DOCUMENT = "the signature does not cover the whole document"


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


def _method(key) -> SignatureMethod:
    from cryptography.hazmat.primitives.asymmetric import ec
    return SignatureMethod.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256


def sign_document(xml_bytes: bytes, key, cert: x509.Certificate, *, xades: bool = False) -> bytes:
    """Return the document with an enveloped ds:Signature as the last child of its root.

    Raises ``xmldoc.DocumentHasDtd`` for a document with a DTD (an issuing authority must not
    sign content whose meaning depends on entity declarations) and ``xmldoc.DocumentNotWellFormed``.
    """
    root = xmldoc.parse(xml_bytes)
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
    # No reference_uri: signxml's enveloped default is URI="" (the whole document), the only data
    # reference verify_document accepts (passing reference_uri="" would make it URI="#").
    signed = signer.sign(root, key=key, cert=[cert_pem], always_add_key_value=False)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_document(xml_bytes: bytes, trusted: Sequence[x509.Certificate], *, xades: bool = False) -> SignatureCheck:
    """Check the enveloped signature against the trusted issuing-authority certificates.

    Raises ``xmldoc.DocumentHasDtd`` for a document with a DTD: that is no verdict on the
    signature but a refusal of the document itself, whoever signed it (the pipeline answers it
    like a schema failure). Malformed XML is an ``invalid`` verdict, as before.
    """
    try:
        root = xmldoc.parse(xml_bytes)
    except xmldoc.DocumentNotWellFormed as exc:
        return SignatureCheck(INVALID, detail=str(exc))
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
            # location "./": only the ds:Signature that is a child of the root element counts.
            if xades:
                from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier
                results = XAdESVerifier().verify(
                    xml_bytes, x509_cert=pem, parser=xmldoc.parser(),
                    expect_config=XAdESSignatureConfiguration(location="./", expect_references=True))
            else:
                results = XMLVerifier().verify(
                    xml_bytes, x509_cert=pem, parser=xmldoc.parser(),
                    expect_config=SignatureConfiguration(location="./", expect_references=1))
        except (InvalidSignature, InvalidInput) as exc:
            last_error = str(exc) or type(exc).__name__
            continue
        # The signature verifies; now check WHAT it covers (no sub-element references, no wrapping).
        problem = _coverage_problem(root, signatures[0], results if isinstance(results, list) else [results],
                                    xades=xades)
        if problem:
            return SignatureCheck(INVALID, detail=f"{NOT_WHOLE_DOCUMENT}: {problem}")
        return SignatureCheck(VALID, signer=cert.subject.rfc4514_string())
    return SignatureCheck(INVALID, detail=last_error)


def _without_signature(root: etree._Element, signature: etree._Element) -> etree._Element:
    """A copy of the document with its enveloped signature removed (as the enveloped transform does)."""
    copy = etree.fromstring(etree.tostring(root), xmldoc.parser())   # our own serialisation: no DTD
    sig = copy[root.index(signature)]
    prev = sig.getprevious()
    if sig.tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + sig.tail
        else:
            copy.text = (copy.text or "") + sig.tail
    copy.remove(sig)
    return copy


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _coverage_problem(root: etree._Element, signature: etree._Element, results: list, *,
                      xades: bool) -> str | None:
    """Why a cryptographically valid signature does not cover the whole document, or None.

    Required: exactly one data reference, URI="" with the enveloped-signature transform, whose signed
    content is the whole document (minus the signature); for XAdES additionally exactly one reference
    to the SignedProperties, and any other reference only to elements inside the signature (KeyInfo).
    """
    # The references as signed (result.signature_xml's SignedInfo is the one whose signature verified);
    # signxml returns one result per reference, in document order.
    references = results[0].signature_xml.findall(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")
    if len(references) != len(results):
        return f"{len(references)} references but {len(results)} verified"
    whole, properties = [], []
    for reference, result in zip(references, results):
        uri = reference.get("URI")
        if uri == "":
            whole.append((reference, result))
        elif xades and reference.get("Type") == XADES_SIGNED_PROPERTIES:
            properties.append(uri)
        elif not (xades and uri and uri.startswith("#") and _inside_signature(signature, uri[1:])):
            return f"it references {uri!r}"
    if len(whole) != 1:
        return f'{len(whole)} references with URI=""; expected exactly one'
    if xades and len(properties) != 1:
        return f"{len(properties)} SignedProperties references; expected exactly one"
    reference, result = whole[0]
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{{{DS_NS}}}Transforms/{{{DS_NS}}}Transform")]
    if ENVELOPED_TRANSFORM not in transforms:
        return "the document reference lacks the enveloped-signature transform"
    signed = result.signed_xml
    if signed is None or signed.tag != root.tag or _c14n(signed) != _c14n(_without_signature(root, signature)):
        return "the signed content is not the document's root element"
    return None


def _inside_signature(signature: etree._Element, ident: str) -> bool:
    """True if the element with this Id is part of the ds:Signature itself (e.g. the XAdES KeyInfo)."""
    return any(value == ident for el in signature.iter() if isinstance(el.tag, str) for value in
               (el.get("Id"), el.get("ID"), el.get("id"), el.get("{http://www.w3.org/XML/1998/namespace}id")))
