"""What one inbound message carries through the handler chain (``steps.py``).

The context is the pipeline's only state: each step reads what earlier steps established
(the partner, the PMode, what the signature covered) and adds its own, so a step can be
tested alone with a context built by hand. A step ends processing by raising an ebMS error
(``fail``) or by setting ``response`` (a test message answered, a duplicate's stored receipt).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509
from lxml import etree

from crypto import Part, VerifyResult
from crypto.content import Octets
from gateway import as4
from gateway.as4.payloads import ResolvedPayload
from gateway.as4.xmlparse import DEFAULT_MAX_DEPTH
from gateway.config import BASE_SUITE
from gateway.store.store import StepEvent
from partners.pmode import PMode, SecurityConfig
from partners.registry import Partner, PartnerRegistry

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
MiB = 1024 * 1024


@dataclass(frozen=True)
class InboundLimits:
    """Bounds on what one inbound message may cost us; all refusals happen before the
    expensive step they protect (the HTTP layer enforces ``max_message_bytes`` while the
    body is still arriving)."""

    max_message_bytes: int = 100 * MiB
    max_parts: int = 100
    max_decompressed_bytes: int = 100 * MiB
    max_xml_depth: int = DEFAULT_MAX_DEPTH


@dataclass(frozen=True)
class Response:
    code: int
    content_type: str
    body: bytes


def fail(code: str, description: str, ref: str | None = None) -> as4.EbmsException:
    """The exception a step raises to answer an ebMS error. Every rejection here ends
    processing, so even codes that default to "warning" (EBMS:0002) go out as failures:
    the partner must not assume delivery."""
    return as4.EbmsException(as4.make_error(code, description, ref, severity="failure"))


@dataclass
class InboundContext:
    content_type: str
    body: Octets                           # a large body stays in Twisted's spool file
    tls_chain: tuple[x509.Certificate, ...] | None
    registry: PartnerRegistry              # one snapshot: a reload mid-message cannot mix configs
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    #: The suite our answer (receipt or error) is signed with: the partner's PMode suite once
    #: the sender is known (its software verifies our signals with it), our 1.15 keys before.
    answer_suite: str = BASE_SUITE
    #: Set when processing reaches the store (duplicate check onwards). Before that every step
    #: only checks the message (pure code over the received bytes), so an unexpected failure
    #: is a bug that the same input hits on every resend; after it, a failure may be the
    #: database or the disk, which a resend later gets past.
    reached_store: bool = False

    # -- parse
    envelope: etree._Element | None = None
    parsed: as4.ParsedEnvelope | None = None
    mime_parts: list[as4.MimePart] = field(default_factory=list)
    user_message: as4.UserMessage | None = None
    # -- sender, agreement
    partner: Partner | None = None
    test: bool = False
    pmode: PMode | None = None                 # None for the ebMS test service
    security: SecurityConfig | None = None
    # -- security
    wire_parts: list[Part] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)       # decrypted
    verified: VerifyResult | None = None                   # None: unsigned, accepted by PMode
    messaging: etree._Element | None = None                # the signed eb:Messaging
    signed_body: etree._Element | None = None
    payloads: list[ResolvedPayload] = field(default_factory=list)
    # -- document and NSW hand-off
    document: Octets | None = None             # what the NSW gets as the first document
    inbox_extra: dict = field(default_factory=dict)
    #: Changes that commit with the message (an AEO list): session -> their events.
    effects: Callable | None = None
    linked_pk: int | None = None               # our outbound message a business response answers
    # -- answer
    receipt: as4.Receipt | None = None
    receipt_bytes: bytes | None = None
    stored_pk: int | None = None
    events: list[StepEvent] = field(default_factory=list)
    response: Response | None = None

    @property
    def message_id(self) -> str | None:
        return self.user_message.message_id if self.user_message is not None else None

    @property
    def reference(self) -> str | None:
        """The NSW reference the sender's single window gave (message property nswReference)."""
        um = self.user_message
        return next((p.value for p in um.message_properties if p.name == "nswReference"), None) if um else None
