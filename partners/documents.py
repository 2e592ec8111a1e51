"""Canonical trade documents: which schema each document type uses, and validation.

The national single window speaks one canonical format per document family; partners'
dialects are reached by per-partner mapping (``partners.mapping``). Validation runs at
submission (before mapping) and at reception (after mapping back to canonical), so both the
NSW and the partner's operator get an answer that names the element and line at fault.

Families and their schemas (all under ``partners/schemas/``, see its SOURCES.md):

* ``manifest``: GB/EU ICS safety-and-security entry summary declaration (CC315A, and its
  amendment CC313A), the WCO-Data-Model-derived ICS1 format, validated with HMRC's published
  schemas unmodified.
* ``ephyto``, ``vet-cert``: UN/CEFACT SPS Certificate 17 as-is (IPPC ePhyto hub, EU TRACES),
  validated with a self-contained *subset* schema (the shared D17A set is incomplete).
* ``eco``: preferential certificate of origin modelled on UN/CEFACT BSP Pref CoO (D23B).
* ``aeo``: AEO mutual-recognition operator list (full list or delta).

Pure: bytes in, exception or None out. Schemas are compiled once per process.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import threading
from pathlib import Path
from typing import Callable

from lxml import etree

from partners import xmldoc

SCHEMAS = Path(__file__).resolve().parent / "schemas"
SAMPLES = SCHEMAS / "samples"

SPS_NS = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
ECO_NS = "urn:swgw:canonical:eco:1"
AEO_NS = "urn:swgw:canonical:aeo:1"
ENS_315_NS = "http://ics.dgtaxud.ec/CC315A"
ENS_313_NS = "http://ics.dgtaxud.ec/CC313A"


class DocumentInvalid(ValueError):
    """A document does not conform to its canonical schema.

    ``element`` and ``line`` locate the first problem so an operator can fix it without a
    schema viewer; ``problems`` lists every problem libxml2 reported (capped).
    """

    def __init__(self, document_type: str, message: str, *, element: str | None = None,
                 line: int | None = None, problems: tuple[str, ...] = ()):
        self.document_type, self.element, self.line = document_type, element, line
        self.problems = problems or (message,)
        super().__init__(message)


class UnknownDocumentType(ValueError):
    """The document type has no canonical schema here (config names a type we do not know)."""


Rule = Callable[[etree._ElementTree], list[tuple[etree._Element, str]]]


@dataclass(frozen=True)
class DocumentType:
    """One canonical document type: its family, schema and allowed root elements."""
    name: str
    family: str
    schema: str                      # path relative to SCHEMAS
    roots: tuple[str, ...]           # Clark names of accepted root elements
    description: str
    samples: tuple[str, ...] = ()    # file names under SAMPLES, valid examples
    rules: tuple[Rule, ...] = field(default=(), compare=False)


def _sps_required(tree: etree._ElementTree) -> list[tuple[etree._Element, str]]:
    """SPS MIG essentials the subset schema cannot enforce (its SPSExchangedDocument is order-free)."""
    found = []
    for doc in tree.getroot().iterchildren(f"{{{SPS_NS}}}SPSExchangedDocument"):
        for child in ("ID", "TypeCode", "IssueDateTime"):
            if doc.find(f"{{{RAM_NS}}}{child}") is None:
                found.append((doc, f"Element 'SPSExchangedDocument': missing child element 'ram:{child}' "
                                   "(an SPS certificate needs its ID, TypeCode and IssueDateTime)"))
    return found


def _aeo_complete(tree: etree._ElementTree) -> list[tuple[etree._Element, str]]:
    """A full list, or an UPSERT in a delta, must carry the whole record; DELETE only in deltas."""
    ns = {"a": AEO_NS}
    root = tree.getroot()
    full = root.findtext("a:Header/a:ListTypeCode", namespaces=ns) == "FULL"
    found = []
    for op in root.iterfind("a:Operator", namespaces=ns):
        action = op.findtext("a:ActionCode", default="UPSERT", namespaces=ns)
        if action == "DELETE":
            if full:
                found.append((op, "Element 'Operator': ActionCode DELETE is only allowed in a DELTA list"))
            continue
        missing = [n for n in ("Name", "Address", "CertificateTypeCode", "StatusCode", "ValidFromDate")
                   if op.find(f"a:{n}", namespaces=ns) is None]
        if missing:
            found.append((op, f"Element 'Operator' ({op.findtext('a:OperatorID', namespaces=ns)}): missing "
                              f"{', '.join(missing)} (required unless ActionCode is DELETE)"))
    return found


_SPS = dict(family="sps", schema="sps/SPSCertificate_17p0_subset.xsd", roots=(f"{{{SPS_NS}}}SPSCertificate",),
            rules=(_sps_required,))

DOCUMENT_TYPES: dict[str, DocumentType] = {d.name: d for d in (
    DocumentType("manifest", "manifest", "manifest/manifest.xsd",
                 (f"{{{ENS_315_NS}}}CC315A", f"{{{ENS_313_NS}}}CC313A"),
                 "cargo manifest: ICS entry summary declaration CC315A (amendment CC313A)",
                 ("manifest-CC315A-reduced.xml", "manifest-CC315A-valid.xml", "manifest-315NoOptional.xml")),
    DocumentType(name="ephyto", description="phytosanitary e-certificate, UN/CEFACT SPS Certificate 17 (IPPC ePhyto)",
                 samples=("sps-ephyto-AR.xml", "sps-traces-CHEDPP.xml"), **_SPS),
    DocumentType(name="vet-cert", description="veterinary e-certificate, UN/CEFACT SPS Certificate 17 (EU TRACES)",
                 samples=("sps-traces-INTRA-EQUI.xml",), **_SPS),
    DocumentType("eco", "eco", "eco/eco.xsd", (f"{{{ECO_NS}}}PreferentialCertificateOfOrigin",),
                 "electronic preferential certificate of origin, modelled on UN/CEFACT BSP Pref CoO D23B",
                 ("eco-KE-SG.xml",)),
    DocumentType("aeo", "aeo", "aeo/aeo.xsd", (f"{{{AEO_NS}}}AEOOperatorList",),
                 "AEO mutual-recognition operator list (full or delta)",
                 ("aeo-full-KE.xml", "aeo-delta-KE.xml"), rules=(_aeo_complete,)),
)}


def document_type(name: str) -> DocumentType:
    try:
        return DOCUMENT_TYPES[name]
    except KeyError:
        raise UnknownDocumentType(f"no canonical schema for document type {name!r} "
                                  f"(known: {', '.join(sorted(DOCUMENT_TYPES))})") from None


def is_known(name: str) -> bool:
    return name in DOCUMENT_TYPES


# libxml2's schema compiler is not thread-safe (its first use sets up global type tables, and
# concurrent compiles fail with "xmlSchemaPValAttrNodeValue, the given type is not a built-in
# type"); the daemon validates in worker threads, so compiles are serialised here and the daemon
# compiles everything once at start (compile_all_schemas).
_COMPILE_LOCK = threading.Lock()


_PER_THREAD = threading.local()


def _schema(relative: str) -> etree.XMLSchema:
    """This thread's own compiled copy: an XMLSchema keeps its error_log on the object, so two
    threads validating with one instance read each other's errors (or an empty log)."""
    mine = _PER_THREAD.__dict__.setdefault("schemas", {})
    if relative not in mine:
        with _COMPILE_LOCK:
            mine[relative] = _load_schema(relative)
    return mine[relative]


