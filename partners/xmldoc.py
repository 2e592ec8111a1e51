"""The one hardened parser for business documents (e-certificates, manifests, AEO lists).

Why one parser: every path that reads a document (canonical validation, mapping input,
document signatures, AEO lists) must give the same answer to the same bytes. Documents
come from the NSW and from partners, and a DTD in them is never legitimate: the canonical
formats are defined by XSD, and an internal subset only brings entity declarations that
either expand (XXE, "billion laughs") or, left unexpanded, leave entity-reference nodes that
make libxml2's schema validator fail with an internal error and make a signature cover
something other than what a reader sees. So any DOCTYPE, with or without an internal
subset, is refused with one clear reason (:data:`DTD_REFUSED`).

It follows ``gateway.as4.xmlparse`` (the parser for SOAP envelopes), which ``partners``
cannot import (``partners`` does not depend on ``gateway``): the DOCTYPE is caught in the
prolog before libxml2 reads it, and again after parsing for encodings the prolog scan
cannot read (UTF-16). Unlike envelopes, documents lift libxml2's text-size limit
(``huge_tree``), because an ePhyto carries a scanned PDF as one base64 text node.
"""
from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

__all__ = ["DTD_REFUSED", "MAX_DEPTH", "check_well_formed", "DocumentHasDtd", "DocumentNotWellFormed", "DocumentXmlRefused",
           "doctype_line", "has_dtd", "parse", "parser"]

#: The reason every document path gives for a DTD, so the NSW and partners read one message.
DTD_REFUSED = "documents must not contain a DTD (DOCTYPE); remove it"

#: Like SOAP envelopes (``gateway.as4.xmlparse``): the deepest canonical document nests about 15 levels.
MAX_DEPTH = 256

_BOM_UTF8 = b"\xef\xbb\xbf"


class DocumentXmlRefused(ValueError):
    """The bytes are not a document we parse; ``line`` locates the problem when known."""

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        super().__init__(message)


class DocumentHasDtd(DocumentXmlRefused):
    """The document has a DOCTYPE declaration (any DTD at all)."""

    def __init__(self, line: int | None = None):
        super().__init__(DTD_REFUSED, line=line)


class DocumentNotWellFormed(DocumentXmlRefused):
    """The document is not well-formed XML (libxml2's message, with its line)."""


def parser() -> etree.XMLParser:
    """The hardened parser settings, for libraries that parse the bytes again themselves
    (signxml): call :func:`parse` first, which refuses DTDs; these settings alone do not.

    A fresh parser per call: lxml parser objects must not be shared between threads."""
    return etree.XMLParser(resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True,
                           huge_tree=True, remove_blank_text=False, remove_comments=False)


def doctype_line(data: bytes) -> int | None:
    """The line of a ``<!DOCTYPE`` in the prolog (before the root element), or None.

    Works for ASCII-compatible encodings; :func:`parse` checks the parsed tree as well for
    the others. A loop rather than a regex, to stay linear on hostile input.
    """
    i = 3 if data.startswith(_BOM_UTF8) else 0
    n = len(data)
    while i < n:
        c = data[i:i + 1]
        if c in (b" ", b"\t", b"\r", b"\n"):
            i += 1
        elif data.startswith(b"<?", i):
            end = data.find(b"?>", i + 2)
            if end < 0:
                return None
            i = end + 2
        elif data.startswith(b"<!--", i):
            end = data.find(b"-->", i + 4)
            if end < 0:
                return None
            i = end + 3
        elif data.startswith(b"<!DOCTYPE", i):
            return data.count(b"\n", 0, i) + 1
        else:
            return None
    return None


def has_dtd(tree: etree._ElementTree) -> bool:
    """Whether a parsed (or XSLT-produced) tree carries a DOCTYPE or any DTD subset."""
    docinfo = tree.docinfo
    return bool(docinfo.doctype) or docinfo.internalDTD is not None or docinfo.externalDTD is not None


def _check_depth(root: etree._Element, max_depth: int) -> None:
    depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > max_depth:
                raise DocumentNotWellFormed(f"XML nesting deeper than {max_depth} levels at line "
                                            f"{element.sourceline}; no trade document nests that deep",
                                            line=element.sourceline)
        else:
            depth -= 1


def parse(data: bytes, *, max_depth: int = MAX_DEPTH) -> etree._Element:
    """Parse document bytes and return the root element.

    Raises :class:`DocumentHasDtd` for any DOCTYPE and :class:`DocumentNotWellFormed` for
    anything libxml2 cannot parse (including references to undeclared entities) and for
    nesting beyond ``max_depth`` (``huge_tree`` lifts libxml2's own depth limit, and XSLT and
    schema validation recurse). Comments and processing instructions are kept: a document
    signature may cover them.
    """
    if isinstance(data, str):
        raise TypeError("documents are parsed from bytes, not str (the encoding must come from the XML)")
    data = bytes(data)
    line = doctype_line(data)
    if line is not None:
        raise DocumentHasDtd(line)
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as exc:
        raise DocumentNotWellFormed(f"not well-formed XML at line {exc.lineno}: {exc.msg}",
                                    line=exc.lineno or None) from None
    except ValueError as exc:          # e.g. an encoding declaration libxml2 does not support
        raise DocumentNotWellFormed(f"XML could not be parsed: {exc}") from None
    if has_dtd(root.getroottree()):
        raise DocumentHasDtd()
    _check_depth(root, max_depth)
    return root


class _WellFormedTarget:
    """Parser target that keeps nothing: it refuses a DOCTYPE and counts the depth."""

    def __init__(self, max_depth: int):
        self.max_depth, self.depth = max_depth, 0

    def start(self, tag, attrib, nsmap=None) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise DocumentNotWellFormed(f"elements are nested deeper than {self.max_depth} levels")

    def end(self, tag) -> None:
        self.depth -= 1

    def data(self, text) -> None:
        pass

    def doctype(self, *args) -> None:
        raise DocumentHasDtd()

    def close(self) -> None:
        return None


def check_well_formed(chunks: Iterable[bytes], *, max_depth: int = MAX_DEPTH) -> None:
    """What :func:`parse` checks (well-formed, no DTD, bounded nesting) for a document too
    large to hold as a tree: fed in chunks to a parser that builds nothing, so a gigabyte
    document costs a chunk of memory. Raises the same exceptions as :func:`parse`."""
    feeder = etree.XMLParser(target=_WellFormedTarget(max_depth), resolve_entities=False, load_dtd=False,
                             no_network=True, huge_tree=True)
    first = True
    try:
        for piece in chunks:
            if first:
                line = doctype_line(piece)
                if line is not None:
                    raise DocumentHasDtd(line)
                first = False
            feeder.feed(piece)
        feeder.close()
    except etree.XMLSyntaxError as exc:
        raise DocumentNotWellFormed(f"not well-formed XML at line {exc.lineno}: {exc.msg}",
                                    line=exc.lineno or None) from None
