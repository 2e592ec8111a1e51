"""WS-Security for AS4: sign/verify, encrypt/decrypt, keys. Pure functions over bytes and lxml trees.

This module is the package's public surface; everything else is an implementation detail.
"""
from crypto.algorithms import EDELIVERY_AS4_1_15, SecurityPolicy
from crypto.errors import (AlgorithmNotAllowed, DecryptionError, IncompleteSignature, InvalidDigest,
                           InvalidSignatureValue, MissingSignature, SecurityError, SignatureError,
                           UntrustedSigner)
from crypto.wssec_common import Part
from crypto.wssec_decrypt import decrypt_parts
from crypto.wssec_encrypt import encrypt_parts
from crypto.wssec_sign import sign_message
from crypto.wssec_verify import VerifyResult, verify_message

__all__ = [
    "EDELIVERY_AS4_1_15", "SecurityPolicy", "Part", "sign_message", "verify_message", "VerifyResult",
    "encrypt_parts", "decrypt_parts", "SecurityError", "SignatureError", "InvalidDigest",
    "InvalidSignatureValue", "UntrustedSigner", "MissingSignature", "IncompleteSignature",
    "AlgorithmNotAllowed", "DecryptionError",
]
