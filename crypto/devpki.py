"""Generate a development/test PKI: one CA and, per party, TLS, signing and encryption keys.

Tests and the demo use this so that no hand-made key material lives in the repository.
Real deployments use certificates from their own PKI; this is for 127.0.0.1 only.

Layout under ``root``: ``ca/ca.{crt,key}`` (RSA CA) and ``ca/ca.crl`` once something is
revoked; per party ``tls``, ``sign`` and ``enc`` ``.crt``/``.key`` (RSA, the eDelivery
AS4 1.15 layout). The 2.0 suites add, beside them, ``sign-ed25519`` + ``enc-x25519``
(``key_type="ed25519"``) or ``sign-ec-p256`` + ``enc-ec-p256`` (``key_type="ec-p256"``),
so one party can talk 1.15 to one partner and 2.0 to another. TLS stays RSA.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DIR = "ca"
CRL_NAME = "ca.crl"

KeyType = Literal["rsa", "ed25519", "ec-p256"]
Kind = Literal["tls", "sign", "enc"]
# File stem per (kind, key type); RSA keeps the original names.
_STEMS: dict[tuple[str, str], str] = {
    ("sign", "ed25519"): "sign-ed25519", ("enc", "ed25519"): "enc-x25519",
    ("sign", "ec-p256"): "sign-ec-p256", ("enc", "ec-p256"): "enc-ec-p256",
}


def stem(kind: str, key_type: str = "rsa") -> str:
    """File name stem of a party's ``kind`` certificate/key for ``key_type``."""
    if key_type == "rsa" or kind == "tls":
        return kind
    try:
        return _STEMS[(kind, key_type)]
    except KeyError:
        raise ValueError(f"unknown key type {key_type!r} (rsa, ed25519, ec-p256)") from None


@dataclass(frozen=True)
class PartyFiles:
    """Where one party's generated files live."""
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def cert(self, kind: str, key_type: str = "rsa") -> Path:
        """e.g. ``cert("sign", "ed25519")`` -> ``<party>/sign-ed25519.crt``."""
        return self.directory / f"{stem(kind, key_type)}.crt"

    def key(self, kind: str, key_type: str = "rsa") -> Path:
        return self.directory / f"{stem(kind, key_type)}.key"


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_key(bits: int):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _new_typed_key(kind: str, key_type: str, bits: int):
    """Key pair for ``kind``: Ed25519 signs but cannot agree keys, so the EdDSA suite's
    encryption key is X25519 (which cannot sign, not even its own certificate: the CA
    issues it from the public key alone, as CertificateBuilder allows)."""
    if key_type == "rsa" or kind == "tls":
        return _new_key(bits)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate() if kind == "sign" else (
            x25519.X25519PrivateKey.generate())
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r} (rsa, ed25519, ec-p256)")


