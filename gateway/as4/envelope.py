"""Builders for SOAP 1.2 envelopes carrying an ebMS 3.0 ``eb:UserMessage``.

The output is an lxml tree, not bytes: the crypto layer signs and encrypts the tree
before it is serialised, so serialising here would only force a re-parse.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable

from lxml import etree

from .model import Party, PartInfo, Property, UserMessage
from .namespaces import NSMAP, WSU_ID, eb, env
from .timestamps import format_timestamp

__all__ = ["new_envelope", "build_user_message", "new_wsu_id", "serialize"]


def new_wsu_id(prefix: str) -> str:
    """A unique ``wsu:Id`` value; signature references point at these ids."""
    return f"{prefix}-{uuid.uuid4().hex}"


def _require(value: str | None, what: str) -> str:
    if value is None or not str(value).strip():
        raise ValueError(f"{what} must not be empty")
    return value


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str | None) -> etree._Element:
    """Append a child element; attributes whose value is None are omitted."""
    el = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def new_envelope(
    *, messaging_id: str | None = None, body_id: str | None = None
) -> tuple[etree._Element, etree._Element, etree._Element, etree._Element]:
    """Create ``env:Envelope`` with ``env:Header/eb:Messaging`` and ``env:Body``.

    Returns (envelope, header, messaging, body). Both eb:Messaging and env:Body get a
    ``wsu:Id`` because AS4 signs both. eb:Messaging is mustUnderstand so that a SOAP
    node that does not speak ebMS faults instead of silently dropping the message.
    """
    root = etree.Element(env("Envelope"), nsmap=NSMAP)
    header = etree.SubElement(root, env("Header"))
    messaging = etree.SubElement(header, eb("Messaging"))
    messaging.set(env("mustUnderstand"), "true")
    messaging.set(WSU_ID, messaging_id or new_wsu_id("ebMessaging"))
    body = etree.SubElement(root, env("Body"))
    body.set(WSU_ID, body_id or new_wsu_id("body"))
    return root, header, messaging, body


def add_message_info(
    parent: etree._Element, message_id: str, timestamp_text: str, ref_to_message_id: str | None
) -> etree._Element:
    """Append ``eb:MessageInfo`` (shared by user and signal messages)."""
    info = sub(parent, eb("MessageInfo"))
    sub(info, eb("Timestamp"), timestamp_text)
    sub(info, eb("MessageId"), _require(message_id, "MessageId"))
    if ref_to_message_id is not None:
        sub(info, eb("RefToMessageId"), ref_to_message_id)
    return info


def _add_party(parent: etree._Element, tag: str, party: Party) -> None:
    el = sub(parent, tag)
    for pid in party.party_ids:
        sub(el, eb("PartyId"), _require(pid.value, "PartyId"), type=pid.type)
    sub(el, eb("Role"), _require(party.role, "Role"))


def _add_properties(parent: etree._Element, tag: str, props: Iterable[Property]) -> None:
    props = tuple(props)
    if not props:  # the schema requires at least one Property in the container
        return
    container = sub(parent, tag)
    for p in props:
        sub(container, eb("Property"), p.value, name=_require(p.name, "Property name"), type=p.type)


def _add_payloads(parent: etree._Element, payloads: tuple[PartInfo, ...]) -> None:
    if not payloads:
        return
    info = sub(parent, eb("PayloadInfo"))
    for part in payloads:
        el = sub(info, eb("PartInfo"), href=part.href)
        _add_properties(el, eb("PartProperties"), part.properties)


def build_user_message(
    msg: UserMessage,
    body_payload: etree._Element | None = None,
    *,
    messaging_id: str | None = None,
    body_id: str | None = None,
) -> etree._Element:
    """Build the complete SOAP envelope of an ebMS 3.0 UserMessage.

    ``body_payload`` (deep-copied, the caller's tree is untouched) becomes the content
    of ``env:Body``; it should be referenced by a PartInfo with href None or ``#id``.
    AS4 normally sends payloads as attachments and leaves the body empty.
    """
    body_refs = [p for p in msg.payloads if p.in_body]
    if body_payload is None and any(p.href is None for p in body_refs):
        raise ValueError("a PartInfo without href refers to the SOAP body, but no body payload was given")
    if body_payload is not None and not body_refs:
        raise ValueError("a body payload was given but no PartInfo refers to the SOAP body")

    root, _header, messaging, body = new_envelope(messaging_id=messaging_id, body_id=body_id)
    um = sub(messaging, eb("UserMessage"), mpc=msg.mpc)
    add_message_info(um, msg.message_id, format_timestamp(msg.timestamp), msg.ref_to_message_id)

    party_info = sub(um, eb("PartyInfo"))
    _add_party(party_info, eb("From"), msg.from_party)
    _add_party(party_info, eb("To"), msg.to_party)

    collab = sub(um, eb("CollaborationInfo"))
    if msg.agreement_ref is not None:
        sub(collab, eb("AgreementRef"), msg.agreement_ref, type=msg.agreement_type, pmode=msg.pmode)
    elif msg.agreement_type is not None or msg.pmode is not None:
        raise ValueError("agreement_type/pmode need an agreement_ref to hang on")
    sub(collab, eb("Service"), _require(msg.service, "Service"), type=msg.service_type)
    sub(collab, eb("Action"), _require(msg.action, "Action"))
    sub(collab, eb("ConversationId"), _require(msg.conversation_id, "ConversationId"))

    _add_properties(um, eb("MessageProperties"), msg.message_properties)
    _add_payloads(um, msg.payloads)

    if body_payload is not None:
        body.append(copy.deepcopy(body_payload))
    return root


def serialize(root: etree._Element) -> bytes:
    """UTF-8 bytes of a tree, without XML declaration (what goes in the SOAP MIME part).

    Once a tree is signed, serialise it exactly once and keep those bytes: they are
    the evidence.
    """
    return etree.tostring(root, encoding="UTF-8", xml_declaration=False)
