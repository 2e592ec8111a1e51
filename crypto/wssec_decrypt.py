"""Decrypting SwA-encrypted AS4 attachments (Attachment-Content-Only).

Every algorithm is checked against the policy *before* any key is used, and the
policy alone decides whether the content key is transported (RSA-OAEP, 1.15) or
agreed and wrapped (X25519/ECDH-ES + HKDF + AES-KW, 2.0): a message cannot pick the
other mechanism. Failures of the key transport/unwrap and of the content decryption
produce the same DecryptionError (a failed unwrap continues with a random key, as
WSS4J does), so error messages and timing do not tell an attacker which step failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from crypto import wssec_primitives as primitives
from crypto.algorithms import (
    EDELIVERY_AS4_1_15,
    DataEncryptionAlgorithm,
    DigestAlgorithm,
    KeyTransportAlgorithm,
    KeyWrapAlgorithm,
    MaskGenerationFunction,
    SecurityPolicy,
    TransformAlgorithm,
    require,
)
from crypto.wssec_agreement import AgreementParams, derive_kek, parse_agreement_method, required_child
from crypto.errors import DecryptionError, SecurityError
from crypto.wssec_common import (
    NS_DS,
    NS_SOAP12,
    NS_XENC,
    NS_XENC11,
    SWA_CONTENT_ONLY,
    Part,
    b64decode,
    child,
    children,
    content_id_from_uri,
    find_part,
    find_security_header,
    index_ids,
    q,
    resolve_same_document,
)

DEFAULT_OAEP_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
DEFAULT_MGF = "http://www.w3.org/2009/xmlenc11#mgf1sha1"


@dataclass(frozen=True)
class _Target:
    part: Part
    algorithm: DataEncryptionAlgorithm
    mime_type: str


@dataclass(frozen=True)
class _Transport:
    algorithm: KeyTransportAlgorithm
    digest: DigestAlgorithm
    mgf: MaskGenerationFunction
    label: bytes | None


@dataclass(frozen=True)
class _Agreement:
    wrap: KeyWrapAlgorithm
    params: AgreementParams


def _key_method(encrypted_key: etree._Element, policy: SecurityPolicy) -> _Transport | _Agreement:
    """Parse and policy-check how the content key reaches us, before any key is used."""
    if policy.uses_key_agreement:
        assert policy.key_wrap is not None
        method = required_child(encrypted_key, NS_XENC, "EncryptionMethod", "xenc:EncryptedKey")
        wrap = require(KeyWrapAlgorithm, method.get("Algorithm"), policy.key_wrap,
                       "key wrap algorithm of xenc:EncryptedKey")
        return _Agreement(wrap, parse_agreement_method(encrypted_key, policy))
    return _Transport(*_key_transport(encrypted_key, policy))


def _unwrap(method: _Transport | _Agreement, private_key: PrivateKeyTypes,
            wrapped: bytes) -> bytes | None:
    if isinstance(method, _Agreement):
        return primitives.unwrap_with_kek(method.wrap, derive_kek(method.params, private_key),
                                          wrapped)
    return primitives.unwrap_key(method.algorithm, method.digest, method.mgf, private_key,
                                 wrapped, method.label)


def _key_transport(
    encrypted_key: etree._Element, policy: SecurityPolicy
) -> tuple[KeyTransportAlgorithm, DigestAlgorithm, MaskGenerationFunction, bytes | None]:
    assert policy.key_transport_algorithm and policy.key_transport_digest and policy.mgf
    method = required_child(encrypted_key, NS_XENC, "EncryptionMethod", "xenc:EncryptedKey")
    algorithm = require(
        KeyTransportAlgorithm,
        method.get("Algorithm"),
        policy.key_transport_algorithm,
        "key transport algorithm of xenc:EncryptedKey",
    )
    digest_method = child(method, NS_DS, "DigestMethod")
    digest = require(
        DigestAlgorithm,
        DEFAULT_OAEP_DIGEST if digest_method is None else digest_method.get("Algorithm"),
        policy.key_transport_digest,
        "RSA-OAEP digest method (absent means SHA-1)",
    )
    mgf_element = child(method, NS_XENC11, "MGF")
    mgf = require(
        MaskGenerationFunction,
        DEFAULT_MGF if mgf_element is None else mgf_element.get("Algorithm"),
        policy.mgf,
        "RSA-OAEP mask generation function (absent means MGF1-SHA1)",
    )
    params = child(method, NS_XENC, "OAEPparams")
    try:
        label = b64decode(params.text) if params is not None else None
    except ValueError as exc:
        raise DecryptionError(f"malformed xenc:OAEPparams: {exc}") from None
    return algorithm, digest, mgf, label


def _target(
    encrypted_data: etree._Element, parts: Sequence[Part], policy: SecurityPolicy
) -> _Target:
    data_id = encrypted_data.get("Id", "?")
    if encrypted_data.tag != q(NS_XENC, "EncryptedData"):
        raise DecryptionError(f"DataReference #{data_id} does not point to an xenc:EncryptedData")
    if encrypted_data.get("Type") != SWA_CONTENT_ONLY:
        raise DecryptionError(
            f"EncryptedData #{data_id} has Type {encrypted_data.get('Type')!r}; only "
            f"attachment encryption ({SWA_CONTENT_ONLY}) is supported"
        )
    algorithm = require(
        DataEncryptionAlgorithm,
        required_child(encrypted_data, NS_XENC, "EncryptionMethod", f"EncryptedData #{data_id}").get(
            "Algorithm"
        ),
        policy.data_encryption_algorithm,
        f"encryption algorithm of EncryptedData #{data_id}",
    )
    cipher_data = required_child(encrypted_data, NS_XENC, "CipherData", f"EncryptedData #{data_id}")
    reference = required_child(cipher_data, NS_XENC, "CipherReference", f"EncryptedData #{data_id}")
    uri = reference.get("URI") or ""
    content_id = content_id_from_uri(uri)
    if content_id is None:
        raise DecryptionError(f"EncryptedData #{data_id} does not reference an attachment (cid:)")
    transforms_el = child(reference, NS_XENC, "Transforms")
    transforms = [] if transforms_el is None else children(transforms_el, NS_DS, "Transform")
    if len(transforms) != 1:
        raise DecryptionError(
            f"CipherReference {uri} must have exactly one transform "
            f"({TransformAlgorithm.SWA_CIPHERTEXT.value})"
        )
    require(
        TransformAlgorithm,
        transforms[0].get("Algorithm"),
        TransformAlgorithm.SWA_CIPHERTEXT,
        f"transform of CipherReference {uri}",
    )
    part = find_part(parts, content_id)
    if part is None:
        raise DecryptionError(
            f"EncryptedData #{data_id} refers to attachment {uri}, which is not in the message"
        )
    return _Target(part, algorithm, encrypted_data.get("MimeType") or "application/octet-stream")


def decrypt_parts(
    envelope: etree._Element,
    parts: Sequence[Part],
    private_key: PrivateKeyTypes,
    policy: SecurityPolicy = EDELIVERY_AS4_1_15,
) -> list[Part]:
    """Return ``parts`` with every encrypted attachment replaced by its plaintext
    (mime type from EncryptedData/@MimeType); unencrypted parts pass through.

    The envelope is not modified: the EncryptedKey/EncryptedData elements stay as
    evidence of what was received.
    """
    if not isinstance(envelope, etree._Element) or envelope.tag != q(NS_SOAP12, "Envelope"):
        raise SecurityError("not a SOAP 1.2 envelope")
    ids = [p.content_id for p in parts]
    if len(set(ids)) != len(ids):
        raise DecryptionError(f"the message has duplicate attachment content ids: {ids}")
    try:
        security = find_security_header(envelope)
    except ValueError as exc:
        raise DecryptionError(str(exc)) from None
    if security is None:
        return list(parts)
    id_index = index_ids(envelope)
    plaintexts: dict[str, Part] = {}
    handled: list[etree._Element] = []  # kept alive so identity checks are sound
    for encrypted_key in children(security, NS_XENC, "EncryptedKey"):
        key_method = _key_method(encrypted_key, policy)
        reference_list = child(encrypted_key, NS_XENC, "ReferenceList")
        if reference_list is None:
            raise DecryptionError(
                "xenc:EncryptedKey without ReferenceList is not supported: it does not say "
                "which attachments it decrypts"
            )
        targets: list[_Target] = []
        for data_reference in children(reference_list, NS_XENC, "DataReference"):
            try:
                encrypted_data = resolve_same_document(id_index, data_reference.get("URI") or "")
            except LookupError as exc:
                raise DecryptionError(f"DataReference: {exc}") from None
            target = _target(encrypted_data, parts, policy)
            if target.part.content_id in plaintexts or any(
                t.part.content_id == target.part.content_id for t in targets
            ):
                raise DecryptionError(
                    f"attachment cid:{target.part.content_id} is referenced by more than one "
                    "EncryptedData"
                )
            handled.append(encrypted_data)
            targets.append(target)
        try:
            wrapped = b64decode(
                required_child(
                    required_child(encrypted_key, NS_XENC, "CipherData", "xenc:EncryptedKey"),
                    NS_XENC,
                    "CipherValue",
                    "xenc:EncryptedKey",
                ).text
            )
        except ValueError as exc:
            raise DecryptionError(f"EncryptedKey CipherValue: {exc}") from None
        key = _unwrap(key_method, private_key, wrapped)
        for target in targets:
            content_key = key if key is not None else primitives.new_content_key(target.algorithm)
            try:
                plaintext = primitives.decrypt_content(
                    target.algorithm, content_key, target.part.data
                )
            except DecryptionError:
                raise DecryptionError(
                    f"attachment cid:{target.part.content_id} could not be decrypted: the "
                    "message was encrypted for another key, or the data was altered in transit"
                ) from None
            plaintexts[target.part.content_id] = Part(
                target.part.content_id, target.mime_type, plaintext
            )
    for encrypted_data in children(security, NS_XENC, "EncryptedData"):
        if not any(encrypted_data is h for h in handled):
            raise DecryptionError(
                f"EncryptedData #{encrypted_data.get('Id', '?')} is not referenced by any "
                "EncryptedKey, so it cannot be decrypted"
            )
    return [plaintexts.get(p.content_id, p) for p in parts]
