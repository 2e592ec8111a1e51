"""The cryptographic primitives behind each algorithm URI, on `cryptography`.

The only module that maps enum members to actual operations, so adding a suite
means adding entries here and nowhere else. Callers have already checked the URIs
against the policy; these functions trust their enum arguments and validate keys
(type *and* curve: an algorithm never silently runs with the wrong kind of key) and
lengths. Signing and verifying dispatch on the key type the algorithm demands.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from crypto.algorithms import (
    DataEncryptionAlgorithm,
    DigestAlgorithm,
    KeyAgreementAlgorithm,
    KeyTransportAlgorithm,
    KeyWrapAlgorithm,
    MaskGenerationFunction,
    PseudoRandomFunction,
    SignatureAlgorithm,
)
from crypto import content
from crypto.content import FileContent, Octets
from crypto.errors import AlgorithmNotAllowed, DecryptionError

_HASHLIB_NAME = {DigestAlgorithm.SHA256: "sha256"}
_HASHES = {DigestAlgorithm.SHA256: hashes.SHA256}
_SIG_HASH = {SignatureAlgorithm.RSA_SHA256: hashes.SHA256,
             SignatureAlgorithm.ECDSA_SHA256: hashes.SHA256}
# XML-DSig 1.1 ECDSA: the SignatureValue is r || s, each left-padded to the curve size
# (not the DER SEQUENCE that OpenSSL produces).
_ECDSA_CURVE = {SignatureAlgorithm.ECDSA_SHA256: ec.SECP256R1}
_EC_AGREEMENT_CURVE = ec.SECP256R1
_PRF_HASH = {PseudoRandomFunction.HMAC_SHA256: hashes.SHA256}
_KW_KEY_BYTES = {KeyWrapAlgorithm.KW_AES128: 16}
_MGF_HASH = {MaskGenerationFunction.MGF1_SHA256: hashes.SHA256}
_AES_GCM_KEY_BYTES = {DataEncryptionAlgorithm.AES128_GCM: 16}

GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16


def digest(algorithm: DigestAlgorithm, data: Octets) -> bytes:
    """Message digest of ``data`` (read in chunks when it is a file)."""
    return content.digest(data, _HASHLIB_NAME[algorithm])


def _curve_ok(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
              curve: type[ec.EllipticCurve]) -> bool:
    return isinstance(key.curve, curve)


def describe_key(key: object) -> str:
    """Key type for error messages ("RSAPrivateKey", "EC secp384r1", ...)."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"EC {key.curve.name}"
    return type(key).__name__.lstrip("_")


def _key_mismatch(algorithm: SignatureAlgorithm, key: object, what: str) -> AlgorithmNotAllowed:
    needs = {
        SignatureAlgorithm.RSA_SHA256: "an RSA",
        SignatureAlgorithm.ED25519: "an Ed25519",
        SignatureAlgorithm.ECDSA_SHA256: "an EC P-256",
    }[algorithm]
    return AlgorithmNotAllowed(
        f"signature algorithm {algorithm.value} needs {needs} {what}, got {describe_key(key)}"
    )


def check_signing_key(algorithm: SignatureAlgorithm, private_key: PrivateKeyTypes) -> None:
    """AlgorithmNotAllowed unless ``private_key`` is of the type (and curve) the
    algorithm signs with; lets callers fail before they modify anything."""
    ok = {
        SignatureAlgorithm.RSA_SHA256: lambda k: isinstance(k, rsa.RSAPrivateKey),
        SignatureAlgorithm.ED25519: lambda k: isinstance(k, ed25519.Ed25519PrivateKey),
        SignatureAlgorithm.ECDSA_SHA256: lambda k: isinstance(k, ec.EllipticCurvePrivateKey)
        and _curve_ok(k, _ECDSA_CURVE[SignatureAlgorithm.ECDSA_SHA256]),
    }[algorithm](private_key)
    if not ok:
        raise _key_mismatch(algorithm, private_key, "private key")


