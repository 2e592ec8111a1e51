"""Resolving ``eb:PartInfo`` references to payload bytes: MIME attachments and SOAP Body content.

Pure functions over the parsed header, the (already decrypted) attachments and the
``env:Body`` element, so the inbound pipeline can hand them exactly what the signature
covered. Each failure names the PartInfo so the sender's operator can find it:

* EBMS:0011 ExternalPayloadError: a PartInfo points at a MIME part or Body element that
  the message does not contain;
* EBMS:0007 MimeInconsistency: an attachment no PartInfo accounts for (it could smuggle
  content past the business layer);
* EBMS:0003 ValueInconsistent: ambiguous or contradictory Body references;
* EBMS:0303 DecompressionFailure: bad gzip, an unknown CompressionType, or payloads that
  together decompress beyond the configured bound (a gzip bomb spread over parts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from .compression import gzip_decompress
from .errors import EbmsException
from .model import PartInfo, UserMessage
from .namespaces import GZIP_MIME_TYPE, WSU_ID, XML_NS

__all__ = ["ResolvedPayload", "check_attachment_refs", "resolve_payloads", "BODY_CONTENT_ID"]

#: Name under which a payload carried as the whole SOAP Body content is stored/delivered.
BODY_CONTENT_ID = "soap-body"
_ID_ATTRIBUTES = (WSU_ID, "Id", "ID", f"{{{XML_NS}}}id")


@dataclass(frozen=True)
class ResolvedPayload:
    """One business payload, decompressed, ready for the NSW."""

    part_info: PartInfo
    content_id: str
    """Attachment Content-ID, the ``#id`` of a Body element, or :data:`BODY_CONTENT_ID`."""
    mime_type: str
    data: bytes

    @property
    def in_body(self) -> bool:
        return self.part_info.in_body


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower() or "application/octet-stream"


def _lookup_attachment(info: PartInfo, attachments: Mapping[str, object]) -> str | None:
    """Content-ID key in ``attachments`` for a cid: PartInfo (URL-decoded or as sent)."""
    cid = info.content_id
    if cid is not None and cid in attachments:
        return cid
    raw = (info.href or "")[4:]
    return raw if raw in attachments else None


def check_attachment_refs(um: UserMessage, attachment_ids: set[str] | frozenset[str]) -> None:
    """Cheap structural check before any crypto: every ``cid:`` PartInfo has its MIME part.

    Raises EBMS:0011 naming the missing Content-ID. Run early so a message that lost an
    attachment on the way gets this precise answer rather than a decryption failure.
    """
    present = {cid: None for cid in attachment_ids}
    for info in um.payloads:
        if info.content_id is not None and _lookup_attachment(info, present) is None:
            raise EbmsException.of(
                "EBMS:0011",
                f"PartInfo {info.href} refers to a MIME part that is not in the message; "
                "send the attachment with exactly that Content-ID (without angle brackets in the href)",
                um.message_id,
            )


def _ids(el: etree._Element) -> list[str]:
    return [v for a in _ID_ATTRIBUTES if (v := el.get(a))]


def _serialize(el: etree._Element) -> bytes:
    # tostring of a sub-element carries the in-scope namespace declarations it needs, so
    # the NSW gets a standalone, well-formed document.
    return etree.tostring(el, encoding="UTF-8", xml_declaration=True)


