"""Per-partner document mapping: XSLT 1.0 stylesheets (lxml) with code-list extension functions.

Layout of a partner folder::

    conf/partners/<id>/mappings/<document_type>.out.xsl   canonical -> partner dialect
    conf/partners/<id>/mappings/<document_type>.in.xsl    partner dialect -> canonical
    conf/partners/<id>/mappings/codelists/<kind>.csv      code translation tables
    conf/partners/<id>/mappings/fixtures/...              see partners.mapping.fixtures

No stylesheet for a (document type, direction) means identity: the bytes pass unchanged, which
is what a partner speaking the canonical standard as-is wants (evidence stays byte-identical).

Stylesheets call code lists as XSLT extension functions in namespace ``urn:swgw:codelists``::

    <xsl:stylesheet ... xmlns:cl="urn:swgw:codelists" extension-element-prefixes="cl">
      <xsl:value-of select="cl:translate('country', eco:CountryID)"/>   direction of this stylesheet
      <xsl:value-of select="cl:check('unlocode', eco:ID)"/>             reference-list check only

An untranslatable code, an ``xsl:message terminate="yes"`` or any XSLT failure raises
MappingError naming the partner, document type, direction, and (for codes) the XPath of the
field and the code, so the message can be put in ``rejected`` with that text.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from lxml import etree

from partners import xmldoc
from partners.configfile import ConfigError
from partners.mapping.codelists import DIRECTIONS, IN, OUT, CodeLists, UntranslatableCode, load_code_lists

CL_NS = "urn:swgw:codelists"


class MappingError(ValueError):
    """A document could not be mapped; the message says which field and why."""

    def __init__(self, message: str, *, partner_id: str, document_type: str, direction: str,
                 xpath: str | None = None, code: str | None = None, kind: str | None = None):
        self.partner_id, self.document_type, self.direction = partner_id, document_type, direction
        self.xpath, self.code, self.kind = xpath, code, kind
        super().__init__(message)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def node_path(node: Any) -> str | None:
    """A readable XPath (prefix:name[index]) of an element or attribute result, for error messages."""
    attr = None
    if isinstance(node, etree._ElementUnicodeResult) or (isinstance(node, str) and hasattr(node, "getparent")):
        if getattr(node, "is_attribute", False):
            attr = node.attrname
        node = node.getparent()
    if not isinstance(node, etree._Element):
        return None
    steps = []
    while node is not None and isinstance(node.tag, str):
        q = etree.QName(node)
        prefix = node.prefix
        name = f"{prefix}:{q.localname}" if prefix else q.localname
        parent = node.getparent()
        if parent is not None:
            same = [s for s in parent.iterchildren(node.tag)]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    path = "/" + "/".join(reversed(steps))
    if attr:
        q = etree.QName(attr)
        path += f"/@{q.localname}"
    return path


def _value_and_path(context: Any, value: Any) -> tuple[str, str | None]:
    if isinstance(value, list):
        if not value:
            return "", node_path(context.context_node)
        first = value[0]
        text = first.text or "" if isinstance(first, etree._Element) else str(first)
        return text, node_path(first)
    return str(value), node_path(context.context_node)


@dataclass(frozen=True)
class _Stylesheet:
    document_type: str
    direction: str
    path: Path


class _CodeError(Exception):
    """Carries an UntranslatableCode plus where it happened, through libxslt back to us."""

    def __init__(self, error: UntranslatableCode, xpath: str | None):
        self.error, self.xpath = error, xpath
        super().__init__(str(error))


@dataclass
class PartnerMappings:
    """The mappings of one partner: call ``outbound``/``inbound`` from the pipelines (any thread)."""
    partner_id: str
    folder: Path
    stylesheets: Mapping[tuple[str, str], Path]
    codelists: CodeLists
    # The stylesheet bytes as read and validated at load: threads compile from these, never from the
    # file again, so an edit on disk only takes effect with a reload (which validates it first).
    sources: Mapping[tuple[str, str], bytes] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    # -- public API ----------------------------------------------------------------
    def has_mapping(self, document_type: str, direction: str) -> bool:
        return (document_type, direction) in self.stylesheets

    def outbound(self, document_type: str, xml_bytes: bytes) -> bytes:
        """Canonical -> partner dialect; identity (same bytes) when no stylesheet exists."""
        return self.transform(document_type, OUT, xml_bytes)

    def inbound(self, document_type: str, xml_bytes: bytes) -> bytes:
        """Partner dialect -> canonical; identity (same bytes) when no stylesheet exists."""
        return self.transform(document_type, IN, xml_bytes)

    def describe(self, document_type: str, direction: str) -> str:
        """One line for the message trace (the ``map`` event)."""
        path = self.stylesheets.get((document_type, direction))
        if path is None:
            return f"identity mapping (partner {self.partner_id} takes canonical {document_type} as-is)"
        return f"{path.relative_to(self.folder)} ({self.partner_id}, {document_type}, {direction})"

    def transform(self, document_type: str, direction: str, xml_bytes: bytes) -> bytes:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'out' or 'in', got {direction!r}")
        if (document_type, direction) not in self.stylesheets:
            return xml_bytes
        where = f"{self.partner_id} {document_type} {direction}"
        try:
            doc = xmldoc.parse(xml_bytes)      # the hardened document parser: refuses any DTD
        except xmldoc.DocumentXmlRefused as exc:
            raise MappingError(f"{where}: input refused: {exc}" if isinstance(exc, xmldoc.DocumentHasDtd)
                               else f"{where}: input is {exc}", partner_id=self.partner_id,
                               document_type=document_type, direction=direction) from None
        xslt = self._compiled(document_type, direction)
        try:
            result = xslt(doc)
        except _CodeError as exc:
            err = exc.error
            raise MappingError(
                f"{where}: untranslatable {err.kind} code {err.code!r} at {exc.xpath or '?'}: {err.reason}",
                partner_id=self.partner_id, document_type=document_type, direction=direction,
                xpath=exc.xpath, code=err.code, kind=err.kind) from None
        except etree.XSLTApplyError as exc:
            messages = [e.message for e in xslt.error_log] or [str(exc)]
            raise MappingError(f"{where}: stylesheet {self.stylesheets[(document_type, direction)].name} "
                               f"failed: {'; '.join(messages)}", partner_id=self.partner_id,
                               document_type=document_type, direction=direction) from None
        if result.getroot() is None:
            raise MappingError(f"{where}: stylesheet produced no root element", partner_id=self.partner_id,
                               document_type=document_type, direction=direction)
        # bytes(result) honours the stylesheet's xsl:output (encoding, indentation).
        output = bytes(result)
        if xmldoc.has_dtd(result) or xmldoc.doctype_line(output) is not None:
            raise MappingError(f"{where}: stylesheet {self.stylesheets[(document_type, direction)].name} "
                               f"produced a DOCTYPE ({xmldoc.DTD_REFUSED} from the stylesheet's output: drop "
                               "doctype-system/doctype-public from its xsl:output)", partner_id=self.partner_id,
                               document_type=document_type, direction=direction)
        return output

    # -- internals -----------------------------------------------------------------
    def _compiled(self, document_type: str, direction: str) -> etree.XSLT:
        # XSLT objects are compiled per thread: the pipelines run in Twisted's thread pool and
        # lxml documents its XSLT objects as not shareable across threads while running.
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        key = (document_type, direction)
        if key not in cache:
            path = self.stylesheets[key]
            try:
                source = self.sources[key]
            except KeyError:
                raise MappingError(f"{self.partner_id} {document_type} {direction}: stylesheet {path.name} "
                                   f"was not loaded", partner_id=self.partner_id, document_type=document_type,
                                   direction=direction) from None
            try:
                cache[key] = compile_source(source, path, self.codelists, direction)
            except (etree.LxmlError, OSError) as exc:
                raise MappingError(f"{self.partner_id} {document_type} {direction}: stylesheet {path} "
                                   f"does not compile: {exc}", partner_id=self.partner_id,
                                   document_type=document_type, direction=direction) from None
        return cache[key]


def _extensions(codelists: CodeLists, direction: str) -> dict:
    def translate(context, kind, value):
        text, path = _value_and_path(context, value)
        try:
            return codelists.translate(str(kind), text, direction)
        except UntranslatableCode as exc:
            raise _CodeError(exc, path) from None

    def check(context, kind, value):
        text, path = _value_and_path(context, value)
        try:
            return codelists.check(str(kind), text)
        except UntranslatableCode as exc:
            raise _CodeError(exc, path) from None

    return {(CL_NS, "translate"): translate, (CL_NS, "check"): check}


def compile_stylesheet(path: Path, codelists: CodeLists, direction: str) -> etree.XSLT:
    """Compile one stylesheet file with the code-list functions bound; no file or network access from XSLT."""
    return compile_source(Path(path).read_bytes(), path, codelists, direction)


def compile_source(source: bytes, path: Path, codelists: CodeLists, direction: str) -> etree.XSLT:
    """Compile stylesheet bytes (read from ``path``, kept as base URL) with the code-list functions bound."""
    access = etree.XSLTAccessControl.DENY_ALL
    tree = etree.ElementTree(etree.fromstring(source, _parser(), base_url=str(path)))
    return etree.XSLT(tree, extensions=_extensions(codelists, direction), access_control=access)


def _declared_doctype(source: bytes) -> str | None:
    """Which ``xsl:output`` attribute would give the stylesheet's output a DOCTYPE, if any."""
    root = etree.fromstring(source, _parser())
    for output in root.iterfind("{http://www.w3.org/1999/XSL/Transform}output"):
        for name in ("doctype-system", "doctype-public"):
            if output.get(name) is not None:
                return f'{name}="{output.get(name)}"'
    return None