def sign(algorithm: SignatureAlgorithm, private_key: PrivateKeyTypes, data: bytes) -> bytes:
    """Signature over ``data`` in XML-DSig encoding (RSA: PKCS#1 v1.5; Ed25519: the
    64-byte RFC 8032 signature; ECDSA: r || s)."""
    if algorithm is SignatureAlgorithm.RSA_SHA256:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise _key_mismatch(algorithm, private_key, "private key")
        return private_key.sign(data, padding.PKCS1v15(), _SIG_HASH[algorithm]())
    if algorithm is SignatureAlgorithm.ED25519:
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise _key_mismatch(algorithm, private_key, "private key")
        return private_key.sign(data)
    if algorithm is SignatureAlgorithm.ECDSA_SHA256:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not _curve_ok(
                private_key, _ECDSA_CURVE[algorithm]):
            raise _key_mismatch(algorithm, private_key, "private key")
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(_SIG_HASH[algorithm]())))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise AlgorithmNotAllowed(f"signature algorithm {algorithm.value} has no implementation")


def verify(
    algorithm: SignatureAlgorithm,
    public_key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
) -> bool:
    """True iff ``signature`` over ``data`` verifies with ``public_key``.

    A key of the wrong type or curve for ``algorithm`` is AlgorithmNotAllowed, not
    False: it is a configuration or suite mismatch the operator must see as such.
    """
    try:
        if algorithm is SignatureAlgorithm.RSA_SHA256:
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise _key_mismatch(algorithm, public_key, "certificate")
            public_key.verify(signature, data, padding.PKCS1v15(), _SIG_HASH[algorithm]())
            return True
        if algorithm is SignatureAlgorithm.ED25519:
            if not isinstance(public_key, ed25519.Ed25519PublicKey):
                raise _key_mismatch(algorithm, public_key, "certificate")
            public_key.verify(signature, data)
            return True
        if algorithm is SignatureAlgorithm.ECDSA_SHA256:
            if not isinstance(public_key, ec.EllipticCurvePublicKey) or not _curve_ok(
                    public_key, _ECDSA_CURVE[algorithm]):
                raise _key_mismatch(algorithm, public_key, "certificate")
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                       int.from_bytes(signature[size:], "big"))
            public_key.verify(der, data, ec.ECDSA(_SIG_HASH[algorithm]()))
            return True
    except InvalidSignature:
        return False
    raise AlgorithmNotAllowed(f"signature algorithm {algorithm.value} has no implementation")


def new_content_key(algorithm: DataEncryptionAlgorithm) -> bytes:
    """A fresh random symmetric key of the size the algorithm needs."""
    return os.urandom(_AES_GCM_KEY_BYTES[algorithm])


def encrypt_content(algorithm: DataEncryptionAlgorithm, key: bytes, plaintext: Octets) -> Octets:
    """XML Enc 1.1 AES-GCM octets: 12-byte random IV || ciphertext || 16-byte tag.

    A plaintext in a file is encrypted chunk by chunk into a spool file (same octets as
    the one-shot AEAD: GCM is a stream mode with the tag appended).
    """
    iv = os.urandom(GCM_IV_BYTES)
    if not isinstance(plaintext, FileContent):
        return iv + AESGCM(key).encrypt(iv, plaintext, None)
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    out = content.SpoolWriter(0)
    out.write(iv)
    for piece in plaintext.chunks():
        out.write(encryptor.update(piece))
    out.write(encryptor.finalize())
    out.write(encryptor.tag)
    return out.result()


def decrypt_content(algorithm: DataEncryptionAlgorithm, key: bytes, data: Octets) -> Octets:
    """Inverse of :func:`encrypt_content`; any failure is one opaque DecryptionError.

    A ciphertext in a file is decrypted into a spool file that is returned only after the
    tag verified: no unauthenticated plaintext leaves this function.
    """
    if len(key) != _AES_GCM_KEY_BYTES[algorithm] or len(data) < GCM_IV_BYTES + GCM_TAG_BYTES:
        raise DecryptionError("decryption failed")
    if not isinstance(data, FileContent):
        try:
            return AESGCM(key).decrypt(data[:GCM_IV_BYTES], data[GCM_IV_BYTES:], None)
        except InvalidTag:
            raise DecryptionError("decryption failed") from None
    body = data.length - GCM_IV_BYTES - GCM_TAG_BYTES
    iv, tag = data.read_at(0, GCM_IV_BYTES), data.read_at(data.length - GCM_TAG_BYTES, GCM_TAG_BYTES)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    out = content.SpoolWriter(content.SPOOL_THRESHOLD)
    for piece in data.sub(GCM_IV_BYTES, body).chunks():
        out.write(decryptor.update(piece))
    try:
        out.write(decryptor.finalize())
    except InvalidTag:
        raise DecryptionError("decryption failed") from None
    return out.result()


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


