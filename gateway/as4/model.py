"""Immutable data model of ebMS 3.0 messages as the gateway sees them.

Frozen dataclasses so a parsed message can be passed between threads, logged and
compared without anyone mutating what was received (it is evidence).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

__all__ = [
    "PartyId",
    "Party",
    "Property",
    "PartInfo",
    "UserMessage",
    "Receipt",
    "EbmsError",
    "ErrorSignal",
    "new_message_id",
    "SEVERITY_FAILURE",
    "SEVERITY_WARNING",
]

SEVERITY_FAILURE = "failure"
SEVERITY_WARNING = "warning"

# RFC 2822 dot-atom-text (atext plus interior dots) for the right side of a msg-id.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class PartyId:
    """An ``eb:PartyId``; ``type`` is the identifier scheme (None when value is a URI)."""

    value: str
    type: str | None = None


@dataclass(frozen=True)
class Party:
    """The sending or receiving party (``eb:From`` / ``eb:To``)."""

    party_ids: tuple[PartyId, ...]
    role: str

    def __post_init__(self) -> None:
        if not self.party_ids:
            raise ValueError("a Party needs at least one PartyId")


@dataclass(frozen=True)
class Property:
    """A name/value pair (``eb:Property``) in MessageProperties or PartProperties."""

    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True)
class PartInfo:
    """One payload reference (``eb:PartInfo``).

    ``href`` is ``cid:<content-id>`` for a MIME attachment, ``#id`` for an element of
    the SOAP body, or None when the whole SOAP body content is the payload.
    """

    href: str | None
    properties: tuple[Property, ...] = ()

    def get_property(self, name: str) -> str | None:
        """Value of the first PartProperty called ``name`` (names are case-sensitive)."""
        for p in self.properties:
            if p.name == name:
                return p.value
        return None

    @property
    def mime_type(self) -> str | None:
        """The payload's media type before compression (AS4 ``MimeType`` property)."""
        return self.get_property("MimeType")

    @property
    def compression_type(self) -> str | None:
        """``application/gzip`` when AS4 compression was applied, else None."""
        return self.get_property("CompressionType")

    @property
    def character_set(self) -> str | None:
        """The ``CharacterSet`` part property, if the sender gave one."""
        return self.get_property("CharacterSet")

    @property
    def content_id(self) -> str | None:
        """Content-ID (no ``cid:``, no brackets) of the attachment, or None for body parts.

        cid: URLs are URL-encoded (RFC 2392), so ``%40`` becomes ``@`` here.
        """
        if self.href is not None and self.href[:4].lower() == "cid:":
            return unquote(self.href[4:])
        return None

    @property
    def in_body(self) -> bool:
        """True when the payload lives in the SOAP body rather than in an attachment."""
        return self.href is None or self.href.startswith("#")


@dataclass(frozen=True)
class UserMessage:
    """An ebMS 3.0 ``eb:UserMessage`` header (the business message's metadata)."""

    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None
    from_party: Party
    to_party: Party
    agreement_ref: str | None
    agreement_type: str | None
    pmode: str | None
    service: str
    service_type: str | None
    action: str
    conversation_id: str
    message_properties: tuple[Property, ...]
    payloads: tuple[PartInfo, ...]
    mpc: str | None = None

    def __post_init__(self) -> None:
        _require_aware("UserMessage.timestamp", self.timestamp)

    def get_property(self, name: str) -> str | None:
        """Value of the first MessageProperty called ``name``."""
        for p in self.message_properties:
            if p.name == name:
                return p.value
        return None


@dataclass(frozen=True)
class Receipt:
    """An AS4 receipt signal acknowledging ``ref_to_message_id``."""

    message_id: str
    timestamp: datetime
    ref_to_message_id: str

    def __post_init__(self) -> None:
        _require_aware("Receipt.timestamp", self.timestamp)


@dataclass(frozen=True)
class EbmsError:
    """One ``eb:Error`` (ebMS 3.0 Core sec 6.2)."""

    error_code: str
    severity: str
    category: str | None
    short_description: str | None
    description: str | None
    ref_to_message_id: str | None
    origin: str | None = "ebMS"

    @property
    def is_failure(self) -> bool:
        """Failures end processing of the referenced message; warnings do not."""
        return self.severity.lower() == SEVERITY_FAILURE


@dataclass(frozen=True)
class ErrorSignal:
    """An ``eb:SignalMessage`` carrying one or more errors."""

    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None
    errors: tuple[EbmsError, ...]

    def __post_init__(self) -> None:
        _require_aware("ErrorSignal.timestamp", self.timestamp)
        if not self.errors:
            raise ValueError("an ErrorSignal needs at least one error")


def new_message_id(domain: str) -> str:
    """A fresh globally unique ebMS MessageId ``<uuid4>@<domain>``.

    RFC 2822 msg-id form without angle brackets, as ebMS 3.0 Core sec 5.2.2.1 requires;
    the domain makes ids traceable to this gateway in a partner's logs.
    """
    if not _DOT_ATOM.fullmatch(domain):
        raise ValueError(f"not a valid msg-id domain: {domain!r}")
    return f"{uuid.uuid4()}@{domain}"