def load_mappings(partner_folder: str | Path, partner_id: str | None = None) -> PartnerMappings:
    """Load and compile ``<partner_folder>/mappings``; ConfigError lists every problem.

    A partner without a ``mappings`` folder gets identity mappings for everything.
    """
    folder = Path(partner_folder)
    partner_id = partner_id or folder.name
    problems, stylesheets = collect_mappings(folder, partner_id)
    if problems:
        raise ConfigError(problems)
    return stylesheets


def collect_mappings(folder: Path, partner_id: str) -> tuple[list[str], PartnerMappings]:
    """Like load_mappings, but returns the problems instead of raising (for the registry loader)."""
    mdir = folder / "mappings"
    codelists, problems = load_code_lists(mdir / "codelists")
    sheets: dict[tuple[str, str], Path] = {}
    sources: dict[tuple[str, str], bytes] = {}
    if mdir.is_dir():
        for path in sorted(mdir.glob("*.xsl")):
            parts = path.name[: -len(".xsl")].rsplit(".", 1)
            if len(parts) != 2 or parts[1] not in DIRECTIONS or not parts[0]:
                problems.append(f"{path}: stylesheet names are <document_type>.out.xsl or <document_type>.in.xsl")
                continue
            try:
                source = path.read_bytes()          # read once: what is validated is what runs
                compile_source(source, path, codelists, parts[1])
            except (etree.XMLSyntaxError, etree.XSLTParseError, OSError) as exc:
                detail = getattr(exc, "error_log", None)
                msgs = "; ".join(f"line {e.line}: {e.message}" for e in detail) if detail else str(exc)
                problems.append(f"{path}: not a valid XSLT 1.0 stylesheet: {msgs or exc}")
                continue
            doctype = _declared_doctype(source)
            if doctype:
                problems.append(f"{path}: its xsl:output declares {doctype}, which puts a DOCTYPE into the mapped "
                                f"document; {xmldoc.DTD_REFUSED} (drop the attribute)")
                continue
            sheets[(parts[0], parts[1])] = path
            sources[(parts[0], parts[1])] = source
    return problems, PartnerMappings(partner_id, folder, MappingProxyType(sheets), codelists,
                                     MappingProxyType(sources))
