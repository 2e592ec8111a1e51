"""Inbound pipeline: AS4 POST body -> parsed, authenticated, decrypted, verified, de-duplicated,
stored as evidence, delivered to the NSW, answered with a signed receipt.

Blocking work; the HTTP resource runs it off the reactor thread. Every failure becomes an
ebMS error signal with the code the partner's software understands and a description the
partner's operator can act on.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from lxml import etree
from twisted.logger import Logger

from crypto import (AlgorithmNotAllowed, DecryptionError, IncompleteSignature, Part, SecurityError,
                    decrypt_parts, sign_message, verify_message)
from gateway import as4
from gateway.connectors.folder import FolderConnector
from gateway.identity import LocalIdentity
from gateway.store.store import DELIVERED, DuplicateMessage, MessageStore, PayloadData, StepEvent
from partners.registry import PartnerRegistry

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
MAX_DECOMPRESSED = 512 * 1024 * 1024
log = Logger()


@dataclass(frozen=True)
class Response:
    code: int
    content_type: str
    body: bytes


def _fail(code: str, description: str, ref: str | None = None) -> as4.EbmsException:
    return as4.EbmsException(as4.make_error(code, description, ref))


class InboundPipeline:
    def __init__(self, identity: LocalIdentity, registry: Callable[[], PartnerRegistry],
                 store: MessageStore, connector: FolderConnector):
        self.identity = identity
        self.registry = registry
        self.store = store
        self.connector = connector

    # -- answers -----------------------------------------------------------------
    def _signed(self, envelope: etree._Element) -> bytes:
        sign_message(envelope, [], self.identity.signing_key, self.identity.signing_cert)
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def _error_response(self, error: as4.EbmsError) -> Response:
        signal = as4.ErrorSignal(message_id=as4.new_message_id(self.identity.party_id.lower() + ".swgw"),
                                 timestamp=dt.datetime.now(dt.timezone.utc),
                                 ref_to_message_id=error.ref_to_message_id, errors=(error,))
        return Response(200, SOAP_CONTENT_TYPE, self._signed(as4.build_error(signal)))

    def _stored_answer(self, partner_id: str, message_id: str) -> Response | None:
        previous = self.store.find_inbound(partner_id, message_id)
        if previous is None or previous.receipt is None:
            return None
        self.store.add_event(previous.id, "duplicate", "answered",
                             "same MessageId received again; previous receipt re-sent, not delivered again")
        return Response(200, previous.receipt.content_type, self.store.blob(previous.receipt.digest))

    # -- pipeline ----------------------------------------------------------------
    def process(self, content_type: str, body: bytes) -> Response:
        """Handle one POSTed AS4 message; never raises for bad input, answers an ebMS error."""
        try:
            return self._process(content_type, body)
        except as4.EbmsException as exc:
            log.warn("inbound message rejected: {code} {detail}", code=exc.error.error_code,
                     detail=exc.error.description, message_id=exc.error.ref_to_message_id)
            return self._error_response(exc.error)

    def _process(self, content_type: str, body: bytes) -> Response:
        received_at = dt.datetime.now(dt.timezone.utc)
        soap, mime_parts = as4.decode_message(content_type, body)
        envelope = as4.parse_xml(soap)
        parsed = as4.parse_envelope(envelope)
        um = parsed.user_message
        if um is None:
            raise _fail("EBMS:0002", "this gateway returns receipts synchronously and does not accept "
                        "pushed signal messages; send only UserMessages to this endpoint")
        mid = um.message_id
        registry = self.registry()
        sender = um.from_party.party_ids[0]
        partner = registry.by_party_id(sender.value, sender.type)
        if partner is None:
            raise _fail("EBMS:0010", f"sender party {sender.value!r} (type {sender.type}) is not a partner "
                        f"of {self.identity.party_id}; ask its operator to onboard you", mid)
        to = um.to_party.party_ids[0]
        if (to.value, to.type or None) != (self.identity.party_id, self.identity.party_id_type or None):
            raise _fail("EBMS:0010", f"message is addressed to {to.value!r}, but this gateway is "
                        f"{self.identity.party_id!r}", mid)
        pmode = partner.pmode_for_message(um.agreement_ref, um.service, um.action)
        if pmode is None:
            raise _fail("EBMS:0010", f"no PMode of partner {partner.id} matches agreement "
                        f"{um.agreement_ref!r}, service {um.service!r}, action {um.action!r}", mid)

        parts = [Part(content_id=p.content_id, mime_type=p.content_type, data=p.data) for p in mime_parts]
        events = [StepEvent("receive", "ok", f"{len(body)} bytes from {partner.id}, {len(parts)} attachment(s)"),
                  StepEvent("pmode", "ok", f"matched PMode {pmode.id}")]
        try:
            parts = decrypt_parts(envelope, parts, self.identity.encryption_key)
        except DecryptionError:
            raise _fail("EBMS:0102", "attachments could not be decrypted: the key transport or the ciphertext "
                        "is not valid for our encryption certificate (wrong certificate, or altered in "
                        "transit)", mid) from None
        except AlgorithmNotAllowed as exc:
            raise _fail("EBMS:0103", str(exc), mid) from None
        if pmode.security.encrypt and mime_parts and not any(True for _ in envelope.iter(
                "{http://www.w3.org/2001/04/xmlenc#}EncryptedData")):
            raise _fail("EBMS:0103", f"PMode {pmode.id} requires encrypted payloads, the message is not encrypted", mid)
        events.append(StepEvent("decrypt", "ok", f"{len(parts)} attachment(s)"))
        try:
            verified = verify_message(envelope, parts, partner.signing_certs)
        except (AlgorithmNotAllowed, IncompleteSignature) as exc:
            raise _fail("EBMS:0103", str(exc), mid) from None
        except SecurityError as exc:
            raise _fail("EBMS:0101", str(exc), mid) from None
        events.append(StepEvent("verify", "ok", f"signed by {verified.signer.subject.rfc4514_string()}, "
                                f"{len(verified.references)} references"))
        # Duplicate check only after verification: a tampered copy of a delivered message must
        # get an error, not the original's receipt.
        previous = self._stored_answer(partner.id, mid)
        if previous is not None:
            return previous

        by_cid = {p.content_id: p for p in parts}
        payloads: list[PayloadData] = []
        for info in um.payloads:
            part = by_cid.get(info.content_id or "")
            if part is None:
                raise _fail("EBMS:0011", f"PayloadInfo refers to {info.href!r} but no such MIME part was sent", mid)
            data = part.data
            if info.compression_type:
                if info.compression_type != "application/gzip":
                    raise _fail("EBMS:0303", f"compression {info.compression_type!r} is not supported; "
                                "use application/gzip", mid)
                data = as4.gzip_decompress(data, max_size=MAX_DECOMPRESSED)
            payloads.append(PayloadData(part.content_id, info.mime_type or "application/octet-stream", data))
        if payloads:
            events.append(StepEvent("decompress", "ok", ", ".join(f"{p.content_id}: {len(p.data)} bytes"
                                                                  for p in payloads)))

        receipt = as4.Receipt(message_id=as4.new_message_id(self.identity.party_id.lower() + ".swgw"),
                              timestamp=dt.datetime.now(dt.timezone.utc), ref_to_message_id=mid)
        receipt_bytes = self._signed(as4.build_receipt(receipt, verified.references))
        props = {p.name: p.value for p in um.message_properties}
        reference = props.get("nswReference")
        for index, payload in enumerate(payloads):
            path = self.connector.deliver(
                partner_id=partner.id, sender_party=sender.value,
                message_id=mid if index == 0 else f"{mid}#{index}", reference=reference,
                document_type=pmode.document_type, received_at=as4.format_timestamp(received_at),
                document=payload.data, mime_type=payload.mime_type, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id)
            events.append(StepEvent("deliver", "ok", f"NSW inbox {path.name}"))
        events.append(StepEvent("receipt", "sent", f"signed receipt {receipt.message_id} with "
                                f"{len(verified.references)} NRI references"))
        try:
            self.store.record_inbound(
                message_id=mid, partner_id=partner.id, document_type=pmode.document_type, pmode_id=pmode.id,
                nsw_reference=reference, conversation_id=um.conversation_id,
                ref_to_message_id=um.ref_to_message_id, status=DELIVERED, content_type=content_type,
                raw=body, receipt=receipt_bytes, receipt_content_type=SOAP_CONTENT_TYPE, error=None,
                receipt_message_id=receipt.message_id,
                payloads=payloads, events=events)
        except DuplicateMessage:
            # A concurrent copy won the race; the inbox file is the same one (named by MessageId).
            return self._stored_answer(partner.id, mid) or Response(200, SOAP_CONTENT_TYPE, receipt_bytes)
        log.info("received {message_id} from {partner}", message_id=mid, partner=partner.id)
        return Response(200, SOAP_CONTENT_TYPE, receipt_bytes)
