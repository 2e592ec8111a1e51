"""Verifying an AS4 message signature, with the checks WS-Security itself leaves to
the application: policy-only algorithms, a trusted signer, and *completeness*
(the ebMS header, the Body and every attachment signed exactly once, and the signed
elements being the ones the message is actually processed from).

Checks run cheapest and most explanatory first: structure and algorithms, coverage,
trust, SignatureValue, then the reference digests.
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from crypto import wssec_primitives as primitives
from crypto.algorithms import (
    EDELIVERY_AS4_1_15,
    CanonicalizationAlgorithm,
    DigestAlgorithm,
    SecurityPolicy,
    SignatureAlgorithm,
    TransformAlgorithm,
    require,
)
from crypto.errors import (
    IncompleteSignature,
    InvalidDigest,
    InvalidSignatureValue,
    MissingSignature,
    SignatureError,
    SignerCertificateRejected,
    UntrustedCertificate,
    UntrustedSigner,
)
from crypto.trust import TrustConfig
from crypto.wssec_common import (
    NS_DS,
    NS_EBMS,
    NS_SOAP12,
    Part,
    b64decode,
    child,
    children,
    content_id_from_uri,
    exc_c14n,
    find_part,
    find_security_header,
    inclusive_prefixes,
    index_ids,
    messaging_header,
    q,
    resolve_same_document,
    soap_body,
)
from crypto.wssec_keyinfo import describe_certificate, signer_certificate
from crypto.wssec_swa import attachment_content_octets


@dataclass(frozen=True)
class VerifyResult:
    """What a valid signature proved, for the pipeline and the evidence log."""

    signer: x509.Certificate
    references: tuple[etree._Element, ...]
    """Deep copies of the ds:Reference elements (for NonRepudiationInformation)."""
    signed_messaging: etree._Element
    """The envelope's own eb:Messaging header, proven to be the signed one."""
    signed_body: etree._Element
    signed_part_ids: frozenset[str]
    chain: tuple[x509.Certificate, ...] = ()
    """The signer's validated chain (leaf first) when a TrustConfig was given."""


@dataclass(frozen=True)
class _XmlRef:
    uri: str
    target: etree._Element
    prefixes: tuple[str, ...] | None
    expected: bytes
    digest: DigestAlgorithm


@dataclass(frozen=True)
class _PartRef:
    part: Part
    expected: bytes
    digest: DigestAlgorithm


def _one(parent: etree._Element, ns: str, local: str, what: str) -> etree._Element:
    try:
        found = child(parent, ns, local)
    except ValueError as exc:
        raise SignatureError(f"malformed {what}: {exc}") from None
    if found is None:
        raise SignatureError(f"malformed signature: {what} has no {local} element")
    return found


def _transforms(reference: etree._Element) -> list[etree._Element]:
    container = child(reference, NS_DS, "Transforms")
    return [] if container is None else children(container, NS_DS, "Transform")


def _describe(element: etree._Element) -> str:
    name = etree.QName(element)
    prefix = {NS_EBMS: "eb:", NS_SOAP12: "soap:"}.get(name.namespace or "", "")
    return prefix + name.localname


def _parse_reference(
    reference: etree._Element,
    parts: Sequence[Part],
    id_index: dict[str, list[etree._Element]],
    policy: SecurityPolicy,
) -> _XmlRef | _PartRef:
    uri = reference.get("URI")
    if uri is None:
        raise SignatureError("a ds:Reference has no URI; implicit references are not accepted")
    digest_method = _one(reference, NS_DS, "DigestMethod", f"reference {uri}")
    digest_alg = require(
        DigestAlgorithm,
        digest_method.get("Algorithm"),
        policy.digest_algorithm,
        f"digest method of reference {uri}",
    )
    try:
        expected = b64decode(_one(reference, NS_DS, "DigestValue", f"reference {uri}").text)
    except ValueError as exc:
        raise SignatureError(f"DigestValue of reference {uri}: {exc}") from None
    transforms = _transforms(reference)
    content_id = content_id_from_uri(uri)
    if content_id is not None:
        if len(transforms) != 1:
            raise SignatureError(
                f"reference {uri} must have exactly one transform "
                f"({TransformAlgorithm.SWA_CONTENT_SIGNATURE.value})"
            )
        require(
            TransformAlgorithm,
            transforms[0].get("Algorithm"),
            TransformAlgorithm.SWA_CONTENT_SIGNATURE,
            f"transform of reference {uri}",
        )
        part = find_part(parts, content_id)
        if part is None:
            raise IncompleteSignature(
                f"the signature covers attachment {uri}, but the message has no such attachment"
            )
        return _PartRef(part, expected, digest_alg)
    if len(transforms) != 1:
        raise SignatureError(
            f"reference {uri} must have exactly one transform (exclusive canonicalization)"
        )
    require(
        TransformAlgorithm,
        transforms[0].get("Algorithm"),
        TransformAlgorithm.EXC_C14N,
        f"transform of reference {uri}",
    )
    try:
        target = resolve_same_document(id_index, uri)
    except LookupError as exc:
        raise IncompleteSignature(str(exc)) from None
    prefixes = inclusive_prefixes(transforms[0])
    return _XmlRef(uri, target, tuple(prefixes) if prefixes else None, expected, digest_alg)


