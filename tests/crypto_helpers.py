"""Shared fixtures for the crypto tests: throwaway RSA, Ed25519, X25519 and EC P-256
keys, self-signed certificates and a minimal AS4 envelope. Nothing here touches disk.

The fixtures built from them (signer, recipient, ...) live in conftest.py.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID
from lxml import etree

from crypto.wssec_common import NS_EBMS, NS_SOAP12, Part


@dataclass(frozen=True)
class Identity:
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey | (
        ec.EllipticCurvePrivateKey)
    cert: x509.Certificate


def _new_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "x25519":
        return x25519.X25519PrivateKey.generate()
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(key_type)


def make_identity(common_name: str, key_type: str = "rsa") -> Identity:
    """Self-signed, except X25519 (it cannot sign): signed by a throwaway Ed25519 key."""
    key = _new_key(key_type)
    signing_key = ed25519.Ed25519PrivateKey.generate() if key_type == "x25519" else key
    digest = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Single Window"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signing_key, digest)
    )
    return Identity(key, cert)


ENVELOPE_XML = f"""\
<S12:Envelope xmlns:S12="{NS_SOAP12}" xmlns:eb="{NS_EBMS}">
  <S12:Header>
    <eb:Messaging S12:mustUnderstand="true">
      <eb:UserMessage>
        <eb:MessageInfo>
          <eb:Timestamp>2024-05-01T10:00:00Z</eb:Timestamp>
          <eb:MessageId>msg-1@sw.example</eb:MessageId>
        </eb:MessageInfo>
        <eb:PartyInfo>
          <eb:From><eb:PartyId>SW-XX</eb:PartyId><eb:Role>Sender</eb:Role></eb:From>
          <eb:To><eb:PartyId>SW-YY</eb:PartyId><eb:Role>Receiver</eb:Role></eb:To>
        </eb:PartyInfo>
        <eb:PayloadInfo>
          <eb:PartInfo href="cid:payload-1@sw.example"/>
          <eb:PartInfo href="cid:payload-2@sw.example"/>
        </eb:PayloadInfo>
      </eb:UserMessage>
    </eb:Messaging>
  </S12:Header>
  <S12:Body/>
</S12:Envelope>
"""


def make_envelope() -> etree._Element:
    return etree.fromstring(ENVELOPE_XML.encode())


def make_parts() -> list[Part]:
    return [
        Part("payload-1@sw.example", "application/gzip", bytes(range(256)) * 40),
        Part("payload-2@sw.example", "application/octet-stream", b"\x00manifest\r\n\xff" * 7),
    ]


def reparse(envelope: etree._Element) -> etree._Element:
    """Serialize and parse again, as the wire would."""
    return etree.fromstring(etree.tostring(envelope))