def _load_schema(relative: str) -> etree.XMLSchema:
    # Schema files are local and trusted; imports resolve relative to each file, never the network.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(SCHEMAS / relative), parser))


def compile_all_schemas() -> None:
    """Compile every canonical schema, and signxml's, once in the starting thread: libxml2 sets
    up its global type tables on the first compile, which must not happen in two threads at once."""
    from signxml import XMLVerifier
    from signxml.xades import XAdESVerifier
    with _COMPILE_LOCK:
        for doc_type in DOCUMENT_TYPES.values():
            _load_schema(doc_type.schema)
        XMLVerifier.schemas()
        XAdESVerifier.schemas()


def _element_of(message: str) -> str | None:
    """libxml2 messages start with "Element '{ns}name'": pull out the local name."""
    if message.startswith("Element '"):
        name = message[len("Element '"):].split("'", 1)[0]
        return name.rsplit("}", 1)[-1].split("/")[0] if name else None
    return None


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def parse_document(document_type_name: str, xml_bytes: bytes) -> etree._ElementTree:
    """Parse with the hardened document parser (``partners.xmldoc``): DocumentInvalid, with the
    line, if the bytes are not well-formed or carry a DTD (any DOCTYPE is refused)."""
    try:
        return etree.ElementTree(xmldoc.parse(xml_bytes))
    except xmldoc.DocumentHasDtd as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise DocumentInvalid(document_type_name, f"{document_type_name}: {where}{exc}", line=exc.line) from None
    except xmldoc.DocumentNotWellFormed as exc:
        raise DocumentInvalid(document_type_name, f"{document_type_name}: {exc}", line=exc.line) from None


