"""Exceptions raised by the WS-Security layer.

One hierarchy so the gateway can map each failure to the right ebMS error code
(EBMS:0101 FailedAuthentication for signature problems, EBMS:0102
FailedDecryption, EBMS:0103 PolicyNoncompliance for algorithms) with a single
``except`` per class. Messages are written for a human operator: they say what is
wrong and, where it helps, what probably happened.
"""

from __future__ import annotations


class SecurityError(Exception):
    """Base class: the message failed a WS-Security check or cannot be processed."""


class SignatureError(SecurityError):
    """The signature is missing, malformed, invalid or does not cover what it must."""


class InvalidDigest(SignatureError):
    """A reference digest does not match: the referenced content was altered."""


class InvalidSignatureValue(SignatureError):
    """The SignatureValue does not verify over SignedInfo with the signer's key."""


class UntrustedSigner(SignatureError):
    """The signing certificate is not one the receiver trusts for this partner."""


class MissingSignature(SignatureError):
    """The message carries no ds:Signature where one is required."""


class IncompleteSignature(SignatureError):
    """The signature does not cover exactly what it must (or covers the wrong
    elements, as in a signature-wrapping attack)."""


class AlgorithmNotAllowed(SecurityError):
    """An algorithm URI is unknown or not permitted by the security policy."""


class DecryptionError(SecurityError):
    """Decryption failed. Deliberately opaque: the message never reveals whether the
    key transport or the content decryption failed, so it cannot serve as an oracle."""


class UntrustedCertificate(SecurityError):
    """A certificate does not validate against the configured trust anchors, CRLs and
    key usage for the purpose it is used for. The message names the exact reason
    (expired on DATE, revoked on DATE per CRL of ISSUER, ...) so the operator can act
    without reproducing the validation by hand."""


class SignerCertificateRejected(UntrustedSigner, UntrustedCertificate):
    """The signer's certificate failed path validation during signature verification.

    Both an :class:`UntrustedSigner` (so a pipeline mapping ``SignatureError`` to
    EBMS:0101 FailedAuthentication keeps working) and an :class:`UntrustedCertificate`
    (so code interested in PKI failures can catch those alone)."""
