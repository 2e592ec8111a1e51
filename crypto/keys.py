"""Loading the gateway's keys and certificates from files.

Private keys are secrets: a key file that other users can read is refused, because a
customs authority's signing key leaking through a lax ``chmod`` is exactly the kind of
incident an operator wants to hear about at start-up rather than in an audit.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.serialization import pkcs12

PrivateKey = (rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
              | ec.EllipticCurvePrivateKey)
"""Key types some suite uses: RSA (1.15), Ed25519 + X25519 (2.0 EdDSA), EC P-256 (2.0 ECDSA)."""
_SUPPORTED = (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey, x25519.X25519PrivateKey,
              ec.EllipticCurvePrivateKey)


class KeyFileError(ValueError):
    """A key or certificate file is missing, unreadable, malformed or too open."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} file {path} does not exist (run `swgw pki init` for a dev PKI, "
                           f"or fix the path in the config)") from None
    except OSError as exc:
        raise KeyFileError(f"{what} file {path} cannot be read: {exc.strerror}") from None


def check_private_file_mode(path: Path) -> None:
    """Refuse key files readable or writable by group/others (like ssh does)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise KeyFileError(f"private key file {path} does not exist (run `swgw pki init` for a dev PKI, "
                           f"or fix the path in the config)") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key file {path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {path}`")


def load_private_key(path: str | Path, password: bytes | None = None) -> PrivateKey:
    """Load a private key: PEM or DER (PKCS#8, or the traditional RSA/EC forms), or the key
    of a PKCS#12 bundle (``.p12``/``.pfx``). RSA, Ed25519, X25519 and EC keys are accepted;
    other types (DSA, Ed448, ...) are refused here, at start-up, rather than at first use.
    The EC curve is not restricted here (a TLS key may be P-384); the suites check it."""
    path = Path(path)
    check_private_file_mode(path)
    data = _read(path, "private key")
    try:
        if path.suffix.lower() in (".p12", ".pfx"):
            key, _cert, _extra = pkcs12.load_key_and_certificates(data, password)
            if key is None:
                raise ValueError("bundle holds no private key")
        elif data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"private key file {path} is not a usable PEM, DER or PKCS#12 key: "
                           f"{exc}") from None
    if not isinstance(key, _SUPPORTED):
        raise KeyFileError(f"private key file {path} holds a {type(key).__name__.lstrip('_')}; "
                           "supported are RSA, Ed25519, X25519 and EC keys")
    return key


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Load every certificate in a PEM file (a chain or a bundle of anchors)."""
    path = Path(path)
    data = _read(path, "certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyFileError(f"certificate file {path} holds no valid PEM certificate: {exc}") from None
    return certs


def load_certificate(path: str | Path) -> x509.Certificate:
    """Load the first certificate of a PEM file (the leaf when it holds a chain)."""
    return load_certificates(path)[0]
