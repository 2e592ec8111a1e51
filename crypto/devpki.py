"""Generate a development/test PKI: one CA and, per party, TLS, signing and encryption keys.

Tests and the demo use this so that no hand-made key material lives in the repository.
Real deployments use certificates from their own PKI; this is for 127.0.0.1 only.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DIR = "ca"


@dataclass(frozen=True)
class PartyFiles:
    """Where one party's generated files live."""
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name


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


def _issue(subject: x509.Name, public_key, issuer_cert: x509.Certificate | None, issuer_key,
           *, ca: bool, usage: x509.KeyUsage, eku: list | None, san: list | None,
           days: int) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
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
    return builder.sign(issuer_key, hashes.SHA256())


def _usage(*, digital_signature=False, content_commitment=False, key_encipherment=False,
           key_cert_sign=False, crl_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=content_commitment,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=crl_sign,
                         encipher_only=False, decipher_only=False)


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


def ensure_party(root: Path, party: str, *, bits: int = 2048, days: int = 825) -> PartyFiles:
    """Create ``root/<party>/{tls,sign,enc}.{crt,key}`` signed by the dev CA, unless present.

    Three key pairs, because TLS, message signing and message encryption have different
    lifetimes and roll over separately in real deployments.
    """
    ca_cert, ca_key = ensure_ca(root)
    files = PartyFiles(root / party)
    files.directory.mkdir(parents=True, exist_ok=True)
    specs = {
        "tls": (_usage(digital_signature=True, key_encipherment=True),
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        "sign": (_usage(digital_signature=True, content_commitment=True), None, None),
        "enc": (_usage(key_encipherment=True), None, None),
    }
    for kind, (usage, eku, san) in specs.items():
        crt, key_path = files.path(f"{kind}.crt"), files.path(f"{kind}.key")
        if crt.exists() and key_path.exists():
            continue
        key = _new_key(bits)
        cert = _issue(_name(f"{party} {kind}", party), key.public_key(), ca_cert, ca_key, ca=False,
                      usage=usage, eku=eku, san=san, days=days)
        _write_key(key_path, key)
        _write_cert(crt, cert)
    return files
