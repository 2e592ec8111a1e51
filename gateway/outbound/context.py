"""What one outbound message carries through the outbound handler chain (``steps.py``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from crypto import Part
from crypto.content import Octets
from gateway.outbound.submission import Submission
from gateway.store.store import StepEvent
from partners.pmode import PMode
from partners.registry import Partner, PartnerRegistry


@dataclass
class OutboundContext:
    submission: Submission
    registry: PartnerRegistry              # one snapshot: a reload mid-submission cannot mix configs
    partner: Partner | None = None
    pmode: PMode | None = None
    message_id: str = ""
    conversation_id: str = ""
    document: Octets = b""                 # as the partner receives it (mapped, validated)
    content_id: str = ""
    parts: list[Part] = field(default_factory=list)
    properties: list = field(default_factory=list)   # PartInfo properties (MimeType, CompressionType)
    envelope: etree._Element | None = None
    signed_references: dict = field(default_factory=dict)
    content_type: str = ""                 # of the MIME message on the wire
    body: Octets = b""                     # the signed (and encrypted) MIME message
    events: list[StepEvent] = field(default_factory=list)
