"""TLS settings for the AS4 listener (mutual TLS) and the AS4 client (presenting our certificate)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import ssl
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from crypto.keys import load_certificates, load_private_key


def _twisted_cert(cert: x509.Certificate) -> ssl.Certificate:
    return ssl.Certificate.loadPEM(cert.public_bytes(serialization.Encoding.PEM))


def private_certificate(key_path: Path, cert_path: Path) -> ssl.PrivateCertificate:
    key = load_private_key(key_path)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = load_certificates(cert_path)[0].public_bytes(serialization.Encoding.PEM)
    return ssl.PrivateCertificate.loadPEM(key_pem + cert_pem)


def server_options(cert: Path, key: Path, client_ca: Path | None) -> ssl.CertificateOptions:
    """Mutual TLS: a partner that presents no certificate from a trusted CA is refused at handshake."""
    own = private_certificate(key, cert)
    kwargs = dict(privateKey=own.privateKey.original, certificate=own.original,
                  raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
    if client_ca is not None:
        kwargs.update(verify=True, requireCertificate=True,
                      caCerts=[_twisted_cert(c).original for c in load_certificates(client_ca)])
    return ssl.CertificateOptions(**kwargs)


@implementer(IPolicyForHTTPS)
class PartnerTLSPolicy:
    """Client TLS for one partner: trust only its configured anchors, present our certificate."""

    def __init__(self, trust: Sequence[x509.Certificate], client_cert: ssl.PrivateCertificate | None):
        self.trust = ssl.trustRootFromCertificates([_twisted_cert(c) for c in trust]) if trust else None
        self.client_cert = client_cert

    def creatorForNetloc(self, hostname: bytes, port: int):
        if self.trust is None and self.client_cert is None:
            return BrowserLikePolicyForHTTPS().creatorForNetloc(hostname, port)
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self.trust,
                                       clientCertificate=self.client_cert)
