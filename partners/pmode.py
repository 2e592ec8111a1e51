"""Processing modes (PModes): how messages of one document type travel to and from a partner.

Frozen dataclasses, so a PMode handed to a pipeline cannot change under it when the
registry is reloaded.
"""
from __future__ import annotations

from dataclasses import dataclass

EBMS_NS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
DEFAULT_INITIATOR_ROLE = EBMS_NS + "initiator"
DEFAULT_RESPONDER_ROLE = EBMS_NS + "responder"
UNREGISTERED_PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
DOCUMENT_SIGNATURE_PROFILES = ("enveloped", "xades")
#: Algorithm suites a PMode may name (``crypto.SUITES``): eDelivery AS4 1.15 (RSA) and the two
#: eDelivery AS4 2.0 suites. "Signed but not AS4-encrypted" (TLS only, as EU ICS2 uses) is any
#: suite with ``encrypt = false``: the suite then only fixes the signature algorithms.
SECURITY_SUITES = ("edelivery-as4-1.15", "edelivery-as4-2.0-eddsa", "edelivery-as4-2.0-ecdsa")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, bounded both by attempts and by the age of the message."""
    max_attempts: int = 8
    initial_interval: float = 5.0
    multiplier: float = 2.0
    max_interval: float = 600.0
    max_age: float = 86400.0

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt (1-based)."""
        return min(self.max_interval, self.initial_interval * self.multiplier ** max(0, attempt - 1))


@dataclass(frozen=True)
class SecurityConfig:
    suite: str = "edelivery-as4-1.15"
    sign: bool = True
    #: False: signed but not AS4-encrypted; payloads are protected by TLS only (EU ICS2 style).
    #: Outbound nothing is encrypted; inbound encrypted payloads are still decrypted.
    encrypt: bool = True
    #: Inbound only: accept user messages that carry no signature. Off by default because
    #: an unsigned message proves nothing about its sender (AS4 answers EBMS:0103); only for
    #: partners whose TLS client certificate is the sole authentication, by agreement.
    allow_unsigned: bool = False


@dataclass(frozen=True)
class PMode:
    id: str
    document_type: str
    agreement: str | None
    agreement_type: str | None
    service: str
    service_type: str | None
    action: str
    initiator_role: str
    responder_role: str
    mime_type: str
    compress: bool
    security: SecurityConfig
    retry: RetryPolicy
    #: Document-level signature profile for this document type (e-CO, e-permit): "enveloped"
    #: XML-DSig or "xades" (XAdES-BES) when the partner's profile asks for it. Outbound it is
    #: applied only when gateway.toml configures an issuing-authority key for the type.
    document_signature: str = "enveloped"
