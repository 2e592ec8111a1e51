"""The document stage of both pipelines: canonical validation, per-partner mapping, and the
issuing authority's document-level signature.

Why a stage of its own: the AS4 layer proves which gateway carried a message; this stage makes
sure *what* it carried is a document the receiving single window can act on. Outbound, the
NSW's canonical document is validated against its schema (so the NSW hears about its own
mistakes, naming element and line), mapped to the partner's dialect, and signed by the issuing
authority where configured. Inbound, the document-level signature is checked on the bytes the
partner sent (before mapping changes them), then the document is mapped back to canonical and
validated, so the NSW only ever receives canonical documents.

Document types without a canonical schema (``partners.documents.is_known`` is false) pass
through unchanged: the gateway still carries them, it just cannot check them.

Pure apart from CPU: bytes in, bytes and step events out; the pipelines persist the events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from crypto.content import FileContent, Octets, as_bytes
from gateway.config import DocumentSignerConfig
from gateway.store.store import StepEvent
from partners import xmldoc
from partners.docsig import SignatureCheck, sign_document, verify_document
from partners.documents import DOCUMENT_TYPES, DocumentInvalid, is_known, validate_document
from partners.mapping import MappingError
from partners.pmode import PMode
from partners.registry import Partner


class InvalidDocument(ValueError):
    """The document does not conform to its canonical schema (or is not well-formed XML).

    ``element`` and ``line`` locate the first problem, for the operator who has to fix it.
    """

    def __init__(self, message: str, *, element: str | None = None, line: int | None = None):
        self.element, self.line = element, line
        super().__init__(message)


class MappingFailed(ValueError):
    """The document could not be mapped (stylesheet failure or untranslatable code).

    ``field`` is the XPath of the offending field when the mapping knows it.
    """

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class OutboundDocument:
    data: Octets                         # the document as the partner receives it
    events: tuple[StepEvent, ...]


@dataclass(frozen=True)
class InboundDocument:
    data: Octets                         # the canonical document for the NSW
    signature: SignatureCheck | None     # None for document types without a canonical schema
    events: tuple[StepEvent, ...]


class DocumentSigners:
    """The issuing authorities' keys per document type, loaded once at start (key files are
    mode-checked by ``crypto.keys``)."""

    def __init__(self, configs: Sequence[DocumentSignerConfig] = ()):
        self._keys = {c.document_type: c.load() for c in configs}

    def for_type(self, document_type: str):
        return self._keys.get(document_type)


def _invalid(exc: DocumentInvalid) -> InvalidDocument:
    # DocumentInvalid's message already reads "<type>: line N: Element 'X': ..." (libxml2).
    return InvalidDocument(f"invalid {exc}", element=exc.element, line=exc.line)


def _refused(exc: xmldoc.DocumentXmlRefused) -> InvalidDocument:
    """The hardened document parser's refusal (a DTD, not well-formed) as the stage's error."""
    where = f" (line {exc.line})" if exc.line else ""
    if isinstance(exc, xmldoc.DocumentHasDtd):
        return InvalidDocument(f"document refused{where}: {exc}", line=exc.line)
    return InvalidDocument(f"document is {exc}", line=exc.line)


def _mapping_failed(exc: MappingError) -> MappingFailed:
    field = exc.xpath
    text = str(exc)
    if field and field not in text:
        text += f" (field {field})"
    return MappingFailed(f"mapping failed: {text}", field=field)


def prepare_outbound(partner: Partner, pmode: PMode, document_type: str, document: Octets,
                     signers: DocumentSigners | None = None) -> OutboundDocument:
    """Canonical document from the NSW -> the bytes to pack for ``partner``.

    Raises InvalidDocument (the NSW must fix its document) or MappingFailed (the partner's
    mapping cannot express it: the message is rejected with the field named).
    """
    if not is_known(document_type):
        if "xml" in pmode.mime_type:
            try:
                if isinstance(document, FileContent):
                    xmldoc.check_well_formed(document.chunks())   # too large for a tree
                else:
                    xmldoc.parse(document)
            except xmldoc.DocumentXmlRefused as exc:
                raise _refused(exc) from None
        return OutboundDocument(document, (
            StepEvent("validate", "ok", f"{len(document)} bytes, well-formed {pmode.mime_type} "
                      f"(no canonical schema for {document_type!r})"),
            StepEvent("map", "ok", f"none: {document_type!r} is not a canonical document type, sent as-is")))
    # A canonical document is validated, mapped and signed as one tree, so it is in memory
    # whatever its size (payloads too large for that travel as non-canonical types).
    document = as_bytes(document)
    try:
        validate_document(document_type, document)
    except DocumentInvalid as exc:
        raise _invalid(exc) from None
    events = [StepEvent("validate", "ok", f"{len(document)} bytes, valid {document_type} "
                        f"({DOCUMENT_TYPES[document_type].description})")]
    data = _map(partner, document_type, "out", document, events)
    authority = signers.for_type(document_type) if signers else None
    if authority is not None:
        key, cert = authority
        xades = pmode.document_signature == "xades"
        try:
            data = sign_document(data, key, cert, xades=xades)
        except xmldoc.DocumentXmlRefused as exc:
            # Validation refused DTDs in the NSW's document and the mapping refuses them in its
            # output, so only a stylesheet emitting raw markup gets here.
            raise MappingFailed(f"mapping failed: the mapped document cannot be signed: {exc}") from None
        events.append(StepEvent("docsig", "signed", f"{'XAdES-BES' if xades else 'enveloped XML-DSig'} "
                                f"signature of issuing authority {cert.subject.rfc4514_string()}"))
    return OutboundDocument(data, tuple(events))


def _map(partner: Partner, document_type: str, direction: str, data: bytes,
         events: list[StepEvent]) -> bytes:
    """Apply the partner's mapping for ``direction`` ("out": canonical -> partner's dialect,
    "in": the reverse) and record the step; MappingFailed names the field that failed."""
    if partner.mappings is None:
        events.append(StepEvent("map", "ok", f"identity (partner {partner.id} has no mappings)"))
        return data
    try:
        mapped = partner.mappings.transform(document_type, direction, data)
    except MappingError as exc:
        raise _mapping_failed(exc) from None
    events.append(StepEvent("map", "ok", partner.mappings.describe(document_type, direction)))
    return mapped


def accept_inbound(partner: Partner, pmode: PMode, document_type: str, data: Octets) -> InboundDocument:
    """Document as the partner sent it -> canonical document for the NSW, with the verdict on
    its document-level signature.

    Raises InvalidDocument or MappingFailed; the pipeline answers EBMS:0004 and delivers nothing.
    """
    if not is_known(document_type):
        return InboundDocument(data, None, (
            StepEvent("validate", "skipped", f"no canonical schema for {document_type!r}; delivered as received"),))
    data = as_bytes(data)       # checked and mapped as one tree (see prepare_outbound)
    # The signature covers the bytes as the partner received them from the issuer: check it
    # before mapping changes them.
    try:
        check = verify_document(data, partner.issuing_authorities, xades=pmode.document_signature == "xades")
    except xmldoc.DocumentHasDtd as exc:
        raise _refused(exc) from None
    events = [StepEvent("docsig", check.status, check.summary())]
    canonical = _map(partner, document_type, "in", data, events)
    try:
        validate_document(document_type, canonical)
    except DocumentInvalid as exc:
        raise _invalid(exc) from None
    events.append(StepEvent("validate", "ok", f"{len(canonical)} bytes, valid canonical {document_type}"))
    return InboundDocument(canonical, check, tuple(events))
