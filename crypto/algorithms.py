"""Algorithm identifiers (URI-valued enums) and the security policy that picks them.

Every algorithm URI read from a message goes through :func:`require` before any
cryptography happens, so a message can never choose a weaker algorithm than the
policy (the classic downgrade to SHA-1, RSA-1.5 or CBC). The enums are the
allowlist of what the code can do at all; a :class:`SecurityPolicy` narrows that to
exactly one algorithm per role. A suite is a policy instance; :data:`SUITES` names
the eDelivery AS4 1.15 suite (RSA) and the two eDelivery AS4 2.0 suites (EdDSA with
X25519 key agreement, ECDSA with ECDH-ES on P-256), so a PMode selects one by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from crypto.errors import AlgorithmNotAllowed


class SignatureAlgorithm(str, Enum):
    """ds:SignatureMethod/@Algorithm."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ED25519 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"


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


class KeyAgreementAlgorithm(str, Enum):
    """xenc:AgreementMethod/@Algorithm (eDelivery AS4 2.0: ephemeral-static agreement)."""

    X25519 = "http://www.w3.org/2021/04/xmldsig-more#x25519"
    ECDH_ES = "http://www.w3.org/2009/xmlenc11#ECDH-ES"


class KeyDerivationAlgorithm(str, Enum):
    """xenc11:KeyDerivationMethod/@Algorithm (RFC 9231 HKDF)."""

    HKDF = "http://www.w3.org/2021/04/xmldsig-more#hkdf"


class PseudoRandomFunction(str, Enum):
    """dsig-more:HKDFParams/dsig-more:PRF/@Algorithm."""

    HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"


class KeyWrapAlgorithm(str, Enum):
    """xenc:EncryptedKey/xenc:EncryptionMethod/@Algorithm when the key-encryption key
    comes from key agreement (RFC 3394 AES key wrap)."""

    KW_AES128 = "http://www.w3.org/2001/04/xmlenc#kw-aes128"