def _check_covered_once(
    element: etree._Element | None, xml_refs: list[_XmlRef], ns: str, local: str, label: str
) -> etree._Element:
    if element is None:
        raise IncompleteSignature(f"the message has no {label}, which AS4 requires to be signed")
    hits = [r for r in xml_refs if r.target is element]
    if len(hits) == 1:
        return element
    if len(hits) > 1:
        raise IncompleteSignature(f"the {label} is referenced {len(hits)} times by the signature")
    if any(r.target.tag == q(ns, local) for r in xml_refs):
        raise IncompleteSignature(
            f"the signature covers a {label} element that is not the one the message is "
            f"processed from (a copy elsewhere in the envelope): possible signature-wrapping attack"
        )
    raise IncompleteSignature(f"the {label} is not covered by the signature")


def _check_parts_covered(parts: Sequence[Part], part_refs: list[_PartRef]) -> frozenset[str]:
    ids = [p.content_id for p in parts]
    if len(set(ids)) != len(ids):
        raise SignatureError(f"the message has duplicate attachment content ids: {ids}")
    signed = [r.part.content_id for r in part_refs]
    repeated = sorted({c for c in signed if signed.count(c) > 1})
    if repeated:
        raise IncompleteSignature(
            f"attachment(s) {', '.join('cid:' + c for c in repeated)} referenced more than once "
            "by the signature"
        )
    missing = [c for c in ids if c not in signed]
    if missing:
        raise IncompleteSignature(
            f"attachment(s) {', '.join('cid:' + c for c in missing)} not covered by the "
            "signature: they could have been added or replaced in transit"
        )
    return frozenset(signed)


def _check_digests(xml_refs: list[_XmlRef], part_refs: list[_PartRef]) -> None:
    for ref in xml_refs:
        actual = primitives.digest(ref.digest, exc_c14n(ref.target, ref.prefixes))
        if not hmac.compare_digest(actual, ref.expected):
            raise InvalidDigest(
                f"digest of {_describe(ref.target)} ({ref.uri}) does not match: "
                "the element was altered in transit"
            )
    for pref in part_refs:
        actual = primitives.digest(pref.digest, attachment_content_octets(pref.part))
        if not hmac.compare_digest(actual, pref.expected):
            raise InvalidDigest(
                f"digest of attachment cid:{pref.part.content_id} does not match: "
                "the attachment was altered in transit"
            )


def _require_trusted(
    signer: x509.Certificate,
    trusted: Sequence[x509.Certificate],
    trust: TrustConfig | None,
) -> tuple[x509.Certificate, ...]:
    """Trust decision for the signing certificate; returns its validated chain.

    With ``trust``, the signer must (a) validate to one of the partner's anchors
    (validity, key usage for signing, CRLs) and (b) still be one of the certificates
    configured for the sending party: a perfectly valid certificate of *another*
    party under the same CA is not this partner. Several configured certificates
    (rollover) are all accepted. Without ``trust`` only (b) applies, as before.
    """
    chain: tuple[x509.Certificate, ...] = ()
    if trust is not None:
        try:
            chain = tuple(trust.validate(signer, purpose="signing"))
        except UntrustedCertificate as exc:
            raise SignerCertificateRejected(
                f"the signing certificate is not trusted: {exc}"
            ) from exc
    if signer not in trusted:
        raise UntrustedSigner(
            "the message is signed by a certificate that is not a trusted signer for this "
            f"partner: {describe_certificate(signer)}"
        )
    return chain


