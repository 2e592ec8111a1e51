"""Shared vocabulary of the WS-Security modules: namespaces, the attachment type,
locating the SOAP/WSS header elements, ids, canonicalization and base64.

Kept free of cryptography so that sign/verify/encrypt/decrypt agree on *where*
things are by construction; the signature-wrapping defence depends on every module
resolving ids and headers the same strict way.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree

from crypto.content import Octets
from crypto.errors import SecurityError

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_XENC11 = "http://www.w3.org/2009/xmlenc11#"
NS_DSIG11 = "http://www.w3.org/2009/xmldsig11#"
NS_DSIG_MORE = "http://www.w3.org/2021/04/xmldsig-more#"
"""RFC 9231 namespace of HKDFParams (eDelivery AS4 2.0 key derivation)."""
NS_EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
NS_EBMS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
NS_XML = "http://www.w3.org/XML/1998/namespace"

SWA_NS = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1"
SWA_CONTENT_ONLY = SWA_NS + "#Attachment-Content-Only"
SWA_COMPLETE = SWA_NS + "#Attachment-Complete"

X509V3_VALUE_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)
BASE64_ENCODING_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
    "#Base64Binary"
)
ENCRYPTED_KEY_TOKEN_TYPE = (
    "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"
)

WSU_ID = f"{{{NS_WSU}}}Id"
# Every attribute a same-document "#id" URI may legitimately point at. Resolution
# looks at all of them at once, so two elements claiming one id (one via wsu:Id,
# one via Id) are detected as the ambiguity they are.
ID_ATTRIBUTES = (WSU_ID, "Id", "ID", f"{{{NS_XML}}}id")

NSMAP_WSS = {"wsse": NS_WSSE, "wsu": NS_WSU}


def q(ns: str, local: str) -> str:
    """Clark-notation qualified name, the form lxml uses for tags and attributes."""
    return f"{{{ns}}}{local}"


@dataclass(frozen=True)
class Part:
    """One MIME attachment of a SOAP-with-Attachments message."""

    content_id: str
    """Content-ID without angle brackets and without ``cid:``."""
    mime_type: str
    """Content-Type of the MIME part as on the wire (parameters included)."""
    data: Octets
    """In memory, or a byte range of a file for a large attachment (``crypto.content``)."""


class AmbiguousElement(SecurityError, ValueError):
    """An element appears more than once where WS-Security / XML-DSig / XML-Enc allow one.

    A SecurityError, because on the receiving side it is a malformed (possibly hostile)
    message that the pipeline answers like any other WS-Security failure (EBMS:0101 for the
    signature, EBMS:0102 for encryption); still a ValueError for callers that wrap it with
    more context.
    """


class WSSecurityStructureError(ValueError):
    """The envelope is not a SOAP 1.2 envelope of the shape WS-Security needs.

    Raised on the producing side (sign/encrypt), where a malformed envelope is a
    programming error of the caller rather than a hostile input.
    """


def new_id(prefix: str) -> str:
    """A fresh NCName id; random so ids never collide with a partner's."""
    return f"{prefix}-{uuid.uuid4()}"


def cid_uri(content_id: str) -> str:
    """The ``cid:`` URI that references an attachment (RFC 2392)."""
    return "cid:" + content_id


def content_id_from_uri(uri: str) -> str | None:
    """Content id named by a ``cid:`` URI, or None if ``uri`` is not one.

    RFC 2392 percent-encodes; senders in practice mostly do not, and a content id
    never legitimately contains '%', so unquoting is safe either way.
    """
    if uri[:4].lower() != "cid:":
        return None
    return unquote(uri[4:])


def find_part(parts: Sequence[Part], content_id: str) -> Part | None:
    """The part with ``content_id`` (exact match; ids are compared as sent)."""
    for part in parts:
        if part.content_id == content_id:
            return part
    return None


def children(parent: etree._Element, ns: str, local: str) -> list[etree._Element]:
    """Direct element children with the given qualified name (no deep search: depth
    is where wrapping attacks hide signed content)."""
    return [c for c in parent if isinstance(c.tag, str) and c.tag == q(ns, local)]


def child(parent: etree._Element, ns: str, local: str) -> etree._Element | None:
    """The single direct child with that name; None if absent.

    Raises :class:`AmbiguousElement` if there are several, because an ambiguous structure
    must never be resolved by picking the first one.
    """
    found = children(parent, ns, local)
    if len(found) > 1:
        raise AmbiguousElement(f"more than one {local} element under {etree.QName(parent).localname}; "
                               "the structure must have exactly one")
    return found[0] if found else None


def soap_header(envelope: etree._Element) -> etree._Element | None:
    """The envelope's soap:Header, if any."""
    return child(envelope, NS_SOAP12, "Header")


def soap_body(envelope: etree._Element) -> etree._Element | None:
    """The envelope's soap:Body, if any."""
    return child(envelope, NS_SOAP12, "Body")


def check_envelope(envelope: etree._Element) -> None:
    """Insist on a SOAP 1.2 Envelope element (not a tree, not SOAP 1.1)."""
    if not isinstance(envelope, etree._Element) or envelope.tag != q(NS_SOAP12, "Envelope"):
        raise WSSecurityStructureError("expected a SOAP 1.2 soap:Envelope element")


