"""Encrypting AS4 attachments per the WSS SwA profile (Attachment-Content-Only).

One fresh content key per message, sent to the recipient in an xenc:EncryptedKey:
transported with RSA-OAEP (SHA-256, MGF1-SHA256) under eDelivery AS4 1.15, or wrapped
with AES key wrap under a KEK from X25519/ECDH-ES key agreement and HKDF under 2.0
(the policy decides, see :mod:`crypto.wssec_agreement`); one xenc:EncryptedData per
attachment whose CipherReference points at the (now encrypted) MIME part. Done
after signing: the signature covers the plaintext, as the AS4 profile requires.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from lxml import etree

from crypto import wssec_primitives as primitives
from crypto.algorithms import EDELIVERY_AS4_1_15, SecurityPolicy, TransformAlgorithm
from crypto.trust import TrustConfig
from crypto.wssec_agreement import build_agreement_method
from crypto.wssec_keyinfo import append_issuer_serial_reference
from crypto.wssec_common import (
    ENCRYPTED_KEY_TOKEN_TYPE,
    NS_DS,
    NS_WSSE,
    NS_WSSE11,
    NS_XENC,
    NS_XENC11,
    SWA_CONTENT_ONLY,
    Part,
    WSSecurityStructureError,
    b64encode,
    check_envelope,
    cid_uri,
    ensure_security_header,
    new_id,
    q,
)

ENCRYPTED_MIME_TYPE = "application/octet-stream"


def _sub(parent: etree._Element, ns: str, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(ns, local), attrib)


def _encrypted_key(
    key: bytes,
    certificate: x509.Certificate,
    data_ids: Sequence[str],
    policy: SecurityPolicy,
) -> etree._Element:
    encrypted_key = etree.Element(
        q(NS_XENC, "EncryptedKey"),
        {"Id": new_id("EK")},
        nsmap={"xenc": NS_XENC, "xenc11": NS_XENC11, "ds": NS_DS},
    )
    if policy.uses_key_agreement:
        assert policy.key_wrap is not None
        _sub(encrypted_key, NS_XENC, "EncryptionMethod", Algorithm=policy.key_wrap.value)
        agreement, kek = build_agreement_method(policy, certificate)
        _sub(encrypted_key, NS_DS, "KeyInfo").append(agreement)
        wrapped = primitives.wrap_with_kek(policy.key_wrap, kek, key)
    else:
        wrapped = _transport_key(encrypted_key, key, certificate, policy)
    _sub(_sub(encrypted_key, NS_XENC, "CipherData"), NS_XENC, "CipherValue").text = b64encode(
        wrapped
    )
    reference_list = _sub(encrypted_key, NS_XENC, "ReferenceList")
    for data_id in data_ids:
        _sub(reference_list, NS_XENC, "DataReference", URI="#" + data_id)
    return encrypted_key


def _transport_key(
    encrypted_key: etree._Element,
    key: bytes,
    certificate: x509.Certificate,
    policy: SecurityPolicy,
) -> bytes:
    """eDelivery AS4 1.15: RSA-OAEP EncryptionMethod + issuer/serial KeyInfo."""
    assert policy.key_transport_algorithm and policy.key_transport_digest and policy.mgf
    method = _sub(
        encrypted_key, NS_XENC, "EncryptionMethod", Algorithm=policy.key_transport_algorithm.value
    )
    _sub(method, NS_DS, "DigestMethod", Algorithm=policy.key_transport_digest.value)
    _sub(method, NS_XENC11, "MGF", Algorithm=policy.mgf.value)
    append_issuer_serial_reference(encrypted_key, NS_DS, "KeyInfo", certificate)
    return primitives.wrap_key(
        policy.key_transport_algorithm,
        policy.key_transport_digest,
        policy.mgf,
        certificate.public_key(),
        key,
    )


def _encrypted_data(
    part: Part, data_id: str, key_id: str, policy: SecurityPolicy
) -> etree._Element:
    encrypted_data = etree.Element(
        q(NS_XENC, "EncryptedData"),
        {"Id": data_id, "Type": SWA_CONTENT_ONLY, "MimeType": part.mime_type},
        nsmap={"xenc": NS_XENC, "ds": NS_DS, "wsse11": NS_WSSE11},
    )
    _sub(
        encrypted_data,
        NS_XENC,
        "EncryptionMethod",
        Algorithm=policy.data_encryption_algorithm.value,
    )
    str_ = _sub(_sub(encrypted_data, NS_DS, "KeyInfo"), NS_WSSE, "SecurityTokenReference")
    str_.set(q(NS_WSSE11, "TokenType"), ENCRYPTED_KEY_TOKEN_TYPE)
    _sub(str_, NS_WSSE, "Reference", URI="#" + key_id)
    reference = _sub(
        _sub(encrypted_data, NS_XENC, "CipherData"),
        NS_XENC,
        "CipherReference",
        URI=cid_uri(part.content_id),
    )
    _sub(
        _sub(reference, NS_XENC, "Transforms"),
        NS_DS,
        "Transform",
        Algorithm=TransformAlgorithm.SWA_CIPHERTEXT.value,
    )
    return encrypted_data


def encrypt_parts(
    envelope: etree._Element,
    parts: Sequence[Part],
    recipient_certificate: x509.Certificate,
    policy: SecurityPolicy = EDELIVERY_AS4_1_15,
    *,
    trust: TrustConfig | None = None,
) -> list[Part]:
    """Encrypt every attachment for ``recipient_certificate``; edit ``envelope`` in place.

    With ``trust``, the recipient certificate must first validate for encryption
    (anchor, validity, key usage, CRLs), raising UntrustedCertificate otherwise: never
    encrypt a customs document for a key its own PKI has revoked.

    The EncryptedKey and EncryptedData elements are put at the *top* of the
    wsse:Security header so a receiver processing it top-down decrypts before it
    meets the signature. Returns the ciphertext parts (same content ids,
    ``application/octet-stream``, data = IV || ciphertext || tag) in input order.
    """
    check_envelope(envelope)
    if trust is not None:
        trust.validate(recipient_certificate, purpose="encryption")
    if not parts:
        return []
    content_ids = [p.content_id for p in parts]
    if len(set(content_ids)) != len(content_ids):
        raise WSSecurityStructureError(f"duplicate attachment content ids in {content_ids}")
    security = ensure_security_header(envelope)
    key = primitives.new_content_key(policy.data_encryption_algorithm)
    data_ids = [new_id("ED") for _ in parts]
    encrypted_key = _encrypted_key(key, recipient_certificate, data_ids, policy)
    security.insert(0, encrypted_key)
    encrypted_parts = []
    for position, (part, data_id) in enumerate(zip(parts, data_ids), start=1):
        security.insert(position, _encrypted_data(part, data_id, encrypted_key.get("Id"), policy))
        ciphertext = primitives.encrypt_content(policy.data_encryption_algorithm, key, part.data)
        encrypted_parts.append(Part(part.content_id, ENCRYPTED_MIME_TYPE, ciphertext))
    return encrypted_parts