def validate_tree(document_type_name: str, tree: etree._ElementTree) -> None:
    """Validate an already parsed document (lets the mapping layer avoid a second parse)."""
    dtype = document_type(document_type_name)
    root = tree.getroot()
    if root.tag not in dtype.roots:
        expected = " or ".join(f"{_local(r)} in namespace {etree.QName(r).namespace}" for r in dtype.roots)
        raise DocumentInvalid(dtype.name, f"{dtype.name}: line {root.sourceline}: root element "
                              f"'{_local(root.tag)}' (namespace {etree.QName(root).namespace or 'none'}) is not a "
                              f"{dtype.name} document; expected {expected}",
                              element=_local(root.tag), line=root.sourceline)
    schema = _schema(dtype.schema)
    try:
        conforms = schema.validate(tree)
    except etree.XMLSchemaValidateError as exc:
        # libxml2 gives up on some trees (it did on entity-reference nodes before DTDs were
        # refused at parse time): a refusal with a reason, never an exception the pipelines
        # would turn into an HTTP 500.
        raise DocumentInvalid(dtype.name, f"{dtype.name}: the schema validator could not check this document "
                              f"({exc}); send it as plain XML without a DTD or entity references") from None
    if not conforms:
        errors = list(schema.error_log)
        first = errors[0]
        problems = tuple(f"line {e.line}: {e.message}" for e in errors[:20])
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise DocumentInvalid(dtype.name, f"{dtype.name}: line {first.line}: {first.message}{more}",
                              element=_element_of(first.message), line=first.line, problems=problems)
    for rule in dtype.rules:
        found = rule(tree)
        if found:
            element, message = found[0]
            raise DocumentInvalid(dtype.name, f"{dtype.name}: line {element.sourceline}: {message}",
                                  element=_local(element.tag), line=element.sourceline,
                                  problems=tuple(f"line {e.sourceline}: {m}" for e, m in found))


def validate_document(document_type_name: str, xml_bytes: bytes) -> None:
    """Check ``xml_bytes`` against the canonical schema of ``document_type_name``.

    Raises DocumentInvalid (message like ``manifest: line 12: Element 'TINPLD1': ...``) or
    UnknownDocumentType. Returns None when the document is valid.
    """
    document_type(document_type_name)
    validate_tree(document_type_name, parse_document(document_type_name, xml_bytes))


def sample(name: str) -> bytes:
    """A bundled sample document (tests, demo, ``swgw partners`` examples)."""
    return (SAMPLES / name).read_bytes()