_ALGORITHM_ENUMS: tuple[type[Enum], ...] = (
    SignatureAlgorithm, DigestAlgorithm, CanonicalizationAlgorithm, TransformAlgorithm,
    DataEncryptionAlgorithm, KeyTransportAlgorithm, MaskGenerationFunction,
    KeyAgreementAlgorithm, KeyDerivationAlgorithm, PseudoRandomFunction, KeyWrapAlgorithm,
)
# Every URI some suite uses. A URI that is known but of another role or another suite
# (rsa-sha256 under the EdDSA policy, kw-aes128 under 1.15) is reported as "not
# permitted by the security policy" rather than "not supported": it is a downgrade or
# suite mix-up, and the operator should hear it that way.
_KNOWN_URIS: frozenset[str] = frozenset(str(m.value) for e in _ALGORITHM_ENUMS for m in e)


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
        if uri in _KNOWN_URIS:
            raise AlgorithmNotAllowed(
                f"{role}: algorithm {uri} is not permitted by the security policy; "
                f"the policy requires {expected}"
            ) from None
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

    A policy per partner (from its PMode) lets several suites coexist without any
    partner being able to downgrade another's messages. The content key reaches the
    recipient in one of two ways, and a policy fixes which:

    * key transport (eDelivery AS4 1.15): ``key_transport_algorithm`` (RSA-OAEP) with
      ``key_transport_digest`` and ``mgf``;
    * key agreement (eDelivery AS4 2.0): ``key_agreement`` (X25519 or ECDH-ES) ->
      ``key_derivation`` (HKDF with ``kdf_prf``) -> ``key_wrap`` (AES key wrap).

    The transport fields keep their place (and the 1.15 positional constructor keeps
    working); they default to None for agreement suites.
    """

    signature_algorithm: SignatureAlgorithm
    digest_algorithm: DigestAlgorithm
    data_encryption_algorithm: DataEncryptionAlgorithm
    key_transport_algorithm: KeyTransportAlgorithm | None = None
    key_transport_digest: DigestAlgorithm | None = None
    mgf: MaskGenerationFunction | None = None
    canonicalization_algorithm: CanonicalizationAlgorithm = CanonicalizationAlgorithm.EXC_C14N
    name: str = "custom"
    key_agreement: KeyAgreementAlgorithm | None = None
    key_derivation: KeyDerivationAlgorithm | None = None
    kdf_prf: PseudoRandomFunction | None = None
    key_wrap: KeyWrapAlgorithm | None = None

    def __post_init__(self) -> None:
        transport = (self.key_transport_algorithm, self.key_transport_digest, self.mgf)
        agreement = (self.key_agreement, self.key_derivation, self.kdf_prf, self.key_wrap)
        has_transport = all(v is not None for v in transport)
        has_agreement = all(v is not None for v in agreement)
        partial = (any(v is not None for v in transport) and not has_transport) or (
            any(v is not None for v in agreement) and not has_agreement)
        if partial or has_transport == has_agreement:
            raise ValueError(
                f"security policy {self.name!r} must set either all key transport fields "
                "(key_transport_algorithm, key_transport_digest, mgf) or all key agreement "
                "fields (key_agreement, key_derivation, kdf_prf, key_wrap), not both or neither"
            )

    @property
    def uses_key_agreement(self) -> bool:
        """True for the eDelivery AS4 2.0 style (agreement + KDF + key wrap)."""
        return self.key_agreement is not None


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

EDELIVERY_AS4_2_0_EDDSA = SecurityPolicy(
    signature_algorithm=SignatureAlgorithm.ED25519,
    digest_algorithm=DigestAlgorithm.SHA256,
    data_encryption_algorithm=DataEncryptionAlgorithm.AES128_GCM,
    name="eDelivery AS4 2.0 (EdDSA/X25519)",
    key_agreement=KeyAgreementAlgorithm.X25519,
    key_derivation=KeyDerivationAlgorithm.HKDF,
    kdf_prf=PseudoRandomFunction.HMAC_SHA256,
    key_wrap=KeyWrapAlgorithm.KW_AES128,
)
"""eDelivery AS4 2.0 common usage profile: Ed25519 signatures, X25519 + HKDF + AES-128 KW."""

EDELIVERY_AS4_2_0_ECDSA = SecurityPolicy(
    signature_algorithm=SignatureAlgorithm.ECDSA_SHA256,
    digest_algorithm=DigestAlgorithm.SHA256,
    data_encryption_algorithm=DataEncryptionAlgorithm.AES128_GCM,
    name="eDelivery AS4 2.0 (ECDSA/ECDH-ES P-256)",
    key_agreement=KeyAgreementAlgorithm.ECDH_ES,
    key_derivation=KeyDerivationAlgorithm.HKDF,
    kdf_prf=PseudoRandomFunction.HMAC_SHA256,
    key_wrap=KeyWrapAlgorithm.KW_AES128,
)
"""eDelivery AS4 2.0 alternative EC profile: ECDSA P-256, ECDH-ES P-256 + HKDF + AES-128 KW."""

SUITES: dict[str, SecurityPolicy] = {
    "edelivery-as4-1.15": EDELIVERY_AS4_1_15,
    "edelivery-as4-2.0-eddsa": EDELIVERY_AS4_2_0_EDDSA,
    "edelivery-as4-2.0-ecdsa": EDELIVERY_AS4_2_0_ECDSA,
}
"""Algorithm suites by the name a PMode uses to select one."""


def suite(name: str) -> SecurityPolicy:
    """The suite called ``name`` in :data:`SUITES`; ValueError naming the valid ones
    (a typo in partner config should fail at load time with the list in front of you)."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(
            f"unknown security suite {name!r}; known suites: {', '.join(sorted(SUITES))}"
        ) from None
