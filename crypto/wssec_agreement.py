"""eDelivery AS4 2.0 key agreement inside xenc:EncryptedKey: X25519 or ECDH-ES (P-256),
HKDF (RFC 9231) and AES key wrap.

The EncryptedKey's ds:KeyInfo holds an xenc:AgreementMethod instead of a reference
to the recipient's RSA key::

    <xenc:AgreementMethod Algorithm="...xmldsig-more#x25519 | ...xmlenc11#ECDH-ES">
      <xenc11:KeyDerivationMethod Algorithm="http://www.w3.org/2021/04/xmldsig-more#hkdf">
        <dsig-more:HKDFParams>
          <dsig-more:PRF Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"/>
          <dsig-more:Salt>base64</dsig-more:Salt>
          <dsig-more:Info>base64</dsig-more:Info>
          <dsig-more:KeyLength>16</dsig-more:KeyLength>   (bytes, = the KW key size)
        </dsig-more:HKDFParams>
      </xenc11:KeyDerivationMethod>
      <xenc:OriginatorKeyInfo> ephemeral public key </xenc:OriginatorKeyInfo>
      <xenc:RecipientKeyInfo> wsse:SecurityTokenReference to the recipient cert </xenc:RecipientKeyInfo>
    </xenc:AgreementMethod>

We write the ephemeral key the way WSS4J (Domibus, phase4) does: X25519 as
``dsig11:DEREncodedKeyValue`` (SubjectPublicKeyInfo), P-256 as
``ds:KeyValue/dsig11:ECKeyValue`` (named curve + uncompressed point). On input both
forms are accepted for both curves, as are ``dsig-more:Salt/dsig-more:Specified``
and a KeyLength given in bits (128 cannot be a byte length for KW-AES128, so it is
unambiguous); these are variants other implementations emit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from lxml import etree

from crypto import wssec_primitives as primitives
from crypto.algorithms import (
    KeyAgreementAlgorithm,
    KeyDerivationAlgorithm,
    KeyWrapAlgorithm,
    PseudoRandomFunction,
    SecurityPolicy,
    require,
)
from crypto.errors import DecryptionError
from crypto.wssec_keyinfo import append_issuer_serial_reference
from crypto.wssec_common import (
    NS_DS,
    NS_DSIG11,
    NS_DSIG_MORE,
    NS_WSSE,
    NS_XENC,
    NS_XENC11,
    b64decode,
    b64encode,
    child,
    q,
)

P256_URN = "urn:oid:1.2.840.10045.3.1.7"
X25519_URN = "urn:oid:1.3.101.110"
SALT_BYTES = 32

OriginatorKey = x25519.X25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class AgreementParams:
    """Everything read (and policy-checked) from one xenc:AgreementMethod."""

    algorithm: KeyAgreementAlgorithm
    prf: PseudoRandomFunction
    salt: bytes | None
    info: bytes | None
    key_length: int
    """KEK length in bytes, already checked against the key-wrap algorithm."""
    originator_key: OriginatorKey


def _sub(parent: etree._Element, ns: str, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(ns, local), attrib)


def _info_for(key_wrap: KeyWrapAlgorithm) -> bytes:
    # Binds the derived KEK to its single use; any value works for the receiver,
    # which reads Info from the message.
    return key_wrap.value.encode("ascii")


def _originator_key_info(parent: etree._Element, ephemeral_public: OriginatorKey) -> None:
    info = _sub(parent, NS_XENC, "OriginatorKeyInfo")
    if isinstance(ephemeral_public, x25519.X25519PublicKey):
        _sub(info, NS_DSIG11, "DEREncodedKeyValue").text = b64encode(ephemeral_public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        return
    ec_value = _sub(_sub(info, NS_DS, "KeyValue"), NS_DSIG11, "ECKeyValue")
    _sub(ec_value, NS_DSIG11, "NamedCurve", URI=P256_URN)
    _sub(ec_value, NS_DSIG11, "PublicKey").text = b64encode(ephemeral_public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def build_agreement_method(
    policy: SecurityPolicy, recipient_certificate: x509.Certificate
) -> tuple[etree._Element, bytes]:
    """A new xenc:AgreementMethod for ``recipient_certificate`` and the KEK it yields.

    Raises AlgorithmNotAllowed when the certificate's key does not fit the policy's
    agreement algorithm (an RSA certificate configured for a 2.0 partner, say).
    """
    assert policy.key_agreement and policy.key_derivation and policy.kdf_prf and policy.key_wrap
    algorithm = policy.key_agreement
    recipient_public = recipient_certificate.public_key()
    primitives.check_agreement_public_key(
        algorithm, recipient_public,
        f"the recipient certificate '{recipient_certificate.subject.rfc4514_string()}'")
    ephemeral = primitives.new_ephemeral_key(algorithm)
    secret = primitives.agree(algorithm, ephemeral, recipient_public)
    key_length = primitives.key_wrap_key_bytes(policy.key_wrap)
    salt = os.urandom(SALT_BYTES)
    info = _info_for(policy.key_wrap)
    kek = primitives.hkdf(policy.kdf_prf, secret, salt, info, key_length)

    method = etree.Element(q(NS_XENC, "AgreementMethod"), {"Algorithm": algorithm.value},
                           nsmap={"xenc": NS_XENC, "xenc11": NS_XENC11, "dsig-more": NS_DSIG_MORE,
                                  "dsig11": NS_DSIG11, "ds": NS_DS, "wsse": NS_WSSE})
    derivation = _sub(method, NS_XENC11, "KeyDerivationMethod",
                      Algorithm=policy.key_derivation.value)
    params = _sub(derivation, NS_DSIG_MORE, "HKDFParams")
    _sub(params, NS_DSIG_MORE, "PRF", Algorithm=policy.kdf_prf.value)
    _sub(params, NS_DSIG_MORE, "Salt").text = b64encode(salt)
    _sub(params, NS_DSIG_MORE, "Info").text = b64encode(info)
    _sub(params, NS_DSIG_MORE, "KeyLength").text = str(key_length)
    _originator_key_info(method, ephemeral.public_key())
    append_issuer_serial_reference(method, NS_XENC, "RecipientKeyInfo", recipient_certificate)
    return method, kek


def required_child(parent: etree._Element, ns: str, local: str, what: str) -> etree._Element:
    """The one ``local`` child of ``parent``; a DecryptionError naming ``what`` otherwise."""
    try:
        found = child(parent, ns, local)
    except ValueError as exc:
        raise DecryptionError(f"malformed {what}: {exc}") from None
    if found is None:
        raise DecryptionError(f"malformed {what}: no {local} element")
    return found


def _b64(element: etree._Element | None, what: str) -> bytes | None:
    if element is None:
        return None
    specified = child(element, NS_DSIG_MORE, "Specified")
    text = specified.text if specified is not None else element.text
    try:
        return b64decode(text)
    except ValueError as exc:
        raise DecryptionError(f"malformed {what}: {exc}") from None


def _ec_key_value(ec_value: etree._Element) -> OriginatorKey:
    curve = child(ec_value, NS_DSIG11, "NamedCurve")
    if curve is None:
        raise DecryptionError(
            "dsig11:ECKeyValue of the originator key must name its curve (dsig11:NamedCurve); "
            "explicit curve parameters are not accepted")
    point = _b64(child(ec_value, NS_DSIG11, "PublicKey"), "dsig11:ECKeyValue/PublicKey")
    if point is None:
        raise DecryptionError("dsig11:ECKeyValue of the originator key has no PublicKey")
    uri = (curve.get("URI") or "").strip()
    try:
        if uri == P256_URN:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if uri == X25519_URN:
            if len(point) == 32:
                return x25519.X25519PublicKey.from_public_bytes(point)
            loaded = serialization.load_der_public_key(point)
            if isinstance(loaded, x25519.X25519PublicKey):
                return loaded
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DecryptionError(f"the originator (ephemeral) public key is invalid: {exc}") from None
    raise DecryptionError(f"originator key curve {uri!r} is not supported (P-256 or X25519)")


def _der_key_value(element: etree._Element) -> OriginatorKey:
    der = _b64(element, "dsig11:DEREncodedKeyValue")
    try:
        loaded = serialization.load_der_public_key(der or b"")
    except (ValueError, UnsupportedAlgorithm) as exc:    # a key type cryptography does not know
        raise DecryptionError(f"the originator (ephemeral) public key is invalid: {exc}") from None
    if not isinstance(loaded, (x25519.X25519PublicKey, ec.EllipticCurvePublicKey)):
        raise DecryptionError(
            f"the originator key is a {type(loaded).__name__.lstrip('_')}, not a key-agreement key")
    return loaded


def _originator_key(originator: etree._Element) -> OriginatorKey:
    containers = [originator]
    key_value = child(originator, NS_DS, "KeyValue")
    if key_value is not None:
        containers.append(key_value)
    for container in containers:
        der = child(container, NS_DSIG11, "DEREncodedKeyValue")
        if der is not None:
            return _der_key_value(der)
        ec_value = child(container, NS_DSIG11, "ECKeyValue")
        if ec_value is not None:
            return _ec_key_value(ec_value)
    raise DecryptionError(
        "xenc:OriginatorKeyInfo does not carry the ephemeral public key in a supported form "
        "(dsig11:DEREncodedKeyValue or ds:KeyValue/dsig11:ECKeyValue)")


def parse_agreement_method(
    encrypted_key: etree._Element, policy: SecurityPolicy
) -> AgreementParams:
    """Read and policy-check the AgreementMethod of ``encrypted_key`` (no key is used).

    Raises AlgorithmNotAllowed for any algorithm outside the policy and
    DecryptionError for a malformed structure.
    """
    assert policy.key_agreement and policy.key_derivation and policy.kdf_prf and policy.key_wrap
    key_info = required_child(encrypted_key, NS_DS, "KeyInfo", "xenc:EncryptedKey")
    method = required_child(key_info, NS_XENC, "AgreementMethod", "ds:KeyInfo of xenc:EncryptedKey "
                  f"(the policy {policy.name} requires key agreement)")
    algorithm = require(KeyAgreementAlgorithm, method.get("Algorithm"), policy.key_agreement,
                        "key agreement algorithm of xenc:AgreementMethod")
    derivation = required_child(method, NS_XENC11, "KeyDerivationMethod", "xenc:AgreementMethod")
    require(KeyDerivationAlgorithm, derivation.get("Algorithm"), policy.key_derivation,
            "key derivation method of xenc:AgreementMethod")
    params = required_child(derivation, NS_DSIG_MORE, "HKDFParams", "xenc11:KeyDerivationMethod")
    prf_element = child(params, NS_DSIG_MORE, "PRF")
    prf = require(PseudoRandomFunction, None if prf_element is None else prf_element.get("Algorithm"),
                  policy.kdf_prf, "HKDF pseudo-random function (dsig-more:PRF)")
    expected_length = primitives.key_wrap_key_bytes(policy.key_wrap)
    length_element = child(params, NS_DSIG_MORE, "KeyLength")
    key_length = expected_length
    if length_element is not None:
        text = (length_element.text or "").strip()
        if text not in (str(expected_length), str(expected_length * 8)):
            raise DecryptionError(
                f"HKDF KeyLength {text!r} does not match {policy.key_wrap.value}, which needs a "
                f"{expected_length}-byte key-encryption key")
    originator = required_child(method, NS_XENC, "OriginatorKeyInfo", "xenc:AgreementMethod")
    originator_key = _originator_key(originator)
    primitives.check_agreement_public_key(algorithm, originator_key,
                                          "the originator (ephemeral) key")
    return AgreementParams(
        algorithm=algorithm,
        prf=prf,
        salt=_b64(child(params, NS_DSIG_MORE, "Salt"), "dsig-more:Salt"),
        info=_b64(child(params, NS_DSIG_MORE, "Info"), "dsig-more:Info"),
        key_length=key_length,
        originator_key=originator_key,
    )


def derive_kek(params: AgreementParams, private_key: object) -> bytes:
    """The key-encryption key for ``params`` with our static private key.

    A degenerate agreement (small-order point) yields a random KEK instead of an
    error, so the unwrap fails like any other wrong key and the failure stays opaque.
    A private key of the wrong type is a configuration error and is raised.
    """
    primitives.check_agreement_private_key(params.algorithm, private_key)
    try:
        secret = primitives.agree(params.algorithm, private_key, params.originator_key)
    except ValueError:
        return os.urandom(params.key_length)
    return primitives.hkdf(params.prf, secret, params.salt, params.info, params.key_length)