def _body_payload(info: PartInfo, body: etree._Element, mid: str) -> tuple[str, bytes]:
    elements = [c for c in body if isinstance(c.tag, str)]
    if info.href is None or info.href[1:] in _ids(body):
        if len(elements) != 1:
            what = "is empty" if not elements else f"holds {len(elements)} elements"
            code = "EBMS:0011" if not elements else "EBMS:0003"
            raise EbmsException.of(
                code,
                f"PartInfo {info.href or '(no href)'} names the SOAP Body as payload, but the Body {what}; "
                "put exactly one document element in the Body, or reference it by '#id'",
                mid,
            )
        return (info.href or BODY_CONTENT_ID), _serialize(elements[0])
    wanted = info.href[1:]
    hits = [el for el in body.iter() if isinstance(el.tag, str) and el is not body and wanted in _ids(el)]
    if not hits:
        raise EbmsException.of(
            "EBMS:0011",
            f"PartInfo {info.href} refers to no element of the SOAP Body; the Body element "
            "carrying that id is missing",
            mid,
        )
    if len(hits) > 1:
        raise EbmsException.of(
            "EBMS:0003", f"PartInfo {info.href} is ambiguous: {len(hits)} Body elements carry that id", mid
        )
    return info.href, _serialize(hits[0])


def resolve_payloads(
    um: UserMessage,
    attachments: Mapping[str, tuple[str, bytes]],
    body: etree._Element,
    *,
    max_decompressed: int,
) -> list[ResolvedPayload]:
    """Map every PartInfo of ``um`` to its decompressed payload, in PartInfo order.

    ``attachments`` maps Content-ID to (content type, decrypted bytes); ``body`` is the
    env:Body element (the signed one). ``max_decompressed`` bounds the total size of all
    payloads after decompression.
    """
    mid = um.message_id
    out: list[ResolvedPayload] = []
    used: set[str] = set()
    budget = max_decompressed
    body_referenced = False
    for info in um.payloads:
        if info.in_body:
            body_referenced = True
            if info.compression_type:
                raise EbmsException.of(
                    "EBMS:0003",
                    f"PartInfo {info.href or '(no href)'} is in the SOAP Body but declares CompressionType "
                    f"{info.compression_type!r}; AS4 compresses attachments only",
                    mid,
                )
            name, data = _body_payload(info, body, mid)
            mime = info.mime_type or "application/xml"
        else:
            key = _lookup_attachment(info, attachments)
            if key is None:
                raise EbmsException.of(
                    "EBMS:0011", f"PartInfo {info.href} refers to a MIME part that is not in the message", mid
                )
            used.add(key)
            content_type, data = attachments[key]
            name = key
            if info.compression_type:
                if info.compression_type.strip().lower() != GZIP_MIME_TYPE:
                    raise EbmsException.of(
                        "EBMS:0303",
                        f"PartInfo {info.href} CompressionType {info.compression_type!r} is not supported; "
                        f"AS4 defines only {GZIP_MIME_TYPE}",
                        mid,
                    )
                try:
                    data = gzip_decompress(data, max_size=budget)
                except EbmsException as exc:
                    detail = exc.error.description
                    if "exceeds the limit" in detail:
                        detail = (f"decompressed payloads exceed this gateway's limit of {max_decompressed} bytes "
                                  "for all payloads of one message together; split the document or send less")
                    raise EbmsException.of("EBMS:0303", f"attachment {info.href}: {detail}", mid) from None
                mime = info.mime_type or "application/octet-stream"
            else:
                mime = info.mime_type or _media_type(content_type)
        if len(data) > budget:
            raise EbmsException.of(
                "EBMS:0303" if info.compression_type else "EBMS:0004",
                f"payloads of this message exceed the limit of {max_decompressed} bytes in total",
                mid,
            )
        budget -= len(data)
        out.append(ResolvedPayload(info, name, mime, data))
    unused = sorted(set(attachments) - used)
    if unused:
        raise EbmsException.of(
            "EBMS:0007",
            f"MIME part(s) {', '.join('<' + c + '>' for c in unused)} not referenced by any PartInfo; "
            "every attachment must be listed in eb:PayloadInfo",
            mid,
        )
    if not body_referenced and any(isinstance(c.tag, str) for c in body):
        raise EbmsException.of(
            "EBMS:0003",
            "the SOAP Body carries content but no PartInfo refers to it; reference it with a PartInfo "
            "without href (or href '#id'), or leave the Body empty",
            mid,
        )
    return out
