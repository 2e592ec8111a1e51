"""Does a key or certificate fit a suite? Asked at configuration load, not per message.

A gateway that signs a 2.0 partner's messages with its RSA key, or a partner folder that
names an RSA encryption certificate for an X25519 PMode, fails every message; checking
this when the config is read turns hours of failed retries into one clear start-up error.
"""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from crypto import wssec_primitives as primitives
from crypto.algorithms import SecurityPolicy, SignatureAlgorithm
from crypto.errors import AlgorithmNotAllowed


def _kind(policy: SecurityPolicy) -> str:
    return policy.name


def check_signing_key(policy: SecurityPolicy, private_key: object) -> None:
    """AlgorithmNotAllowed unless ``private_key`` signs with the suite's algorithm."""
    try:
        primitives.check_signing_key(policy.signature_algorithm, private_key)  # type: ignore[arg-type]
    except AlgorithmNotAllowed as exc:
        raise AlgorithmNotAllowed(f"{_kind(policy)}: {exc}") from None


def check_signer_certificate(policy: SecurityPolicy, certificate: x509.Certificate) -> None:
    """AlgorithmNotAllowed unless the certificate's key verifies the suite's signatures."""
    key = certificate.public_key()
    fits = {
        SignatureAlgorithm.RSA_SHA256: isinstance(key, rsa.RSAPublicKey),
        SignatureAlgorithm.ED25519: isinstance(key, ed25519.Ed25519PublicKey),
        SignatureAlgorithm.ECDSA_SHA256: isinstance(key, ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP256R1),
    }[policy.signature_algorithm]
    if not fits:
        needs = {SignatureAlgorithm.RSA_SHA256: "an RSA", SignatureAlgorithm.ED25519: "an Ed25519",
                 SignatureAlgorithm.ECDSA_SHA256: "an EC P-256"}[policy.signature_algorithm]
        raise AlgorithmNotAllowed(f"{_kind(policy)} signatures need {needs} certificate, "
                                  f"got {primitives.describe_key(key)}")


def _check_encryption_key(policy: SecurityPolicy, key: object, rsa_type: type, agreement_check, what: str) -> None:
    """One rule for both ends of encryption: key agreement suites need the agreement curve,
    RSA-OAEP key transport needs RSA; ``agreement_check`` raises for the agreement case."""
    if policy.uses_key_agreement:
        assert policy.key_agreement is not None
        try:
            agreement_check(policy.key_agreement, key)
        except AlgorithmNotAllowed as exc:
            raise AlgorithmNotAllowed(f"{_kind(policy)}: {exc}") from None
    elif not isinstance(key, rsa_type):
        raise AlgorithmNotAllowed(f"{_kind(policy)}: RSA-OAEP key transport needs an RSA {what}, "
                                  f"got {primitives.describe_key(key)}")


def check_decryption_key(policy: SecurityPolicy, private_key: object) -> None:
    """AlgorithmNotAllowed unless ``private_key`` can decrypt what the suite encrypts."""
    _check_encryption_key(policy, private_key, rsa.RSAPrivateKey, primitives.check_agreement_private_key,
                          "private key")


def check_recipient_certificate(policy: SecurityPolicy, certificate: x509.Certificate) -> None:
    """AlgorithmNotAllowed unless we can encrypt for ``certificate`` under the suite."""
    _check_encryption_key(
        policy, certificate.public_key(), rsa.RSAPublicKey,
        lambda algorithm, key: primitives.check_agreement_public_key(algorithm, key, "the recipient certificate"),
        "recipient certificate")


def same_key(private_key: object, certificate: x509.Certificate) -> bool:
    """True when ``certificate`` certifies ``private_key`` (catches swapped files)."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        ours = private_key.public_key().public_bytes(*spki)  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
    return ours == certificate.public_key().public_bytes(*spki)