def verify_message(
    envelope: etree._Element,
    parts: Sequence[Part],
    trusted_signers: Sequence[x509.Certificate],
    policy: SecurityPolicy = EDELIVERY_AS4_1_15,
    *,
    trust: TrustConfig | None = None,
) -> VerifyResult:
    """Verify the WS-Security signature of an AS4 message (attachments already
    decrypted, since AS4 signs first and encrypts second).

    Only ``policy``'s algorithms are accepted (a 2.0 partner cannot fall back to
    1.15 or the reverse). ``trusted_signers`` are the certificates configured for the
    sending party (two during a rollover); with ``trust`` the signer must also pass
    path validation against the partner's anchors and CRLs.

    Raises a :class:`SignatureError` subclass (:class:`SignerCertificateRejected` for
    a failed path validation) or :class:`AlgorithmNotAllowed`.
    """
    if not isinstance(envelope, etree._Element) or envelope.tag != q(NS_SOAP12, "Envelope"):
        raise SignatureError("not a SOAP 1.2 envelope")
    try:
        security = find_security_header(envelope)
        messaging = messaging_header(envelope)
        body = soap_body(envelope)
    except ValueError as exc:
        raise SignatureError(str(exc)) from None
    if security is None:
        raise MissingSignature("the message has no wsse:Security header, so it is not signed")
    signatures = children(security, NS_DS, "Signature")
    if not signatures:
        raise MissingSignature("the wsse:Security header holds no ds:Signature")
    if len(signatures) > 1:
        raise SignatureError("the wsse:Security header holds more than one ds:Signature")
    signature = signatures[0]
    signed_info = _one(signature, NS_DS, "SignedInfo", "ds:Signature")
    c14n_method = _one(signed_info, NS_DS, "CanonicalizationMethod", "ds:SignedInfo")
    require(
        CanonicalizationAlgorithm,
        c14n_method.get("Algorithm"),
        policy.canonicalization_algorithm,
        "canonicalization method of SignedInfo",
    )
    signature_alg = require(
        SignatureAlgorithm,
        _one(signed_info, NS_DS, "SignatureMethod", "ds:SignedInfo").get("Algorithm"),
        policy.signature_algorithm,
        "signature method",
    )
    id_index = index_ids(envelope)
    references = children(signed_info, NS_DS, "Reference")
    if not references:
        raise IncompleteSignature("the signature has no references, so it covers nothing")
    parsed = [_parse_reference(r, parts, id_index, policy) for r in references]
    xml_refs = [r for r in parsed if isinstance(r, _XmlRef)]
    part_refs = [r for r in parsed if isinstance(r, _PartRef)]
    _check_covered_once(messaging, xml_refs, NS_EBMS, "Messaging", "eb:Messaging header")
    _check_covered_once(body, xml_refs, NS_SOAP12, "Body", "soap:Body")
    signed_part_ids = _check_parts_covered(parts, part_refs)

    signer = signer_certificate(signature, security, id_index, trusted_signers)
    chain = _require_trusted(signer, trusted_signers, trust)
    try:
        signature_value = b64decode(
            _one(signature, NS_DS, "SignatureValue", "ds:Signature").text
        )
    except ValueError as exc:
        raise SignatureError(f"SignatureValue: {exc}") from None
    signed_bytes = exc_c14n(signed_info, inclusive_prefixes(c14n_method))
    if not primitives.verify(signature_alg, signer.public_key(), signature_value, signed_bytes):
        raise InvalidSignatureValue(
            "the SignatureValue does not verify with the signer's certificate "
            f"({describe_certificate(signer)}): SignedInfo was altered or signed with another key"
        )
    _check_digests(xml_refs, part_refs)
    assert messaging is not None and body is not None  # guaranteed by _check_covered_once
    return VerifyResult(
        signer=signer,
        references=tuple(copy.deepcopy(r) for r in references),
        signed_messaging=messaging,
        signed_body=body,
        signed_part_ids=signed_part_ids,
        chain=chain,
    )
