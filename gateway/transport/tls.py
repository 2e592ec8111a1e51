"""TLS settings for every listener (mutual TLS) and the AS4 client (presenting our certificate).

Both sides speak TLS 1.2 or newer, and on TLS 1.2 only ECDHE key exchange with an AEAD cipher
(AES-GCM, ChaCha20-Poly1305), as BSI TR-02102-2 and the eDelivery TLS guidance recommend:
no CBC suites (LUCKY13 and its kin), no static-RSA key exchange (no forward secrecy). TLS 1.3
suites are all AEAD already and stay OpenSSL's default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import ssl
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from crypto.keys import load_certificates, load_private_key
from crypto.tlspolicy import TLS12_CIPHERS


def _twisted_cert(cert: x509.Certificate) -> ssl.Certificate:
    return ssl.Certificate.loadPEM(cert.public_bytes(serialization.Encoding.PEM))


_ACCEPTABLE_CIPHERS = ssl.AcceptableCiphers.fromOpenSSLCipherString(TLS12_CIPHERS)
#: CertificateOptions shared by the listeners and the client: the version floor and the ciphers.
_TLS_POLICY = dict(raiseMinimumTo=ssl.TLSVersion.TLSv1_2, acceptableCiphers=_ACCEPTABLE_CIPHERS)


def private_certificate(key_path: Path, cert_path: Path) -> ssl.PrivateCertificate:
    key = load_private_key(key_path)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = load_certificates(cert_path)[0].public_bytes(serialization.Encoding.PEM)
    return ssl.PrivateCertificate.loadPEM(key_pem + cert_pem)


def server_options(cert: Path, key: Path, client_ca: Path | None) -> ssl.CertificateOptions:
    """Mutual TLS: a partner that presents no certificate from a trusted CA is refused at handshake,
    and so is a client offering no TLS 1.2+ AEAD suite (see :data:`TLS12_CIPHERS`)."""
    own = private_certificate(key, cert)
    kwargs = dict(privateKey=own.privateKey.original, certificate=own.original, **_TLS_POLICY)
    if client_ca is not None:
        kwargs.update(verify=True, requireCertificate=True,
                      caCerts=[_twisted_cert(c).original for c in load_certificates(client_ca)])
    return ssl.CertificateOptions(**kwargs)


@implementer(IPolicyForHTTPS)
class PartnerTLSPolicy:
    """Client TLS for one partner: trust only its configured anchors (the system's when it has
    none), present our certificate, and offer only the suites our listeners accept."""

    def __init__(self, trust: Sequence[x509.Certificate], client_cert: ssl.PrivateCertificate | None):
        self.trust = ssl.trustRootFromCertificates([_twisted_cert(c) for c in trust]) if trust else None
        self.client_cert = client_cert

    def creatorForNetloc(self, hostname: bytes, port: int):
        # trustRoot=None is the platform's trust store, as BrowserLikePolicyForHTTPS would use.
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self.trust,
                                       clientCertificate=self.client_cert,
                                       extraCertificateOptions=dict(_TLS_POLICY))
