"""The gateway's own keys and certificates, loaded once at start-up.

Loading early means a bad key path or an over-permissive key file stops the daemon with a
clear message instead of failing the first message hours later.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from gateway.config import GatewayConfig


@dataclass(frozen=True)
class LocalIdentity:
    party_id: str
    party_id_type: str
    signing_key: object
    signing_cert: x509.Certificate
    encryption_key: object
    encryption_cert: x509.Certificate

    @classmethod
    def from_config(cls, config: GatewayConfig) -> "LocalIdentity":
        sign_key, sign_cert = config.signing.load()
        enc_key, enc_cert = config.encryption.load()
        return cls(config.party_id, config.party_id_type, sign_key, sign_cert, enc_key, enc_cert)
