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
from cryptography.hazmat.primitives.serialization import pkcs12


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


def load_private_key(path: str | Path, password: bytes | None = None):
    """Load a PEM private key, or the key of a PKCS#12 bundle (``.p12``/``.pfx``)."""
    path = Path(path)
    check_private_file_mode(path)
    data = _read(path, "private key")
    try:
        if path.suffix.lower() in (".p12", ".pfx"):
            key, _cert, _extra = pkcs12.load_key_and_certificates(data, password)
            if key is None:
                raise ValueError("bundle holds no private key")
            return key
        return serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"private key file {path} is not a usable PEM or PKCS#12 key: {exc}") from None


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
