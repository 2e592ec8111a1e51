"""Algorithm identifiers (URI-valued enums) and the security policy that picks them.

Every algorithm URI read from a message goes through :func:`require` before any
cryptography happens, so a message can never choose a weaker algorithm than the
policy (the classic downgrade to SHA-1, RSA-1.5 or CBC). The enums are the
allowlist of what the code can do at all; a :class:`SecurityPolicy` narrows that to
exactly one algorithm per role. New suites (eDelivery AS4 2.0's EdDSA/X25519) add
enum members, primitives in :mod:`crypto.wssec_primitives`, and a policy instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from crypto.errors import AlgorithmNotAllowed


class SignatureAlgorithm(str, Enum):
    """ds:SignatureMethod/@Algorithm."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


class DigestAlgorithm(str, Enum):
    """ds:DigestMethod/@Algorithm (reference digests and the OAEP digest)."""

    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class CanonicalizationAlgorithm(str, Enum):
    """ds:CanonicalizationMethod/@Algorithm and XML reference transforms."""

    EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


class TransformAlgorithm(str, Enum):
    """ds:Transform/@Algorithm values this implementation can apply."""

    EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    SWA_CONTENT_SIGNATURE = (
        "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1"
        "#Attachment-Content-Signature-Transform"
    )
    SWA_CIPHERTEXT = (
        "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform"
    )


class DataEncryptionAlgorithm(str, Enum):
    """xenc:EncryptedData/xenc:EncryptionMethod/@Algorithm."""

    AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"


class KeyTransportAlgorithm(str, Enum):
    """xenc:EncryptedKey/xenc:EncryptionMethod/@Algorithm."""

    RSA_OAEP = "http://www.w3.org/2009/xmlenc11#rsa-oaep"


class MaskGenerationFunction(str, Enum):
    """xenc11:MGF/@Algorithm inside an RSA-OAEP EncryptionMethod."""

    MGF1_SHA256 = "http://www.w3.org/2009/xmlenc11#mgf1sha256"


# URIs we recognise but refuse on purpose, so the operator learns *why*.
_KNOWN_WEAK: dict[str, str] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "SHA-1 is broken for collision resistance",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": "RSA-SHA1 relies on broken SHA-1",
    "http://www.w3.org/2009/xmlenc11#mgf1sha1": "MGF1 with SHA-1 is not allowed",
    "http://www.w3.org/2001/04/xmlenc#rsa-1_5": (
        "RSA PKCS#1 v1.5 key transport is open to padding-oracle attacks"
    ),
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p": "RSA-OAEP with MGF1-SHA1 is not allowed",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc": "AES-CBC has no integrity protection",
    "http://www.w3.org/2001/04/xmlenc#aes192-cbc": "AES-CBC has no integrity protection",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc": "AES-CBC has no integrity protection",
    "http://www.w3.org/2001/04/xmlenc#tripledes-cbc": "3DES-CBC is obsolete",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (
        "inclusive canonicalization is not allowed (context-dependent, wrapping-prone)"
    ),
    "http://www.w3.org/TR/1999/REC-xpath-19991116": "XPath transforms are not allowed",
    "http://www.w3.org/TR/1999/REC-xslt-19991116": "XSLT transforms are not allowed",
}

E = TypeVar("E", bound=Enum)


def require(kind: type[E], uri: str | None, allowed: E | frozenset[E], role: str) -> E:
    """Map ``uri`` to a member of ``kind`` and insist it is (one of) ``allowed``.

    ``role`` names the place in the message ("signature method", "digest method of
    reference #id-1", ...) so the error tells the operator where to look.
    Raises :class:`AlgorithmNotAllowed` for a missing, unknown or disallowed URI.
    """
    allowed_set = allowed if isinstance(allowed, frozenset) else frozenset({allowed})
    expected = ", ".join(sorted(str(m.value) for m in allowed_set))
    if not uri:
        raise AlgorithmNotAllowed(f"{role}: no algorithm given; the policy requires {expected}")
    if uri in _KNOWN_WEAK:
        raise AlgorithmNotAllowed(
            f"{role}: algorithm {uri} is refused ({_KNOWN_WEAK[uri]}); "
            f"the policy requires {expected}"
        )
    try:
        member = kind(uri)
    except ValueError:
        raise AlgorithmNotAllowed(
            f"{role}: algorithm {uri} is not supported; the policy requires {expected}"
        ) from None
    if member not in allowed_set:
        raise AlgorithmNotAllowed(
            f"{role}: algorithm {uri} is not permitted by the security policy; "
            f"the policy requires {expected}"
        )
    return member


@dataclass(frozen=True)
class SecurityPolicy:
    """Exactly one algorithm per role; what we produce and all we accept.

    A policy per partner (from its PMode) lets a future suite coexist with 1.15
    without any partner being able to downgrade another's messages.
    """

    signature_algorithm: SignatureAlgorithm
    digest_algorithm: DigestAlgorithm
    data_encryption_algorithm: DataEncryptionAlgorithm
    key_transport_algorithm: KeyTransportAlgorithm
    key_transport_digest: DigestAlgorithm
    mgf: MaskGenerationFunction
    canonicalization_algorithm: CanonicalizationAlgorithm = CanonicalizationAlgorithm.EXC_C14N
    name: str = "custom"


EDELIVERY_AS4_1_15 = SecurityPolicy(
    signature_algorithm=SignatureAlgorithm.RSA_SHA256,
    digest_algorithm=DigestAlgorithm.SHA256,
    data_encryption_algorithm=DataEncryptionAlgorithm.AES128_GCM,
    key_transport_algorithm=KeyTransportAlgorithm.RSA_OAEP,
    key_transport_digest=DigestAlgorithm.SHA256,
    mgf=MaskGenerationFunction.MGF1_SHA256,
    canonicalization_algorithm=CanonicalizationAlgorithm.EXC_C14N,
    name="eDelivery AS4 1.15",
)