# --- eDelivery AS4 2.0: key agreement, HKDF, AES key wrap -------------------------


def _fits_agreement(algorithm: KeyAgreementAlgorithm, key: object) -> tuple[bool, str]:
    """Whether ``key`` (public or private) is of the kind ``algorithm`` agrees with."""
    if algorithm is KeyAgreementAlgorithm.X25519:
        return isinstance(key, (x25519.X25519PublicKey, x25519.X25519PrivateKey)), "an X25519"
    return (isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey))
            and _curve_ok(key, _EC_AGREEMENT_CURVE)), "an EC P-256"


def check_agreement_public_key(
    algorithm: KeyAgreementAlgorithm, public_key: object, whose: str
) -> None:
    """Insist that a recipient certificate's (or an ephemeral) key fits ``algorithm``."""
    ok, needs = _fits_agreement(algorithm, public_key)
    if not ok:
        raise AlgorithmNotAllowed(
            f"key agreement {algorithm.value} needs {needs} key for {whose}, "
            f"got {describe_key(public_key)}"
        )


def check_agreement_private_key(algorithm: KeyAgreementAlgorithm, private_key: object) -> None:
    """Insist that our decryption key fits ``algorithm`` (configuration error otherwise)."""
    ok, needs = _fits_agreement(algorithm, private_key)
    if not ok:
        raise AlgorithmNotAllowed(
            f"key agreement {algorithm.value} needs {needs} private key, "
            f"got {describe_key(private_key)}"
        )


def new_ephemeral_key(
    algorithm: KeyAgreementAlgorithm,
) -> x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey:
    """A fresh originator key pair: ephemeral-static agreement needs one per message."""
    if algorithm is KeyAgreementAlgorithm.X25519:
        return x25519.X25519PrivateKey.generate()
    return ec.generate_private_key(_EC_AGREEMENT_CURVE())


def agree(algorithm: KeyAgreementAlgorithm, private_key: object, peer_public_key: object) -> bytes:
    """The raw shared secret Z (X25519 output, or the ECDH x-coordinate).

    Raises ValueError for degenerate results (e.g. a small-order X25519 point, which
    OpenSSL reports as an all-zero secret) or mismatched keys.
    """
    check_agreement_private_key(algorithm, private_key)
    check_agreement_public_key(algorithm, peer_public_key, "the peer")
    if algorithm is KeyAgreementAlgorithm.X25519:
        return private_key.exchange(peer_public_key)  # type: ignore[union-attr,arg-type]
    return private_key.exchange(ec.ECDH(), peer_public_key)  # type: ignore[union-attr,call-arg]


def hkdf(prf: PseudoRandomFunction, secret: bytes, salt: bytes | None, info: bytes | None,
         length: int) -> bytes:
    """RFC 5869 HKDF (extract-then-expand); no salt means HashLen zero octets."""
    return HKDF(algorithm=_PRF_HASH[prf](), length=length, salt=salt or None,
                info=info or None).derive(secret)


def key_wrap_key_bytes(algorithm: KeyWrapAlgorithm) -> int:
    """Size of the key-encryption key the wrap algorithm needs (KW-AES128: 16)."""
    return _KW_KEY_BYTES[algorithm]


def wrap_with_kek(algorithm: KeyWrapAlgorithm, kek: bytes, key: bytes) -> bytes:
    """RFC 3394 AES key wrap of the content key under the derived KEK."""
    if len(kek) != _KW_KEY_BYTES[algorithm]:
        raise ValueError(f"{algorithm.value} needs a {_KW_KEY_BYTES[algorithm]}-byte KEK")
    return aes_key_wrap(kek, key)


def unwrap_with_kek(algorithm: KeyWrapAlgorithm, kek: bytes, wrapped: bytes) -> bytes | None:
    """Inverse of :func:`wrap_with_kek`; None on failure (the caller stays opaque)."""
    if len(kek) != _KW_KEY_BYTES[algorithm]:
        return None
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        return None
