"""The cryptographic primitives behind each algorithm URI, on `cryptography`.

The only module that maps enum members to actual operations, so adding a suite
(EdDSA, X25519 key agreement) means adding entries here and nowhere else. Callers
have already checked the URIs against the policy; these functions trust their
enum arguments and validate keys and lengths.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.algorithms import (
    DataEncryptionAlgorithm,
    DigestAlgorithm,
    KeyTransportAlgorithm,
    MaskGenerationFunction,
    SignatureAlgorithm,
)
from crypto.errors import AlgorithmNotAllowed, DecryptionError

_HASHLIB_NAME = {DigestAlgorithm.SHA256: "sha256"}
_HASHES = {DigestAlgorithm.SHA256: hashes.SHA256}
_SIG_HASH = {SignatureAlgorithm.RSA_SHA256: hashes.SHA256}
_MGF_HASH = {MaskGenerationFunction.MGF1_SHA256: hashes.SHA256}
_AES_GCM_KEY_BYTES = {DataEncryptionAlgorithm.AES128_GCM: 16}

GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16


def digest(algorithm: DigestAlgorithm, data: bytes) -> bytes:
    """Message digest of ``data``."""
    return hashlib.new(_HASHLIB_NAME[algorithm], data).digest()


def sign(algorithm: SignatureAlgorithm, private_key: PrivateKeyTypes, data: bytes) -> bytes:
    """Signature over ``data`` (for RSA: PKCS#1 v1.5, as XML-DSig rsa-sha* means)."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise AlgorithmNotAllowed(
            f"signature algorithm {algorithm.value} needs an RSA private key, "
            f"got {type(private_key).__name__}"
        )
    return private_key.sign(data, padding.PKCS1v15(), _SIG_HASH[algorithm]())


def verify(
    algorithm: SignatureAlgorithm,
    public_key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
) -> bool:
    """True iff ``signature`` over ``data`` verifies with ``public_key``."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise AlgorithmNotAllowed(
            f"signature algorithm {algorithm.value} needs an RSA certificate, "
            f"the signer's key is {type(public_key).__name__}"
        )
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), _SIG_HASH[algorithm]())
    except InvalidSignature:
        return False
    return True


def new_content_key(algorithm: DataEncryptionAlgorithm) -> bytes:
    """A fresh random symmetric key of the size the algorithm needs."""
    return os.urandom(_AES_GCM_KEY_BYTES[algorithm])


def encrypt_content(algorithm: DataEncryptionAlgorithm, key: bytes, plaintext: bytes) -> bytes:
    """XML Enc 1.1 AES-GCM octets: 12-byte random IV || ciphertext || 16-byte tag."""
    iv = os.urandom(GCM_IV_BYTES)
    return iv + AESGCM(key).encrypt(iv, plaintext, None)


def decrypt_content(algorithm: DataEncryptionAlgorithm, key: bytes, data: bytes) -> bytes:
    """Inverse of :func:`encrypt_content`; any failure is one opaque DecryptionError."""
    if len(key) != _AES_GCM_KEY_BYTES[algorithm] or len(data) < GCM_IV_BYTES + GCM_TAG_BYTES:
        raise DecryptionError("decryption failed")
    try:
        return AESGCM(key).decrypt(data[:GCM_IV_BYTES], data[GCM_IV_BYTES:], None)
    except InvalidTag:
        raise DecryptionError("decryption failed") from None


def _oaep(
    digest_alg: DigestAlgorithm, mgf: MaskGenerationFunction, label: bytes | None
) -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=_MGF_HASH[mgf]()),
        algorithm=_HASHES[digest_alg](),
        label=label or None,
    )


def wrap_key(
    algorithm: KeyTransportAlgorithm,
    digest_alg: DigestAlgorithm,
    mgf: MaskGenerationFunction,
    public_key: CertificatePublicKeyTypes,
    key: bytes,
) -> bytes:
    """Key transport: encrypt the content key for the recipient (RSA-OAEP)."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise AlgorithmNotAllowed(
            f"key transport {algorithm.value} needs an RSA recipient certificate, "
            f"got {type(public_key).__name__}"
        )
    return public_key.encrypt(key, _oaep(digest_alg, mgf, None))


def unwrap_key(
    algorithm: KeyTransportAlgorithm,
    digest_alg: DigestAlgorithm,
    mgf: MaskGenerationFunction,
    private_key: PrivateKeyTypes,
    wrapped: bytes,
    label: bytes | None = None,
) -> bytes | None:
    """Decrypt a transported key; None on failure (caller keeps failures opaque)."""
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise AlgorithmNotAllowed(
            f"key transport {algorithm.value} needs an RSA private key, "
            f"got {type(private_key).__name__}"
        )
    try:
        return private_key.decrypt(wrapped, _oaep(digest_alg, mgf, label))
    except ValueError:
        return None
