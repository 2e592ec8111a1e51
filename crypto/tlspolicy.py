"""The one TLS policy for every connection the gateway makes or takes: TLS 1.2 or newer, and
on TLS 1.2 only ECDHE key exchange with an AEAD cipher (AES-GCM, ChaCha20-Poly1305), as BSI
TR-02102-2 and the eDelivery TLS guidance recommend. TLS 1.3 suites are all AEAD already.

Here rather than in the transport so that CRL and time-stamp fetches (plain ``urllib``, in
``partners`` and the evidence code) use the same policy as the AS4 listener and client.
"""
from __future__ import annotations

import ssl

#: OpenSSL cipher string for TLS 1.2 (it does not touch TLS 1.3's suites).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def https_context() -> ssl.SSLContext:
    """A client context for ``urllib`` (system trust store, hostname checked) under the policy."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    return context
