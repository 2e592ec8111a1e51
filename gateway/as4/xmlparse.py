"""The single hardened XML parser for everything that arrives from outside.

Every inbound byte of XML (SOAP envelopes, decrypted payloads, receipts) goes through
:func:`parse_xml`, so the defences against XXE, entity expansion ("billion laughs"),
network fetches and stack-exhausting nesting live in one audited place.
"""

from __future__ import annotations

from lxml import etree

from partners.xmldoc import doctype_line

__all__ = ["XmlRejected", "parse_xml", "DEFAULT_MAX_DEPTH"]

#: libxml2's own limit without XML_PARSE_HUGE; deeper nesting has no business in AS4.
DEFAULT_MAX_DEPTH = 256

_WS = b" \t\r\n"


class XmlRejected(ValueError):
    """Inbound XML was refused: malformed, carries a DTD, or exceeds a limit."""


def _new_parser(large_text: bool = False) -> etree.XMLParser:
    # A fresh parser per call: lxml parser objects must not be shared between
    # threads, and parsing runs off the reactor thread in worker threads.
    return etree.XMLParser(
        resolve_entities=False,  # never expand entities, internal or external
        load_dtd=False,  # never fetch or read an external DTD subset
        dtd_validation=False,
        no_network=True,  # belt and braces: no network access whatsoever
        # libxml2's limits stay on for SOAP envelopes; business documents may carry a
        # scanned PDF as one >10 MB base64 text node, so they lift them (depth is still
        # checked below, and DTDs/entities are refused before parsing either way).
        huge_tree=large_text,
        remove_blank_text=False,  # whitespace matters to signatures
        remove_comments=False,  # so do comments (c14n decides what to keep)
    )


def _prolog_has_doctype(data: bytes) -> bool:
    """Whether the prolog (before the root element) holds a ``<!DOCTYPE``: caught before
    libxml2 reads it, so an internal subset full of entity declarations is never even parsed.
    The scanner is the one business documents use (``partners.xmldoc``); for encodings it
    cannot read (UTF-16) the post-parse docinfo check in :func:`parse_xml` still applies."""
    return doctype_line(data) is not None


def _check_depth(root: etree._Element, max_depth: int) -> None:
    depth = 0
    for event, _el in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > max_depth:
                raise XmlRejected(f"XML nesting deeper than {max_depth} levels")
        else:
            depth -= 1


def parse_xml(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, large_text: bool = False) -> etree._Element:
    """Parse untrusted XML bytes and return the root element.

    Rejects (with :class:`XmlRejected`): empty input, any DOCTYPE declaration,
    undefined entity references, malformed XML and nesting beyond ``max_depth``
    (the root element counts as depth 1). Comments and processing instructions are
    kept because they are part of what a signature may cover.
    """
    if isinstance(data, str):
        raise TypeError("parse_xml takes bytes, not str (the encoding must come from the XML)")
    data = bytes(data)
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    if not data.strip(_WS):
        raise XmlRejected("XML document is empty")
    if _prolog_has_doctype(data):
        raise XmlRejected("XML document has a DOCTYPE declaration; DTDs are not accepted")
    try:
        root = etree.fromstring(data, _new_parser(large_text))
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"XML is not well-formed or exceeds parser limits: {exc}") from exc
    except ValueError as exc:  # e.g. unsupported encoding declarations
        raise XmlRejected(f"XML could not be parsed: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRejected("XML document has a DOCTYPE declaration; DTDs are not accepted")
    _check_depth(root, max_depth)
    return root
