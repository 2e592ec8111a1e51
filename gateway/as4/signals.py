"""Builders for ebMS signal messages (AS4 receipts and error signals) and NRI helpers.

A receipt proves what the receiver got: it quotes the ``ds:Reference`` elements of the
signature it verified (ebBP NonRepudiationInformation), which the sender compares with
what it signed (:func:`nri_digests`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

from lxml import etree

from .envelope import add_message_info, new_envelope, sub
from .errors import EbmsException
from .model import ErrorSignal, Receipt
from .namespaces import DS_NS, EBBP_NS, XML_LANG, ds, eb, ebbp
from .timestamps import format_timestamp

__all__ = ["build_receipt", "build_error", "nri_digests"]


def build_receipt(
    receipt: Receipt,
    nri_references: Sequence[etree._Element],
    *,
    user_message: etree._Element | None = None,
    messaging_id: str | None = None,
    body_id: str | None = None,
) -> etree._Element:
    """Build the envelope of an AS4 receipt for ``receipt.ref_to_message_id``.

    With references (the normal, signed case) the receipt holds
    ``ebbp:NonRepudiationInformation`` with one ``ebbp:MessagePartNRInformation`` per
    ``ds:Reference`` (deep-copied). Without references, AS4 (sec 5.1.8) asks for a copy
    of the received ``eb:UserMessage``; pass it as ``user_message``.
    """
    refs = list(nri_references)
    for r in refs:
        if r.tag != ds("Reference"):
            raise ValueError(f"NRI references must be ds:Reference elements, got {r.tag}")
    if not refs and user_message is None:
        raise ValueError("a receipt needs ds:Reference elements or a copy of the eb:UserMessage")
    if refs and user_message is not None:
        raise ValueError("give either NRI references or a UserMessage copy, not both")

    root, _h, messaging, _body = new_envelope(messaging_id=messaging_id, body_id=body_id)
    sig = sub(messaging, eb("SignalMessage"))
    add_message_info(
        sig,
        receipt.message_id,
        format_timestamp(receipt.timestamp),
        receipt.ref_to_message_id,
    )
    rc = sub(sig, eb("Receipt"))
    if refs:
        nri = etree.SubElement(rc, ebbp("NonRepudiationInformation"), nsmap={"ebbp": EBBP_NS, "ds": DS_NS})
        for r in refs:
            part = etree.SubElement(nri, ebbp("MessagePartNRInformation"))
            part.append(copy.deepcopy(r))
    else:
        assert user_message is not None
        rc.append(copy.deepcopy(user_message))
    return root


def build_error(
    signal: ErrorSignal, *, messaging_id: str | None = None, body_id: str | None = None
) -> etree._Element:
    """Build the envelope of an ebMS error signal with one ``eb:Error`` per error."""
    root, _h, messaging, _body = new_envelope(messaging_id=messaging_id, body_id=body_id)
    sig = sub(messaging, eb("SignalMessage"))
    add_message_info(
        sig, signal.message_id, format_timestamp(signal.timestamp), signal.ref_to_message_id
    )
    for e in signal.errors:
        el = sub(
            sig,
            eb("Error"),
            errorCode=e.error_code,
            severity=e.severity,
            category=e.category,
            shortDescription=e.short_description,
            refToMessageInError=e.ref_to_message_id,
            origin=e.origin,
        )
        if e.description:
            d = sub(el, eb("Description"), e.description)
            d.set(XML_LANG, "en")
    return root


def nri_digests(references: Iterable[etree._Element]) -> dict[str, tuple[str, str]]:
    """Map each reference URI to (DigestMethod Algorithm, DigestValue without whitespace).

    Used by the sender to compare a partner's receipt with the references it signed.
    A receipt whose references are malformed or ambiguous is EBMS:0302 InvalidReceipt.
    """
    out: dict[str, tuple[str, str]] = {}
    for i, r in enumerate(references, 1):
        if r.tag != ds("Reference"):
            raise EbmsException.of("EBMS:0302", f"NRI entry {i} is {r.tag}, not ds:Reference")
        uri = r.get("URI")
        if uri is None:
            raise EbmsException.of("EBMS:0302", f"NRI ds:Reference {i} has no URI attribute")
        methods = r.findall(ds("DigestMethod"))
        values = r.findall(ds("DigestValue"))
        if len(methods) != 1 or not methods[0].get("Algorithm"):
            raise EbmsException.of(
                "EBMS:0302", f"NRI ds:Reference {uri!r} needs exactly one ds:DigestMethod with Algorithm"
            )
        if len(values) != 1 or not (values[0].text or "").strip():
            raise EbmsException.of("EBMS:0302", f"NRI ds:Reference {uri!r} needs exactly one non-empty ds:DigestValue")
        if uri in out:
            raise EbmsException.of("EBMS:0302", f"NRI lists reference {uri!r} more than once")
        out[uri] = (methods[0].get("Algorithm"), "".join((values[0].text or "").split()))
    return out
