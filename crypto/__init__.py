"""WS-Security for AS4: sign/verify, encrypt/decrypt, keys, trust. Pure functions over
bytes and lxml trees.

This module is the package's public surface; everything else is an implementation detail.
A partner's suite is ``SUITES[name]`` (or :func:`suite`), passed as ``policy`` to
sign/verify/encrypt/decrypt; its PKI is a :class:`TrustConfig` passed as ``trust``.
"""
from crypto.algorithms import (EDELIVERY_AS4_1_15, EDELIVERY_AS4_2_0_ECDSA, EDELIVERY_AS4_2_0_EDDSA,
                               SUITES, SecurityPolicy, suite)
from crypto.errors import (AlgorithmNotAllowed, DecryptionError, IncompleteSignature, InvalidDigest,
                           InvalidSignatureValue, MissingSignature, SecurityError, SignatureError,
                           SignerCertificateRejected, UntrustedCertificate, UntrustedSigner)
from crypto.suitekeys import (check_decryption_key, check_recipient_certificate, check_signer_certificate,
                              check_signing_key, same_key)
from crypto.trust import CrlCache, CrlLoadError, TrustConfig, load_crl, validate_certificate
from crypto.wssec_common import Part
from crypto.wssec_decrypt import decrypt_parts
from crypto.wssec_encrypt import encrypt_parts
from crypto.wssec_sign import policy_for_signing_key, sign_message
from crypto.wssec_verify import VerifyResult, verify_message

__all__ = [
    "EDELIVERY_AS4_1_15", "SecurityPolicy", "Part", "sign_message", "verify_message", "VerifyResult",
    "encrypt_parts", "decrypt_parts", "SecurityError", "SignatureError", "InvalidDigest",
    "InvalidSignatureValue", "UntrustedSigner", "MissingSignature", "IncompleteSignature",
    "AlgorithmNotAllowed", "DecryptionError",
    # eDelivery AS4 2.0 suites and selection by name
    "EDELIVERY_AS4_2_0_EDDSA", "EDELIVERY_AS4_2_0_ECDSA", "SUITES", "suite", "policy_for_signing_key",
    # trust
    "TrustConfig", "validate_certificate", "load_crl", "CrlCache", "CrlLoadError",
    "UntrustedCertificate", "SignerCertificateRejected",
    # does a key or certificate fit a suite (checked when config is loaded)
    "check_signing_key", "check_signer_certificate", "check_decryption_key", "check_recipient_certificate",
    "same_key",
]