def _issue(subject: x509.Name, public_key, issuer_cert: x509.Certificate | None, issuer_key,
           *, ca: bool, usage: x509.KeyUsage, eku: list | None, san: list | None,
           days: int, not_before: dt.datetime | None = None) -> x509.Certificate:
    now = not_before or dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(usage, critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def _hash_for(issuer_key):
    # EdDSA signs the message itself; cryptography wants no hash for it.
    return None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _usage(*, digital_signature=False, content_commitment=False, key_encipherment=False,
           key_agreement=False, key_cert_sign=False, crl_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=content_commitment,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=key_agreement, key_cert_sign=key_cert_sign, crl_sign=crl_sign,
                         encipher_only=False, decipher_only=False)


def _spec(kind: str, key_type: str) -> tuple[x509.KeyUsage, list | None, list | None]:
    """Key usage, EKU and SAN per certificate kind (enc: keyAgreement for X25519/EC)."""
    if kind == "tls":
        return (_usage(digital_signature=True, key_encipherment=True),
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    if kind == "sign":
        return _usage(digital_signature=True, content_commitment=True), None, None
    if kind == "enc":
        if key_type == "rsa":
            return _usage(key_encipherment=True), None, None
        return _usage(key_agreement=True), None, None
    raise ValueError(f"unknown certificate kind {kind!r} (tls, sign, enc)")


def ensure_ca(root: Path, *, bits: int = 2048, days: int = 3650) -> tuple[x509.Certificate, object]:
    """Create the dev CA under ``root/ca`` unless it exists; return its certificate and key."""
    from crypto.keys import load_certificate, load_private_key

    ca_dir = root / CA_DIR
    cert_path, key_path = ca_dir / "ca.crt", ca_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        return load_certificate(cert_path), load_private_key(key_path)
    ca_dir.mkdir(parents=True, exist_ok=True)
    key = _new_key(bits)
    name = _name("Single Window Gateway Dev CA", "swgw development PKI")
    cert = _issue(name, key.public_key(), None, key, ca=True,
                  usage=_usage(key_cert_sign=True, crl_sign=True, digital_signature=True),
                  eku=None, san=None, days=days)
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def ensure_party(root: Path, party: str, *, bits: int = 2048, days: int = 825,
                 key_type: KeyType = "rsa") -> PartyFiles:
    """Create a party's TLS, signing and encryption key pairs signed by the dev CA, unless present.

    Three key pairs, because TLS, message signing and message encryption have different
    lifetimes and roll over separately in real deployments. ``key_type`` picks the
    signing/encryption suite (see the module docstring for file names); the default
    ``"rsa"`` gives the original ``{tls,sign,enc}.{crt,key}`` layout.
    """
    stem("sign", key_type)  # unknown key type: fail before writing anything
    ca_cert, ca_key = ensure_ca(root)
    files = PartyFiles(root / party)
    files.directory.mkdir(parents=True, exist_ok=True)
    for kind in ("tls", "sign", "enc"):
        crt, key_path = files.cert(kind, key_type), files.key(kind, key_type)
        if crt.exists() and key_path.exists():
            continue
        key = _new_typed_key(kind, key_type, bits)
        usage, eku, san = _spec(kind, key_type)
        cert = _issue(_name(f"{party} {stem(kind, key_type)}", party), key.public_key(), ca_cert,
                      ca_key, ca=False, usage=usage, eku=eku, san=san, days=days)
        _write_key(key_path, key)
        _write_cert(crt, cert)
    return files


def issue_certificate(root: Path, party: str, name: str, *, kind: Kind = "sign",
                      key_type: KeyType = "rsa", not_before: dt.datetime | None = None,
                      days: int = 825, bits: int = 2048) -> tuple[Path, Path]:
    """Issue an extra ``<party>/<name>.{crt,key}`` from the dev CA (always new).

    For tests that need a second signing certificate (rollover) or an odd validity
    window; returns (certificate path, key path).
    """
    ca_cert, ca_key = ensure_ca(root)
    files = PartyFiles(root / party)
    files.directory.mkdir(parents=True, exist_ok=True)
    key = _new_typed_key(kind, key_type, bits)
    usage, eku, san = _spec(kind, key_type)
    cert = _issue(_name(f"{party} {name}", party), key.public_key(), ca_cert, ca_key, ca=False,
                  usage=usage, eku=eku, san=san, days=days, not_before=not_before)
    crt, key_path = files.path(f"{name}.crt"), files.path(f"{name}.key")
    _write_key(key_path, key)
    _write_cert(crt, cert)
    return crt, key_path


def issue_expired(root: Path, party: str, *, kind: Kind = "sign",
                  key_type: KeyType = "rsa") -> tuple[Path, Path]:
    """``<party>/<stem>-expired.{crt,key}``: valid for one day, ended a year ago."""
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=366)
    return issue_certificate(root, party, f"{stem(kind, key_type)}-expired", kind=kind,
                             key_type=key_type, not_before=start, days=1)


def revoke(root: Path, party: str, kind: str, *, key_type: str = "rsa",
           days_valid: int = 7) -> Path:
    """Revoke the party's ``kind`` certificate and (re)write ``ca/ca.crl`` (PEM).

    ``kind`` is a stem (``"sign"``, ``"enc"``, ``"tls"``, or a name given to
    :func:`issue_certificate`); earlier revocations in the CRL are kept.
    """
    from crypto.keys import load_certificate

    ca_cert, ca_key = ensure_ca(root)
    files = PartyFiles(root / party)
    path = files.cert(kind, key_type) if kind in ("tls", "sign", "enc") else files.path(f"{kind}.crt")
    cert = load_certificate(path)
    crl_path = root / CA_DIR / CRL_NAME
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject)
               .last_update(now)
               .next_update(now + dt.timedelta(days=days_valid)))
    serials = set()
    if crl_path.exists():
        for entry in x509.load_pem_x509_crl(crl_path.read_bytes()):
            serials.add(entry.serial_number)
            builder = builder.add_revoked_certificate(entry)
    if cert.serial_number not in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(now).build())
    crl = builder.sign(ca_key, _hash_for(ca_key))
    tmp = crl_path.with_suffix(".crl.tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, crl_path)
    return crl_path
