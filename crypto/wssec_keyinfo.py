"""Finding the signer's certificate from a ds:Signature's KeyInfo.

Supported forms, in the order AS4 implementations use them:
``wsse:SecurityTokenReference/wsse:Reference`` to a BinarySecurityToken in the
same Security header (what we and WSS4J emit), ``ds:X509Data/ds:X509Certificate``
(what libxmlsec1 and others emit), and issuer/serial references, which can only be
resolved against certificates we already hold (the trusted signers).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from crypto.errors import SignatureError, UntrustedSigner
from crypto.wssec_common import (
    BASE64_ENCODING_TYPE,
    NS_DS,
    NS_WSSE,
    X509V3_VALUE_TYPE,
    b64decode,
    child,
    children,
    q,
    resolve_same_document,
)


def describe_certificate(certificate: x509.Certificate) -> str:
    """Who a certificate is, in terms an operator can match against partner config."""
    fingerprint = hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
    return (
        f"subject '{certificate.subject.rfc4514_string()}', "
        f"issuer '{certificate.issuer.rfc4514_string()}', serial {certificate.serial_number:#x}, "
        f"SHA-256 fingerprint {fingerprint}"
    )


@functools.lru_cache(maxsize=256)
def _parsed_der(b64text: str | None) -> x509.Certificate:
    """Parsed once per distinct token: a partner's messages all carry the same certificate, and
    parsing it (names, extensions, key) cost more per message than the digest it serves. Only
    certificates that parse are kept (an exception is not cached), at most 256 of them."""
    certificate = x509.load_der_x509_certificate(b64decode(b64text))
    certificate.subject.rfc4514_string()
    certificate.issuer.rfc4514_string()
    len(certificate.extensions)
    certificate.public_key()
    return certificate


def _load_der(b64text: str | None, where: str) -> x509.Certificate:
    """A certificate from the message, with every field the verifier and its messages read
    already parsed: cryptography parses names, extensions and the key lazily, and raises
    not only ValueError (InvalidVersion, DuplicateExtension, UnsupportedAlgorithm), so a
    malformed token must be refused here, as a SignatureError, not later as a traceback."""
    try:
        return _parsed_der(b64text)
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"{where} does not hold a valid X.509 certificate: {exc}") from None


def _normalise_dn(text: str) -> str:
    return ",".join(p.strip() for p in text.split(",")).casefold()


def _by_issuer_serial(
    issuer_serial: etree._Element, trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    issuer = (issuer_serial.findtext(q(NS_DS, "X509IssuerName")) or "").strip()
    serial_text = (issuer_serial.findtext(q(NS_DS, "X509SerialNumber")) or "").strip()
    try:
        serial = int(serial_text)
    except ValueError:
        raise SignatureError(f"X509SerialNumber {serial_text!r} is not a number") from None
    for certificate in trusted:
        if certificate.serial_number == serial and _normalise_dn(
            certificate.issuer.rfc4514_string()
        ) == _normalise_dn(issuer):
            return certificate
    raise UntrustedSigner(
        f"the signature names its key by issuer '{issuer}' and serial {serial:#x}, "
        "which matches no trusted signer certificate for this partner"
    )


def _from_x509_data(
    x509_data: etree._Element, trusted: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    certificates = children(x509_data, NS_DS, "X509Certificate")
    if certificates:
        # With a chain, XML-DSig puts no order rule; by convention the leaf is first.
        return _load_der(certificates[0].text, "ds:X509Certificate")
    issuer_serial = child(x509_data, NS_DS, "X509IssuerSerial")
    if issuer_serial is not None:
        return _by_issuer_serial(issuer_serial, trusted)
    return None


def signer_certificate(
    signature: etree._Element,
    security: etree._Element,
    id_index: dict[str, list[etree._Element]],
    trusted: Sequence[x509.Certificate],
) -> x509.Certificate:
    """The certificate whose key must verify ``signature``.

    Raises SignatureError if KeyInfo is absent or in an unsupported form.
    """
    key_info = child(signature, NS_DS, "KeyInfo")
    if key_info is None:
        raise SignatureError("the signature has no ds:KeyInfo, so the signer cannot be identified")
    str_ = child(key_info, NS_WSSE, "SecurityTokenReference")
    if str_ is not None:
        reference = child(str_, NS_WSSE, "Reference")
        if reference is not None:
            try:
                token = resolve_same_document(id_index, reference.get("URI") or "")
            except LookupError as exc:
                raise SignatureError(f"KeyInfo token reference: {exc}") from None
            if token.tag != q(NS_WSSE, "BinarySecurityToken") or token.getparent() is not security:
                raise SignatureError(
                    "KeyInfo must reference a wsse:BinarySecurityToken of the same "
                    "wsse:Security header"
                )
            if token.get("ValueType") != X509V3_VALUE_TYPE:
                raise SignatureError(
                    f"BinarySecurityToken ValueType {token.get('ValueType')!r} is not supported; "
                    f"expected {X509V3_VALUE_TYPE}"
                )
            if token.get("EncodingType", BASE64_ENCODING_TYPE) != BASE64_ENCODING_TYPE:
                raise SignatureError("BinarySecurityToken EncodingType must be Base64Binary")
            return _load_der(token.text, "the wsse:BinarySecurityToken")
        x509_data = child(str_, NS_DS, "X509Data")
        if x509_data is not None:
            found = _from_x509_data(x509_data, trusted)
            if found is not None:
                return found
    x509_data = child(key_info, NS_DS, "X509Data")
    if x509_data is not None:
        found = _from_x509_data(x509_data, trusted)
        if found is not None:
            return found
    raise SignatureError(
        "ds:KeyInfo does not identify the signer certificate in a supported way "
        "(BinarySecurityToken reference, X509Certificate or X509IssuerSerial)"
    )


def append_issuer_serial_reference(parent: etree._Element, ns: str, local: str,
                                   certificate: x509.Certificate) -> None:
    """Append ``<ns:local><wsse:SecurityTokenReference><ds:X509Data><ds:X509IssuerSerial>``
    naming ``certificate``: how eDelivery AS4 points at the recipient's key, both in
    ds:KeyInfo of an RSA EncryptedKey and in xenc:RecipientKeyInfo of a key agreement."""
    def sub(p: etree._Element, n: str, name: str) -> etree._Element:
        return etree.SubElement(p, q(n, name))
    token = sub(sub(parent, ns, local), NS_WSSE, "SecurityTokenReference")
    issuer_serial = sub(sub(token, NS_DS, "X509Data"), NS_DS, "X509IssuerSerial")
    sub(issuer_serial, NS_DS, "X509IssuerName").text = certificate.issuer.rfc4514_string()
    sub(issuer_serial, NS_DS, "X509SerialNumber").text = str(certificate.serial_number)
