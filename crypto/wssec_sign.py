"""Signing an AS4 message: WS-Security X.509 token + XML-DSig over the ebMS header,
the SOAP Body and every attachment (SwA Attachment-Content-Signature-Transform).

Produces what eDelivery AS4 1.15 receivers (WSS4J-based or not) expect: a
BinarySecurityToken with the signer certificate, referenced from KeyInfo by a
SecurityTokenReference, and bare-name ``#wsu:Id`` references so that no XPath is
ever needed to find signed content.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from crypto import wssec_primitives as primitives
from crypto.algorithms import (
    EDELIVERY_AS4_1_15,
    EDELIVERY_AS4_2_0_ECDSA,
    EDELIVERY_AS4_2_0_EDDSA,
    SecurityPolicy,
    TransformAlgorithm,
)
from crypto.errors import AlgorithmNotAllowed
from crypto.wssec_common import (
    BASE64_ENCODING_TYPE,
    NS_DS,
    NS_WSSE,
    WSU_ID,
    X509V3_VALUE_TYPE,
    Part,
    WSSecurityStructureError,
    b64encode,
    check_envelope,
    children,
    cid_uri,
    ensure_security_header,
    ensure_wsu_id,
    exc_c14n,
    index_ids,
    messaging_header,
    new_id,
    q,
    soap_body,
)
from crypto.wssec_swa import attachment_content_octets


def _ds(parent: etree._Element, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(NS_DS, local), attrib)


def _add_reference(
    signed_info: etree._Element,
    uri: str,
    transform: TransformAlgorithm,
    policy: SecurityPolicy,
    octets: bytes,
) -> etree._Element:
    reference = _ds(signed_info, "Reference", URI=uri)
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=transform.value)
    _ds(reference, "DigestMethod", Algorithm=policy.digest_algorithm.value)
    _ds(reference, "DigestValue").text = b64encode(
        primitives.digest(policy.digest_algorithm, octets)
    )
    return reference


def _add_binary_security_token(
    security: etree._Element, certificate: x509.Certificate
) -> str:
    bst_id = new_id("X509")
    bst = etree.SubElement(
        security,
        q(NS_WSSE, "BinarySecurityToken"),
        {"EncodingType": BASE64_ENCODING_TYPE, "ValueType": X509V3_VALUE_TYPE, WSU_ID: bst_id},
    )
    bst.text = b64encode(certificate.public_bytes(Encoding.DER))
    return bst_id


def _check_unique_ids(envelope: etree._Element) -> None:
    duplicates = sorted(k for k, v in index_ids(envelope).items() if len(v) > 1)
    if duplicates:
        raise WSSecurityStructureError(
            f"the envelope carries duplicate ids {duplicates}; "
            "a receiver would reject the signature"
        )


def policy_for_signing_key(private_key: PrivateKeyTypes) -> SecurityPolicy:
    """The suite whose signature algorithm fits ``private_key``: RSA -> 1.15,
    Ed25519 -> 2.0 EdDSA, EC P-256 -> 2.0 ECDSA. Used when the caller names none."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return EDELIVERY_AS4_1_15
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return EDELIVERY_AS4_2_0_EDDSA
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
            private_key.curve, ec.SECP256R1):
        return EDELIVERY_AS4_2_0_ECDSA
    raise AlgorithmNotAllowed(
        f"no eDelivery AS4 suite signs with a {primitives.describe_key(private_key)} key "
        "(RSA, Ed25519 or EC P-256 are supported)")


def sign_message(
    envelope: etree._Element,
    parts: Sequence[Part],
    private_key: PrivateKeyTypes,
    certificate: x509.Certificate,
    policy: SecurityPolicy | None = None,
) -> list[etree._Element]:
    """Sign eb:Messaging, soap:Body and every attachment of ``envelope`` in place.

    ``policy`` None picks the suite from the key type (:func:`policy_for_signing_key`;
    an RSA key gives 1.15, the former default). A key that does not fit an explicit
    policy raises AlgorithmNotAllowed before the envelope is touched.

    Adds (creating wsse:Security if needed) a BinarySecurityToken and a ds:Signature
    with one reference per covered item. Returns deep copies of the ds:Reference
    elements: the sender keeps them to check the receipt's NonRepudiationInformation,
    the receiver puts them into that receipt.
    """
    check_envelope(envelope)
    if policy is None:
        policy = policy_for_signing_key(private_key)
    primitives.check_signing_key(policy.signature_algorithm, private_key)
    messaging = messaging_header(envelope)
    body = soap_body(envelope)
    if messaging is None or body is None:
        raise WSSecurityStructureError("the envelope needs an eb:Messaging header and a soap:Body")
    content_ids = [p.content_id for p in parts]
    if len(set(content_ids)) != len(content_ids):
        raise WSSecurityStructureError(f"duplicate attachment content ids in {content_ids}")
    security = ensure_security_header(envelope)
    if children(security, NS_DS, "Signature"):
        raise WSSecurityStructureError("the wsse:Security header already holds a ds:Signature")

    messaging_id = ensure_wsu_id(messaging, "messaging")
    body_id = ensure_wsu_id(body, "body")
    _check_unique_ids(envelope)
    bst_id = _add_binary_security_token(security, certificate)

    signature = etree.SubElement(
        security, q(NS_DS, "Signature"), {"Id": new_id("SIG")}, nsmap={"ds": NS_DS}
    )
    signed_info = _ds(signature, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=policy.canonicalization_algorithm.value)
    _ds(signed_info, "SignatureMethod", Algorithm=policy.signature_algorithm.value)
    references = [
        _add_reference(signed_info, "#" + element_id, TransformAlgorithm.EXC_C14N, policy,
                       exc_c14n(element))
        for element, element_id in ((messaging, messaging_id), (body, body_id))
    ]
    for part in parts:
        references.append(
            _add_reference(
                signed_info,
                cid_uri(part.content_id),
                TransformAlgorithm.SWA_CONTENT_SIGNATURE,
                policy,
                attachment_content_octets(part),
            )
        )
    signature_value = _ds(signature, "SignatureValue")
    key_info = _ds(signature, "KeyInfo")
    str_ = etree.SubElement(key_info, q(NS_WSSE, "SecurityTokenReference"))
    etree.SubElement(
        str_, q(NS_WSSE, "Reference"), {"URI": "#" + bst_id, "ValueType": X509V3_VALUE_TYPE}
    )
    signature_value.text = b64encode(
        primitives.sign(policy.signature_algorithm, private_key, exc_c14n(signed_info))
    )
    return [copy.deepcopy(r) for r in references]