def ensure_header(envelope: etree._Element) -> etree._Element:
    """soap:Header, created as the first child when missing."""
    header = soap_header(envelope)
    if header is None:
        header = etree.Element(q(NS_SOAP12, "Header"))
        envelope.insert(0, header)
    return header


def is_security_for_us(security: etree._Element) -> bool:
    """A wsse:Security header without a SOAP role targets the ultimate receiver.

    AS4 multi-hop adds a second header with role "ebms"; it is not ours to process.
    """
    role = security.get(q(NS_SOAP12, "role"))
    return role is None or role == "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"


def find_security_header(envelope: etree._Element) -> etree._Element | None:
    """The wsse:Security header block addressed to the ultimate receiver.

    Raises ValueError if there are two such blocks (WSS forbids it, and accepting
    one of them would let an attacker choose which one we check).
    """
    header = soap_header(envelope)
    if header is None:
        return None
    ours = [s for s in children(header, NS_WSSE, "Security") if is_security_for_us(s)]
    if len(ours) > 1:
        raise ValueError("more than one wsse:Security header for the ultimate receiver")
    return ours[0] if ours else None


def ensure_security_header(envelope: etree._Element) -> etree._Element:
    """Find or create the wsse:Security header (soap:mustUnderstand="true")."""
    security = find_security_header(envelope)
    if security is None:
        header = ensure_header(envelope)
        security = etree.SubElement(header, q(NS_WSSE, "Security"), nsmap=NSMAP_WSS)
        security.set(q(NS_SOAP12, "mustUnderstand"), "true")
    return security


def messaging_header(envelope: etree._Element) -> etree._Element | None:
    """The eb:Messaging header block (user message or signal); exactly one allowed."""
    header = soap_header(envelope)
    if header is None:
        return None
    return child(header, NS_EBMS, "Messaging")


def element_id(element: etree._Element) -> str | None:
    """The id of an element under any of the id attributes we recognise."""
    for attr in ID_ATTRIBUTES:
        value = element.get(attr)
        if value:
            return value
    return None


def ensure_wsu_id(element: etree._Element, prefix: str) -> str:
    """Return the element's existing wsu:Id, or give it a new one."""
    existing = element.get(WSU_ID)
    if existing:
        return existing
    new = new_id(prefix)
    element.set(WSU_ID, new)
    return new


# The ID_ATTRIBUTES of every element, found by libxml2 in one pass (walking the tree in Python
# and asking each element for four attributes cost more than the digests it serves).
_ID_VALUES = etree.XPath("descendant-or-self::*/@wsu:Id | descendant-or-self::*/@Id | descendant-or-self::*/@ID"
                         " | descendant-or-self::*/@xml:id", namespaces={"wsu": NS_WSU, "xml": NS_XML})


def index_ids(root: etree._Element) -> dict[str, list[etree._Element]]:
    """Every id value in the document mapped to *all* elements carrying it."""
    index: dict[str, list[etree._Element]] = {}
    for value in _ID_VALUES(root):
        if value:
            index.setdefault(str(value), []).append(value.getparent())
    return index


def resolve_same_document(index: dict[str, list[etree._Element]], uri: str) -> etree._Element:
    """Resolve a bare-name ``#id`` pointer strictly.

    Raises LookupError (with an operator-readable message) for other URI forms,
    unknown ids and ids carried by more than one element.
    """
    if not uri.startswith("#") or len(uri) < 2 or uri.startswith("#xpointer("):
        raise LookupError(f"reference URI {uri!r} is not a plain '#id' same-document reference")
    targets = index.get(uri[1:], [])
    if not targets:
        raise LookupError(f"reference URI {uri} points to no element in the message")
    if len(targets) > 1:
        raise LookupError(
            f"reference URI {uri} is ambiguous: {len(targets)} elements carry that id "
            "(possible signature-wrapping attack)"
        )
    return targets[0]


def inclusive_prefixes(method: etree._Element) -> list[str] | None:
    """PrefixList of an ec:InclusiveNamespaces child of a c14n method or transform."""
    incl = child(method, NS_EC, "InclusiveNamespaces")
    if incl is None:
        return None
    return (incl.get("PrefixList") or "").split()


def exc_c14n(element: etree._Element, prefixes: Iterable[str] | None = None) -> bytes:
    """Exclusive XML canonicalization (without comments) of ``element`` in context.

    The element stays in its document: exc-c14n only emits namespaces the subtree
    visibly uses, so the result is the same as for a detached copy, which is what
    makes it safe for signing parts of a SOAP envelope that intermediaries rewrap.
    """
    return etree.tostring(
        element,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=list(prefixes) if prefixes else None,
    )


def b64encode(data: bytes) -> str:
    """Base64 without line breaks (line breaks are legal but pointless here)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str | None) -> bytes:
    """Strict base64 decoding that tolerates the whitespace XML may add.

    Raises ValueError on anything that is not base64.
    """
    if text is None:
        raise ValueError("empty base64 content")
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64 content: {exc}") from None
