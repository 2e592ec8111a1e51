"""The SwA profile's Attachment-Content-Signature-Transform (WSS SwA 1.1, 5.4).

Its output is the attachment content after MIME content canonicalization: XML
content types are exclusive-c14n'ed, other ``text/*`` types get CRLF line ends,
everything else (gzip, octet-stream, PDF: the usual AS4 case) is the octets as
they are. Signer and verifier must apply the same rule or digests of XML and text
attachments would not match those of WSS4J-based peers (Domibus, Holodeck).
"""

from __future__ import annotations

import re

from lxml import etree

from crypto.content import Octets, as_bytes
from crypto.errors import SignatureError
from crypto.wssec_common import Part

_XML_TYPE = re.compile(r"^\s*(text/xml|application/xml|application/[^;\s]*\+xml)\s*(;|$)", re.I)
_TEXT_TYPE = re.compile(r"^\s*text/", re.I)



def _safe_parser() -> etree.XMLParser:
    """Attachments come from the network: no DTD loading, no entity expansion, no I/O.

    ``huge_tree`` is on because a business document may hold a scanned PDF as one base64
    text node beyond libxml2's 10 MB default; with entities unresolved that limit guards
    nothing here. A parser per call: lxml parsers must not be shared between threads.
    """
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=True, remove_blank_text=False)


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _xml_c14n(part: Part) -> bytes:
    try:
        doc = etree.fromstring(as_bytes(part.data), _safe_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise SignatureError(
            f"attachment cid:{part.content_id} is declared as {part.mime_type} but is not "
            f"well-formed XML ({exc}); its content cannot be canonicalized for the signature"
        ) from None
    if doc.docinfo.internalDTD is not None or doc.docinfo.doctype:
        raise SignatureError(
            f"attachment cid:{part.content_id} is XML with a DOCTYPE; documents with a DTD "
            "are refused (entity expansion would make the signed content ambiguous)"
        )
    return etree.tostring(doc, method="c14n", exclusive=True, with_comments=False)


def attachment_content_octets(part: Part) -> Octets:
    """What the Attachment-Content-Signature-Transform outputs for ``part``.

    The octets themselves (possibly a file, digested in chunks) for everything but XML and
    text, which need the whole content in memory to canonicalize; AS4 payloads are usually
    gzip, which is why large ones stream.
    """
    if _XML_TYPE.match(part.mime_type):
        return _xml_c14n(part)
    if _TEXT_TYPE.match(part.mime_type):
        return _crlf(as_bytes(part.data))
    return part.data
